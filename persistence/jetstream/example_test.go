package jetstream_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/jetstream"
)

// A server older than 2.12 cannot make a save atomic: the factory refuses
// it when it opens, saying which version it needs.
func ExampleCheckServerVersion() {
	for _, v := range []string{"2.9.10", "2.12.0", "2.15.2"} {
		err := jetstream.CheckServerVersion(v)
		fmt.Println(v, errors.Is(err, persistence.ErrNotSupported), err)
	}
	// Output:
	// 2.9.10 true not supported: nats-server 2.9.10 is too old: Strata needs 2.12.0 or later (atomic batch publish)
	// 2.12.0 false <nil>
	// 2.15.2 false <nil>
}

// Settings come from the environment: the servers of the cluster, the
// replicas, the storage, the retention of events and of snapshots, which
// live in a stream of their own with the data keys.
func ExampleConfigFromEnv() {
	env := persistence.NewEnv("Worlds", map[string]string{
		"NATS_URL":              "nats://10.0.0.1:4222,nats://10.0.0.2:4222,nats://10.0.0.3:4222",
		"NATS_MAX_AGE":          "720h",
		"NATS_SNAPSHOT_MAX_AGE": "2160h",
		"NATS_REPLICAS":         "3",
	})
	cfg, err := jetstream.ConfigFromEnv(env)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(cfg.Stream, cfg.RecordsStream, cfg.SubjectPrefix, cfg.Replicas, cfg.MaxAge, cfg.SnapshotMaxAge)
	_, err = jetstream.ConfigFromEnv(persistence.NewEnv("Worlds", map[string]string{"NATS_STORAGE": "tape"}))
	fmt.Println(err)
	// Open connects and creates the stream (CREATE_TABLE, default true).
	_ = func() { jetstream.Open(context.Background(), cfg) }
	// Output:
	// STRATA_WORLDS STRATA_WORLDS_RECORDS strata.worlds 3 720h0m0s 2160h0m0s
	// invalid configuration: NATS_STORAGE="tape": want file or memory
}
