// Package sqliteprojection keeps read models in a SQLite database: a
// projection's handler gets a *sql.Tx in which it writes its own tables
// while the store records the positions it reached, so that each event is
// applied once.
//
// The store's own tables are strata_projections (the live version of
// each projection), strata_projection_versions (the tables of each
// version), strata_projection_positions and strata_projection_parked.
// Readers query a model through views (projection.View) that point at the
// live version's tables; a switch replaces the views and drops the old
// version's tables in one transaction, which readers of a WAL database
// see whole or not at all.
package sqliteprojection
