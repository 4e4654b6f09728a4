// Package mongodb is Strata's MongoDB persistence module, built on the
// official Go driver (go.mongodb.org/mongo-driver/v2). It runs on MongoDB
// and on servers that speak its protocol, such as FerretDB, which is what
// its tests run against.
//
// Select it with PERSISTENCE_MODULE=mongodb and configure it with:
//
//	MONGODB_URI               connection string (default mongodb://127.0.0.1:27017)
//	MONGODB_DATABASE          database (default strata)
//	MONGODB_COLLECTION_PREFIX put before the collection's name (default none)
//	MONGODB_TIMEOUT           seconds to find a server and connect (default 30)
//	CREATE_TABLE              create the collection's indexes (default true)
//	READ_ONLY                 create nothing and refuse writes (default false)
//
// # One log per application
//
// Everything an application records is in one collection named after it
// ("worlds_log" for Worlds): its events, the snapshots and other aggregate
// recorders' records, tracking records, commits, and deletions. Each write
// is one document: the events of a save, of any number of aggregates,
// with the save's commit ID, headers and tracking record. Documents take
// dense positions, one per event, and a document is inserted only at the
// position right after the last document that exists, which the unique
// _id enforces. Before it inserts, a writer inserts claims, in a second
// collection ("worlds_claims"), whose _ids name what the save takes (each
// version, its commit, its tracking position) and which name the position
// and nonce of its document: a second save of the same version meets a
// duplicate _id and, looking at the log, tells a conflict from the orphan
// of a save that lost its position.
//
// That gives, with nothing but the atomicity of one insert:
//
//   - atomic saves of several aggregates, with their tracking record;
//   - optimistic concurrency: a version already taken fails the whole save
//     with persistence.ErrIntegrity, a commit ID already recorded with
//     persistence.ErrAlreadyCommitted;
//   - a notification log in commit order, with dense IDs: a reader that
//     has read up to n never later finds a new notification at or below n;
//   - atomic deletion of an aggregate and purges of a tenant: a deletion is
//     a marker document at the next position that hides what it deletes
//     from every read at once; the documents are then emptied.
//
// Writers take turns for the next position, within a process by a lock
// and across processes by the unique _id: saves are serialised, at a few
// round trips each. docs/mongodb.md has the proof of the order, what
// each server guarantees, and what cannot be tested without MongoDB.
package mongodb
