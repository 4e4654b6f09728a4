// Package s3 is Strata's S3 persistence module (AWS SDK for Go v2):
// recorders that keep an application's events, notification log,
// commits, tracking records and snapshots as objects in an S3 bucket.
//
// Select it with PERSISTENCE_MODULE=s3. It reads S3_BUCKET, S3_PREFIX,
// S3_USE_PATH_STYLE, CREATE_TABLE (which creates the bucket), READ_ONLY,
// and the SDK's usual variables (AWS_REGION, AWS_ENDPOINT_URL,
// AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_PROFILE) from the application's environment.
//
// A save is one object: its commit record, put at the next position of
// the application's log with If-None-Match: *, so that of two writers
// that read the same end of the log one records and the other starts
// again. Positions are claimed one after the other, never twice and never
// with a gap, which gives the notification log its total order; a
// notification ID is its position times [NotificationStride] plus its
// index in the save. Everything else (each aggregate's events, commit
// and tracking records) is an index derived from the commit records,
// written after the save and, before the next position is claimed, by the
// next writer if the first one died; readers read the last position from
// the log itself. An erasure (DeleteAggregate, PurgeTenant) is an erase
// marker claimed in the log like a save, which every read applies; the
// erased objects are deleted after it. Every list follows every page.
// docs/s3.md gives the layout, the ordering argument, how erasures and
// replaced snapshots work, and what S3 cannot do.
package s3
