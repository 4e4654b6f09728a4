package s3_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strata-go/strata/internal/awstest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/recordertest"
	"github.com/strata-go/strata/persistence/s3"
)

var apps atomic.Int64

// open returns the factory of a new application in a fresh bucket.
func open(t testing.TB, vars ...string) *s3.Factory {
	t.Helper()
	env := awstest.S3Env(t)
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	f, err := s3.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), env))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// features are what the S3 module offers beyond the contract. No Replace:
// a snapshot is a chunk of its save's commit record, written once; no
// Stream: a read lists and gets objects either way; no Erase: S3 deletes
// no two objects atomically (docs/s3.md).
var features = recordertest.Features{List: true}

func TestFactoryConforms(t *testing.T) {
	recordertest.TestFactory(t, features, func(t *testing.T) persistence.Factory {
		f, err := s3.OpenEnv(context.Background(), persistence.NewEnv(fmt.Sprintf("App%d", apps.Add(1)), awstest.S3Env(t)))
		if err != nil {
			t.Fatal(err)
		}
		return f
	})
}

// TestStress runs 16 writers of one process against one log.
func TestStress(t *testing.T) {
	r, err := open(t).ApplicationRecorder(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	res := recordertest.Stress(t, r, recordertest.StressConfig{Writers: 16, SavesPerWriter: 10})
	t.Logf("%d saves, %d events, %d conflicts in %v (%.0f saves/s)", res.Saves, res.Events, res.Conflicts, res.Elapsed, float64(res.Saves)/res.Elapsed.Seconds())
}

// multiWriter spreads the saves of one recorder over several factories of
// the same store, each with its own queue of saves, as processes of their
// own would: their saves race for log positions.
type multiWriter struct {
	persistence.ApplicationRecorder
	writers []persistence.ApplicationRecorder
	next    atomic.Int64
}

func (m *multiWriter) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	return m.writers[int(m.next.Add(1))%len(m.writers)].InsertEvents(ctx, events, opts...)
}

// TestStressAcrossWriters runs the stress test with the saves spread
// over four factories, so that they race for log positions by
// conditional puts rather than queue in one process, and reports how
// often a save lost the race.
func TestStressAcrossWriters(t *testing.T) {
	ctx := context.Background()
	env := awstest.S3Env(t)
	const n = 4
	var factories []*s3.Factory
	m := &multiWriter{}
	for range n {
		f, err := s3.OpenEnv(ctx, persistence.NewEnv("Shared", env))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		r, err := f.ApplicationRecorder(ctx)
		if err != nil {
			t.Fatal(err)
		}
		factories = append(factories, f)
		m.writers = append(m.writers, r)
	}
	m.ApplicationRecorder = m.writers[0]
	// Sized down: every lost race costs the loser a round of requests,
	// and the emulator serves one request at a time.
	res := recordertest.Stress(t, m, recordertest.StressConfig{Writers: 8, SavesPerWriter: 6})
	var lost int64
	for _, f := range factories {
		lost += f.LostRaces()
	}
	if lost == 0 {
		t.Error("no save lost a race for a log position: the writers did not contend")
	}
	t.Logf("%d saves, %d events, %d conflicts, %d lost races in %v (%.0f saves/s)", res.Saves, res.Events, res.Conflicts, lost, res.Elapsed, float64(res.Saves)/res.Elapsed.Seconds())
}
