package jetstream_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/strata-go/strata/internal/natstest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/jetstream"
)

// aggregateWithRecords saves one event of a new aggregate, a snapshot of
// it and a data key, and returns the recorders and the aggregate's ID.
func aggregateWithRecords(t *testing.T, f *jetstream.Factory) (events, snapshots, keys persistence.AggregateRecorder, id uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	var err error
	if events, err = f.ApplicationRecorder(ctx); err != nil {
		t.Fatal(err)
	}
	if snapshots, err = f.AggregateRecorder(ctx, "snapshots"); err != nil {
		t.Fatal(err)
	}
	if keys, err = f.AggregateRecorder(ctx, "keys"); err != nil {
		t.Fatal(err)
	}
	id = uuid.New()
	for _, r := range []persistence.AggregateRecorder{events, snapshots, keys} {
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "T", State: []byte("s")}}); err != nil {
			t.Fatal(err)
		}
	}
	return events, snapshots, keys, id
}

// count returns how many records of id r has.
func count(t *testing.T, r persistence.AggregateRecorder, id uuid.UUID) int {
	t.Helper()
	got, err := r.SelectEvents(context.Background(), id, persistence.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return len(got)
}

// waitGone waits until r has no record of id, failing the test after a
// minute.
func waitGone(t *testing.T, what string, r persistence.AggregateRecorder, id uuid.UUID) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for count(t, r, id) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the %s did not expire within a minute", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRetention(t *testing.T) {
	c := natstest.Shared(t)
	t.Run("events expiring by NATS_MAX_AGE leave the snapshots and data keys", func(t *testing.T) {
		f := open(t, c, "NATS_MAX_AGE", "1s")
		events, snapshots, keys, id := aggregateWithRecords(t, f)
		waitGone(t, "event", events, id)
		if n := count(t, snapshots, id); n != 1 {
			t.Fatalf("%d snapshots left after the events expired, want 1", n)
		}
		if n := count(t, keys, id); n != 1 {
			t.Fatalf("%d data keys left after the events expired, want 1", n)
		}
	})
	t.Run("snapshots expiring by NATS_SNAPSHOT_MAX_AGE leave the events and data keys", func(t *testing.T) {
		f := open(t, c, "NATS_SNAPSHOT_MAX_AGE", "1")
		events, snapshots, keys, id := aggregateWithRecords(t, f)
		waitGone(t, "snapshot", snapshots, id)
		if n := count(t, events, id); n != 1 {
			t.Fatalf("%d events left after the snapshots expired, want 1", n)
		}
		if n := count(t, keys, id); n != 1 {
			t.Fatalf("%d data keys left after the snapshots expired, want 1", n)
		}
	})
	t.Run("CREATE_TABLE creates both streams with their own retention", func(t *testing.T) {
		f := open(t, c, "NATS_MAX_AGE", "720h", "NATS_SNAPSHOT_MAX_AGE", "48h")
		js, err := njs.New(f.Conn())
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, want := range []struct {
			stream   string
			maxAge   time.Duration
			subjects int
			ttl      bool
		}{{f.StreamName(), 720 * time.Hour, 2, false}, {f.RecordsStreamName(), 0, 1, true}} {
			s, err := js.Stream(ctx, want.stream)
			if err != nil {
				t.Fatalf("stream %s: %v", want.stream, err)
			}
			cfg := s.CachedInfo().Config
			if cfg.MaxAge != want.maxAge || len(cfg.Subjects) != want.subjects || cfg.AllowMsgTTL != want.ttl || cfg.Replicas != 3 {
				t.Fatalf("stream %s: max age %v, subjects %q, message TTL %v, %d replicas; want %v, %d subjects, %v, 3",
					want.stream, cfg.MaxAge, cfg.Subjects, cfg.AllowMsgTTL, cfg.Replicas, want.maxAge, want.subjects, want.ttl)
			}
		}
		if want := f.StreamName() + "_RECORDS"; f.RecordsStreamName() != want {
			t.Fatalf("records stream %q, want %q", f.RecordsStreamName(), want)
		}
	})
	t.Run("without CREATE_TABLE a missing records stream is not created and its recorders fail with ErrNoTable", func(t *testing.T) {
		e := env(t, c)
		f, err := jetstream.OpenEnv(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		js, _ := njs.New(f.Conn())
		if err := js.DeleteStream(context.Background(), f.RecordsStreamName()); err != nil {
			t.Fatal(err)
		}
		f.Close()
		vars := e.Vars()
		vars["CREATE_TABLE"] = "false"
		g, err := jetstream.OpenEnv(context.Background(), persistence.NewEnv(e.Name(), vars))
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		snapshots, err := g.AggregateRecorder(context.Background(), "snapshots")
		if err != nil {
			t.Fatal(err)
		}
		_, err = snapshots.InsertEvents(context.Background(), []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "T"}})
		if !errors.Is(err, persistence.ErrNoTable) {
			t.Fatalf("a snapshot without its stream: %v, want ErrNoTable", err)
		}
		if _, err := snapshots.SelectEvents(context.Background(), uuid.New(), persistence.EventQuery{}); !errors.Is(err, persistence.ErrNoTable) {
			t.Fatalf("a snapshot load without its stream: %v, want ErrNoTable", err)
		}
		js, _ = njs.New(g.Conn())
		if _, err := js.Stream(context.Background(), g.RecordsStreamName()); !errors.Is(err, njs.ErrStreamNotFound) {
			t.Fatalf("the records stream after opening without CREATE_TABLE: %v", err)
		}
		events, _ := g.ApplicationRecorder(context.Background())
		if _, err := events.InsertEvents(context.Background(), []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "T"}}); err != nil {
			t.Fatalf("an event while the records stream is missing: %v", err)
		}
	})
	t.Run("a stream of the layout with snapshots among the events is refused", func(t *testing.T) {
		e := env(t, c)
		cfg, err := jetstream.ConfigFromEnv(e)
		if err != nil {
			t.Fatal(err)
		}
		f := open(t, c)
		js, _ := njs.New(f.Conn())
		if _, err := js.CreateStream(context.Background(), njs.StreamConfig{Name: cfg.Stream, Subjects: []string{cfg.SubjectPrefix + ".>"},
			Replicas: 3, AllowDirect: true, AllowAtomicPublish: true}); err != nil {
			t.Fatal(err)
		}
		_, err = jetstream.OpenEnv(context.Background(), e)
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), "layout before snapshots and data keys moved to a stream of their own") {
			t.Fatalf("opening a stream of the old layout: %v", err)
		}
	})
}

func TestRetentionSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string // "" for no error
	}{
		{"a snapshot time to live under a second is refused", map[string]string{"NATS_SNAPSHOT_MAX_AGE": "0.5"},
			"invalid configuration: NATS_SNAPSHOT_MAX_AGE=500ms: a snapshot's time to live is whole seconds, at least 1"},
		{"a snapshot time to live of part seconds is refused", map[string]string{"NATS_SNAPSHOT_MAX_AGE": "1.5s"},
			"invalid configuration: NATS_SNAPSHOT_MAX_AGE=1.5s: a snapshot's time to live is whole seconds, at least 1"},
		{"a duplicate window set longer than the events' max age is refused", map[string]string{"NATS_MAX_AGE": "60", "NATS_DUPLICATE_WINDOW": "120"},
			"invalid configuration: NATS_DUPLICATE_WINDOW=2m0s is longer than NATS_MAX_AGE=1m0s: the servers cannot remember a commit longer than they keep its events"},
		{"the default duplicate window gives way to a shorter max age", map[string]string{"NATS_MAX_AGE": "60"}, ""},
		{"the records stream cannot be the events stream", map[string]string{"NATS_STREAM": "S", "NATS_RECORDS_STREAM": "S"},
			`invalid configuration: NATS_RECORDS_STREAM: the records stream "S" is the events stream`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := jetstream.ConfigFromEnv(persistence.NewEnv("Worlds", tc.vars))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				sc := jetstream.StreamConfig(cfg)
				if sc.Duplicates != time.Minute || sc.MaxAge != time.Minute {
					t.Fatalf("events stream: duplicates %v, max age %v; want 1m0s for both", sc.Duplicates, sc.MaxAge)
				}
				if rc := jetstream.RecordsStreamConfig(cfg); rc.Duplicates != jetstream.DefaultDuplicateWindow || rc.MaxAge != 0 {
					t.Fatalf("records stream: duplicates %v, max age %v; want %v and 0", rc.Duplicates, rc.MaxAge, jetstream.DefaultDuplicateWindow)
				}
				return
			}
			if err == nil || err.Error() != tc.want || !errors.Is(err, persistence.ErrConfig) {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
		})
	}
}
