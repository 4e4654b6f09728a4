// Package messagedb is Strata's persistence module on Message DB, the
// PostgreSQL message store of Eventide that Protean runs its event-sourced
// aggregates on, so that Strata and Protean (or Eventide) applications can
// share one store. It uses Message DB's own schema and functions, as its
// npm package @eventide/message-db installs them; it installs nothing of
// Message DB itself.
//
// Select it with PERSISTENCE_MODULE=messagedb and configure it with:
//
//	MESSAGEDB_URL              the PostgreSQL database where Message DB is installed (required)
//	MESSAGEDB_CATEGORY         the category of the application's streams
//	                           (default: the application's name in snake case)
//	MESSAGEDB_INITIAL_VERSION  Strata version of position 0 of streams another
//	                           program began (default 1)
//	MESSAGEDB_SNAPSHOT_TOPIC   topic of the aggregate type of snapshots another
//	                           program wrote (default: such snapshots are not used)
//	MESSAGEDB_TYPE_NAMES       topic=type,... message types for topics
//	MESSAGEDB_SCHEMA           schema of Strata's tracking table (default strata)
//	MESSAGEDB_POOL_SIZE        most connections (default 10)
//	MESSAGEDB_LOCK_TIMEOUT     seconds to wait for a lock (default 0: no limit)
//	MESSAGEDB_CONSUMER_GROUP_MEMBER, MESSAGEDB_CONSUMER_GROUP_SIZE
//	                           the follower's place in a consumer group
//	CREATE_TABLE               create the tracking table (default true)
//	READ_ONLY                  refuse writes (default false)
//
// # Layout
//
// An aggregate's events are the messages of stream <category>-<ID>
// (<category>-<ID>+<tenant> for a tenant), one message per event, written
// with write_message and the expected version that the event's Strata
// version maps to, so that Message DB itself refuses a second writer at a
// version ("Wrong expected version", an error wrapping
// persistence.ErrIntegrity). A version is the message's position plus the
// version of the stream's first message (see [Config.InitialVersion]). The
// message type is the event's topic, or its name in [Config.TypeNames]; the
// data is the event's own JSON, and the metadata has Protean's headers and
// domain sections (correlation and causation, class version) and Strata's
// own (its version, timestamp, class version, commit ID and headers).
// State that is not the mapper's JSON (encrypted or compressed) is kept as
// {"base64": ...}.
//
// Snapshots are messages of type SNAPSHOT in <category>:snapshot-<ID>, as
// Protean writes them, with the aggregate's fields and _version; the
// newest at a version is the one in force.
//
// The notification ID is Message DB's global position; an application's
// log is its category read in global order. Message DB's write lock on the
// category makes global positions visible in commit order within the
// category, which is what makes the log safe to follow. A save is one
// transaction: one batch of write_message calls with the tracking record,
// if any, which commits or records nothing.
//
// Commit IDs: the first message that a commit writes to each stream gets a
// Message DB ID derived from the commit ID and the stream, so that Message
// DB refuses the commit recorded again whatever its versions; the commit
// ID itself is in the metadata.
//
// # Consumer groups
//
// [Factory.GroupMember] reads a member's part of a category with
// get_category_messages' consumer group arguments; with
// application.NewLocalNotificationLog and system.WithRemoteLog, several
// follower processes share a leader's category, each processing its part
// exactly once.
//
// docs/messagedb.md gives the layout in full, what the module does not
// offer and why, and its measurements.
package messagedb
