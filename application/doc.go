// Package application is the layer Strata's users write their code
// against: an event-sourced [Application] with a typed [Repository] for
// each aggregate type, a [NotificationLog] that presents its events in
// order, and snapshotting on demand, every N versions, or by threshold.
//
// An application is configured by options (settings in code), the process
// environment, and an environment map given to its constructor, in that
// order of precedence, using the reference design's variable names:
//
//	PERSISTENCE_MODULE (or INFRASTRUCTURE_FACTORY)  memory (default), sqlite, postgres, ...
//	IS_SNAPSHOTTING_ENABLED                         y/yes/t/true/on/1 or n/no/f/false/off/0
//	SNAPSHOT_THRESHOLD                              snapshot after this many events since the last snapshot
//	CIPHER_TOPIC, CIPHER_KEY                        application-level encryption (AES-GCM)
//	COMPRESSOR_TOPIC, COMPRESSOR_MAX_SIZE           compression (zlib), and the most one state decompresses to
//	CREATE_TABLE                                    create tables if they do not exist (default true)
//	READ_ONLY                                       create nothing, refuse writes (default false)
//
// and the variables of the chosen persistence module, whose package the
// program imports (persistence/memory for the default): application
// imports no store itself.
//
// When it opens, an application reads its store's newest event: if its
// cipher key or compressor cannot read it (another CIPHER_KEY, none), every
// save is refused with an error that names the setting, so that a wrong key
// never leaves a log that no one key reads. Each variable can be
// given for one application only by prefixing it with the application's
// name in upper case: WORLDS_SQLITE_DBNAME wins over SQLITE_DBNAME for the
// application named Worlds.
//
// Save records the pending events of one or more aggregates atomically; a
// concurrent writer that got a version first makes it fail with
// [ErrConflict], and [Retry] runs a command again in that case.
package application
