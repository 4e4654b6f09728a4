// Package persistence is Strata's persistence core: how domain events are
// turned into bytes, recorded, and read back.
//
// A [Mapper] converts domain events and snapshots to [StoredEvent] values
// and back: it transcodes with a [Transcoder] (JSON by default, with
// transcodings for types JSON cannot carry faithfully), then compresses
// with a [Compressor] and encrypts with a [Cipher] if it has them.
//
// Recorders keep stored events in a datastore. There are three kinds, each
// a superset of the one before: an [AggregateRecorder] records and selects
// the events of aggregates (and snapshots); an [ApplicationRecorder] also
// gives every event a notification ID in a total order that readers can
// follow; a [ProcessRecorder] also records [Tracking] records atomically
// with events, which makes processing of another application's
// notifications exactly-once; [InsertTracked] records a follower's batch
// of such inserts, in one transaction where the recorder is a
// [BatchProcessRecorder]. Adapter packages (persistence/memory,
// persistence/sqlite, persistence/postgres) implement them, and
// persistence/recordertest is the conformance suite they all pass.
//
// An [EventStore] puts a mapper in front of a recorder; a [SnapshotStore]
// does the same for snapshots.
//
// Errors are classified by kind, as in the database APIs the reference
// design follows: test them with errors.Is against [ErrIntegrity] (a
// conflict: another writer got there first), [ErrOperational] (retry may
// help), [ErrData], [ErrProgramming], and so on.
//
// Infrastructure is chosen by environment variables: [OpenFactory] opens
// the module named by PERSISTENCE_MODULE (or INFRASTRUCTURE_FACTORY) from
// those that adapters registered, and [NewMapperFromEnv] reads CIPHER_TOPIC,
// CIPHER_KEY and COMPRESSOR_TOPIC. Every variable can be given per
// application by prefixing it with the application's name (see [Env]).
package persistence
