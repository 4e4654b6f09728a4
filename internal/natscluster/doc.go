// Package natscluster runs a real JetStream cluster of three nats-server
// processes on loopback: file storage in a temporary directory, client
// ports in 14222-14299 and cluster ports in 16222-16299. Servers can be
// killed (SIGKILL), stopped and restarted one at a time, or the whole
// cluster at once.
//
// The tests use it through package natstest; the strata bench command
// uses it directly, which is why it does not import package testing.
//
// The servers are the pinned nats-server that scripts/nats-server
// installs, or $NATS_SERVER_BIN. Every server gets SIGKILL when the
// process that started it dies, and a later [Start] removes the stores of
// clusters whose process has died.
//
// Several processes may start clusters at once (go test runs packages in
// parallel, several people share a machine): each cluster holds a lock on
// its port block for as long as it lives, probes that no other program
// listens on the block, names its cluster after the block and its process
// so that a server of another cluster can never join it, and starts again
// on another block if a server finds its port taken all the same.
package natscluster
