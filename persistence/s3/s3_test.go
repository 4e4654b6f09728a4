package s3_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

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

// features are what the S3 module offers beyond the contract: Erase and
// Replace by records in the log (an erase marker, a replacing save) that
// reads apply; no Stream: a read lists and gets objects either way
// (docs/s3.md).
var features = recordertest.Features{List: true, Erase: true, Replace: true}

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

func TestConfiguration(t *testing.T) {
	ctx := context.Background()
	for vars, want := range map[string]string{
		"":                                  `S3_BUCKET=""`,
		"S3_BUCKET=No_Such":                 `S3_BUCKET="No_Such"`,
		"S3_BUCKET=fine AWS_ENDPOINT_URL=x": `AWS_ENDPOINT_URL="x"`,
		"S3_BUCKET=fine AWS_ENDPOINT_URL_S3=ftp://x": `AWS_ENDPOINT_URL_S3="ftp://x"`,
		"S3_BUCKET=fine CREATE_TABLE=maybe":          `CREATE_TABLE="maybe"`,
		"S3_BUCKET=fine S3_USE_PATH_STYLE=maybe":     `S3_USE_PATH_STYLE="maybe"`,
		"S3_BUCKET=fine AWS_ACCESS_KEY_ID=x":         "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
		"APP_S3_BUCKET=x S3_BUCKET=fine":             `APP_S3_BUCKET="x"`,
	} {
		env := map[string]string{"PERSISTENCE_MODULE": "s3", "AWS_REGION": "us-east-1"}
		for _, kv := range strings.Fields(vars) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		_, err := persistence.OpenFactory(ctx, persistence.NewEnv("App", env))
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an ErrConfig naming %s", vars, err, want)
		}
	}
}

func TestApplicationsOfOneBucketHavePrefixesOfTheirOwn(t *testing.T) {
	env := awstest.S3Env(t)
	env["S3_PREFIX"] = "es/"
	c, err := s3.ConfigFromEnv(persistence.NewEnv("Bank Accounts", env))
	if err != nil || c.Prefix != "es/Bank%20Accounts/" || !c.UsePathStyle || !c.CreateBucket {
		t.Fatalf("config %+v %v", c, err)
	}
}

func TestMissingBucketWithoutCreateTable(t *testing.T) {
	env := awstest.S3Env(t)
	env["CREATE_TABLE"] = "false"
	_, err := persistence.OpenFactory(context.Background(), persistence.NewEnv("App", env))
	if !errors.Is(err, persistence.ErrNoTable) || !strings.Contains(err.Error(), env["S3_BUCKET"]) {
		t.Fatalf("open a missing bucket with CREATE_TABLE=false: %v, want ErrNoTable naming it", err)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	env := awstest.S3Env(t)
	ctx := context.Background()
	f, err := persistence.OpenFactory(ctx, persistence.NewEnv("App", env))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	env["READ_ONLY"] = "true"
	ro, err := persistence.OpenFactory(ctx, persistence.NewEnv("App", env))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	r, err := ro.ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.InsertEvents(ctx, []persistence.StoredEvent{{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "t"}}); !errors.Is(err, persistence.ErrReadOnly) {
		t.Fatalf("insert into a read-only store: %v", err)
	}
	if n, err := r.MaxNotificationID(ctx); err != nil || n != 0 {
		t.Fatalf("read a read-only store: %d %v", n, err)
	}
}

// TestLargeSavesAreRefusedWhole shows the one limit of a save: the
// events one log position holds.
func TestLargeSavesAreRefusedWhole(t *testing.T) {
	ctx := context.Background()
	r, err := open(t).ApplicationRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	evs := make([]persistence.StoredEvent, s3.MaxSaveEvents+1)
	for i := range evs {
		evs[i] = persistence.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i + 1), Topic: "t"}
	}
	if _, err := r.InsertEvents(ctx, evs); !errors.Is(err, persistence.ErrNotSupported) || !strings.Contains(err.Error(), "at most 9999") {
		t.Fatalf("a save of %d events: %v, want ErrNotSupported", len(evs), err)
	}
	if n, err := r.MaxNotificationID(ctx); err != nil || n != 0 {
		t.Fatalf("a refused save recorded: %d %v", n, err)
	}
	if ids, err := r.InsertEvents(ctx, evs[:s3.MaxSaveEvents]); err != nil || ids[len(ids)-1] != 2*s3.NotificationStride-1 {
		t.Fatalf("a save of %d events: %v", s3.MaxSaveEvents, err)
	}
}
