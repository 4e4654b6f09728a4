// Package system runs event-driven systems of applications: process
// applications follow other applications' notification logs and react to
// their events, each upstream event exactly once.
//
// A [System] is defined by application definitions ([Define]) and pipes:
// {"Worlds", "Counters"} makes Counters follow Worlds. A follower is a
// [Processor]: its Policy receives each upstream event and hands the
// aggregates it changed to [Processing.Save]; their new events are recorded
// atomically with a tracking record of the upstream notification, in the
// follower's process recorder. A notification already tracked is never
// processed again, and a follower resumes after its last tracked
// notification, so a crash at any point neither loses nor repeats an
// event's effects.
//
// Runners build and run a system:
//
//   - [SingleThreadedRunner] processes in the goroutine that saves:
//     deterministic, the runner for tests.
//   - [ConcurrentRunner] runs a goroutine per follower, prompted by its
//     leaders' saves and by a poll interval. Given [Hosting], it runs only
//     some followers, so that a system can be spread over processes that
//     share a database; with PostgreSQL, followers are prompted by
//     LISTEN/NOTIFY from the other processes' saves. [WithRemoteLog] makes
//     followers read a leader in another process over HTTP.
//
// # Batches
//
// A follower processes the notifications it finds in batches of up to
// [BatchSize]: their results, each notification's a commit of its own,
// are recorded with their tracking records in one transaction where the
// store offers it (persistence.InsertTracked), and a policy's loads of an
// aggregate the batch already changed are served from the batch (see
// application.Batch). A batch that fails is processed again one
// notification at a time, so nothing is lost or repeated and a poison
// notification fails alone. The concurrent runner lets a steady stream
// gather for [BatchWait] between pulls.
//
// A [NotificationLogReader] reads any notification log, local or remote,
// from a position, a page at a time.
//
// # Failures
//
// A temporary failure ([Temporary], a lost connection, a timeout) is
// retried later and logged once. A poison notification, one that cannot
// be processed however often it is tried, follows the follower's
// [PoisonPolicy]: by default the follower stops at it with one
// [*PoisonError] naming the follower, the upstream application, the
// notification ID, its topic and the cause ([Runner.Resume] tries again
// after a fix); with [ParkPoison] it is saved as a [Parked] record with its
// tracking record and the follower goes on, and an operator retries it
// ([Runner.RetryParked], exactly once) or skips it ([Runner.SkipParked]).
package system
