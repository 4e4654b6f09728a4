// Package natstest gives tests a real JetStream cluster of three
// nats-server processes on loopback (package natscluster): a cluster
// shared by the test process, or one of a test's own for tests that kill
// and stop servers.
//
// Without the pinned nats-server that scripts/nats-server installs (or
// $NATS_SERVER_BIN), tests that need a cluster are skipped with a message
// saying how to install it, or fail when CI=true.
//
// A test package shares one cluster ([Shared]); it is stopped by the
// package's TestMain through [StopShared], and in any case dies with the
// test process (the servers get SIGKILL when it exits).
package natstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/strata-go/strata/internal/natscluster"
)

// Cluster is a cluster of three servers.
type Cluster = natscluster.Cluster

// Server is one server of a cluster.
type Server = natscluster.Server

var shared struct {
	sync.Mutex
	c   *Cluster
	err error
}

// Shared returns the test process's cluster, started on first use. It
// skips the test if nats-server is not installed, or fails it when
// CI=true.
func Shared(t testing.TB) *Cluster {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.c == nil && shared.err == nil {
		shared.c, shared.err = natscluster.Start()
	}
	if shared.err != nil {
		msg := fmt.Sprintf("no JetStream cluster for the tests: %v", shared.err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return shared.c
}

// StopShared stops the shared cluster if one was started. TestMain calls
// it after the tests.
func StopShared() {
	shared.Lock()
	defer shared.Unlock()
	if shared.c != nil {
		shared.c.Close()
		shared.c = nil
	}
}

// Require starts a cluster of the test's own, for tests that kill and stop
// its servers, and closes it when the test ends. It skips the test if
// nats-server is not installed (fails it when CI=true), and fails it if
// the cluster does not start.
func Require(t testing.TB) *Cluster {
	t.Helper()
	c, err := natscluster.Start()
	if err != nil {
		msg := fmt.Sprintf("no JetStream cluster for the test: %v", err)
		if os.Getenv("CI") == "true" || !errors.Is(err, natscluster.ErrNotInstalled) {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(c.Close)
	return c
}

// Env returns the environment of a fresh JetStream store on the shared
// cluster for one test: its own stream name and subject prefixes, so that
// every application the test opens gets streams of its own, deleted when
// the test ends.
func Env(t testing.TB) map[string]string {
	t.Helper()
	c := Shared(t)
	tag := strings.ReplaceAll(fmt.Sprintf("%x", time.Now().UnixNano()), "-", "")
	streams := "T" + tag
	t.Cleanup(func() { DeleteStreams(c.URL(), streams+"_") })
	return map[string]string{
		"PERSISTENCE_MODULE":  "jetstream",
		"NATS_URL":            c.URL(),
		"NATS_STREAM_PREFIX":  streams,
		"NATS_SUBJECT_PREFIX": "t" + tag,
	}
}

// DeleteStreams deletes the streams whose names begin with prefix.
func DeleteStreams(url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var doomed []string
	for n := range names.Name() {
		if strings.HasPrefix(n, prefix) {
			doomed = append(doomed, n)
		}
	}
	for _, n := range doomed {
		js.DeleteStream(ctx, n)
	}
}
