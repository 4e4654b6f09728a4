package jetstream_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/strata-go/strata/internal/natstest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/jetstream"
	"github.com/strata-go/strata/persistence/recordertest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	natstest.StopShared()
	os.Exit(code)
}

var apps atomic.Int64

// features are what the JetStream module offers beyond the contract (see
// docs/jetstream.md for what it does not).
var features = recordertest.Features{Erase: true, Replace: true, List: true, Stream: true}

// deleteStream deletes a test's stream when the test ends, to keep the
// cluster small.
func deleteStream(t testing.TB, url, stream string) {
	t.Cleanup(func() {
		nc, err := nats.Connect(url)
		if err != nil {
			return
		}
		defer nc.Close()
		js, _ := njs.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		js.DeleteStream(ctx, stream)
	})
}

// env returns the environment of a new application's store on c.
func env(t testing.TB, c *natstest.Cluster, vars ...string) persistence.Env {
	name := fmt.Sprintf("App%d", apps.Add(1))
	m := map[string]string{"PERSISTENCE_MODULE": "jetstream", "NATS_URL": c.URL()}
	for i := 0; i+1 < len(vars); i += 2 {
		m[vars[i]] = vars[i+1]
	}
	e := persistence.NewEnv(name, m)
	cfg, err := jetstream.ConfigFromEnv(e)
	if err != nil {
		t.Fatal(err)
	}
	deleteStream(t, c.URL(), cfg.Stream)
	deleteStream(t, c.URL(), cfg.RecordsStream)
	return e
}

func open(t testing.TB, c *natstest.Cluster, vars ...string) *jetstream.Factory {
	t.Helper()
	f, err := jetstream.OpenEnv(context.Background(), env(t, c, vars...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestFactoryConforms(t *testing.T) {
	c := natstest.Shared(t)
	recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory {
		f, err := jetstream.OpenEnv(context.Background(), env(t, c))
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

func TestStress(t *testing.T) {
	c := natstest.Shared(t)
	r, err := open(t, c).ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := recordertest.Stress(t, r, recordertest.StressConfig{Writers: 16, SavesPerWriter: 60})
	t.Logf("%d saves, %d events, %d conflicts in %v", res.Saves, res.Events, res.Conflicts, res.Elapsed)
}

// A follower reads the log through an ordered consumer per read; the
// servers would keep each for minutes after it stops, so the read deletes
// it: reading the log often leaves no consumers behind.
func TestLogReadsLeaveNoConsumers(t *testing.T) {
	c := natstest.Shared(t)
	ctx := context.Background()
	f := open(t, c)
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "T", State: []byte{byte(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		n := 0
		for _, err := range persistence.ReadNotifications(ctx, r, persistence.NotificationQuery{Start: 1}, 2) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 3 {
			t.Fatalf("read %d notifications, want 3", n)
		}
	}
	js, _ := njs.New(f.Conn())
	s, err := js.Stream(ctx, f.StreamName())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers left on the stream after 5 reads of the log", info.State.Consumers)
	}
}
