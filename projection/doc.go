// Package projection builds read models (query tables) from the events of
// one or more applications, exactly once, and rebuilds them without
// downtime.
//
// A [Projection] creates its model's tables ([Projection.Setup]) and
// applies each event within a transaction of a [Store]
// ([Projection.Process]). A [Runner] reads the projection's [Source]s (the
// notification logs of local applications, [FromApplication], or remote
// ones over HTTP) after the positions it recorded, and processes them in
// batches: each batch and the positions it reaches are recorded in one
// transaction, so that an event is applied once however the runner is
// stopped or killed. It catches up, then follows live, prompted by the
// upstream applications' saves and polling.
//
// Stores: [MemoryStore] for tests (a typed model in memory); for SQL
// databases, package projection/sqliteprojection hands the projection a
// *sql.Tx of the SQLite database, and package projection/pgprojection a
// pgx.Tx of the PostgreSQL one, in which it runs its own SQL on its own
// tables beside the store's positions. (MySQL commits DDL implicitly, so
// a rebuilt version could not be switched in atomically: see
// docs/projections.md.)
//
// Each version of a projection has tables of its own
// ([Model.Table], "balances_v2_accounts"); readers query views
// ([View], "balances_accounts") that point at the live version. Starting a
// runner of a newer version rebuilds the model beside the live one: it
// catches up from the start of the logs and, once it is as far as the live
// version, switches the views to its tables and drops the old ones in one
// transaction. Readers never see an empty or half-built model; the old
// version's runner stops at its next batch with [ErrSuperseded].
package projection
