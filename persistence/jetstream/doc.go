// Package jetstream is Strata's persistence module on NATS JetStream: a
// replicated (Raft) log that a cluster of nats-servers keeps, for
// applications that outgrow one database server.
//
// Each application has one stream (STRATA_<APP>) holding the subjects
// <prefix>.e.<tenant>.<aggregate-id> for events, <prefix>.a.<purpose>.<tenant>.<aggregate-id>
// for snapshots and <prefix>.k.<upstream> for tracking records. A save is
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
