// Package dynamodb is Strata's DynamoDB persistence module (AWS SDK for Go
// v2): recorders that keep an application's events, notification log,
// commits, tracking records and snapshots in one DynamoDB table.
//
// Select it with PERSISTENCE_MODULE=dynamodb. It reads DYNAMODB_TABLE (or
// DYNAMODB_TABLE_PREFIX and the application's name), CREATE_TABLE,
// READ_ONLY, and the SDK's usual variables (AWS_REGION, AWS_ENDPOINT_URL,
// AWS_ENDPOINT_URL_DYNAMODB, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_PROFILE) from the application's environment.
//
// A save is one TransactWriteItems call: for each aggregate, its events in
// one item and its head (the last version, the optimistic concurrency
// check) and its commit record; one log item with all the save's events;
// and the notification counter, updated on the condition that it still
// holds the value the save read, so that notification IDs follow commit
// order. A save that one transaction cannot hold (100 items, 4 MB, 400 KB
// an item) is refused whole with an error wrapping
// persistence.ErrNotSupported. Every read follows every page.
//
// Snapshot and data-key recorders replace records (persistence.Replacer):
// the items that hold them are read, encoded again and written back in one
// transaction, on conditions on their revisions and on the aggregate's
// head, so that data keys can be erased and rotated.
// docs/dynamodb.md gives the layout, the ordering argument and the limits.
package dynamodb
