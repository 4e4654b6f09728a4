// Package jetstream is Strata's persistence module on NATS JetStream: a
// replicated (Raft) log that a cluster of nats-servers keeps, for
// applications that outgrow one database server.
//
// Each application has a stream of events and tracking records
// (STRATA_<APP>, subjects <prefix>.e.ev.<tenant>.<aggregate-id> and
// <prefix>.k.<upstream>.<tenant>.t) and a stream of the records of its
// aggregate recorders, snapshots and data keys (STRATA_<APP>_RECORDS,
// subjects <prefix>.a.<purpose>.<tenant>.<aggregate-id>), each with its
// own retention: NATS_MAX_AGE truncates the events, NATS_SNAPSHOT_MAX_AGE
// is the snapshots' time to live, and data keys never expire. A save is
// one atomic batch (nats-server 2.12 or later): every aggregate's first
// message expects the aggregate's last stream sequence, so a save across
// aggregates is all or nothing and a conflict on any of them stores none.
// An event's notification ID is its stream sequence. Loads are direct gets
// by subject, answered by any replica, with no consumer.
//
// Select it with PERSISTENCE_MODULE=jetstream and NATS_URL (several servers,
// comma-separated); see [ConfigFromEnv] for the other settings and
// docs/jetstream.md for the design, its proof and its limits.
package jetstream
