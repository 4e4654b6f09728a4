package httpapi_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/application"
	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/examples/counters"
	"github.com/strata-go/strata/examples/worlds"
	"github.com/strata-go/strata/httpapi"
	"github.com/strata-go/strata/internal/childtest"
	"github.com/strata-go/strata/persistence"
	_ "github.com/strata-go/strata/persistence/sqlite" // registers "sqlite"
	"github.com/strata-go/strata/system"
)

type e2eConfig struct {
	URL   string            `json:"url"`
	Token string            `json:"token"`
	Env   map[string]string `json:"env"`
}

// slowCounters takes a moment over each event, as real work would, so that
// a kill lands in the middle of processing.
type slowCounters struct{ *counters.Counters }

func (s slowCounters) Policy(ctx context.Context, e domain.Event, p *system.Processing) error {
	time.Sleep(time.Millisecond)
	return s.Counters.Policy(ctx, e, p)
}

// TestE2EFollowerProcess is the follower process of
// TestFollowerInAnotherProcessOverHTTP: it runs Counters on its own SQLite
// file, following Worlds over HTTP, until its standard input is closed
// (then it stops gracefully) or it is killed.
func TestE2EFollowerProcess(t *testing.T) {
	var cfg e2eConfig
	childtest.Config(t, &cfg)
	client, err := httpapi.NewClient(cfg.URL, httpapi.WithClientBearerToken(cfg.Token))
	if err != nil {
		t.Fatal(err)
	}
	sys, err := system.New([]system.Def{
		system.Define(worlds.Name, worlds.Types, worlds.New),
		system.Define(counters.Name, counters.Types, func(ctx context.Context, opts ...application.Option) (slowCounters, error) {
			c, err := counters.New(ctx, opts...)
			return slowCounters{c}, err
		}),
	}, []string{worlds.Name, counters.Name})
	if err != nil {
		t.Fatal(err)
	}
	r := system.NewConcurrentRunner(sys,
		system.Hosting(counters.Name),
		system.WithRemoteLog(worlds.Name, client),
		system.WithEnv(cfg.Env),
		system.PollInterval(10*time.Millisecond),
		system.WithReaderOptions(system.PageSize(25)))
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get(worlds.Name); !errors.Is(err, system.ErrUnknownApplication) {
		t.Errorf("the follower process built the remote leader: %v", err)
	}
	io.Copy(io.Discard, os.Stdin) // until the parent closes it, or dies
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("follower stopped cleanly\n")
}

func startFollower(t *testing.T, cfg e2eConfig) *childtest.Child {
	t.Helper()
	return childtest.Start(t, "TestE2EFollowerProcess", cfg)
}

// A follower in another process reads its leader's log over HTTP, with a
// bearer token, and processes every event exactly once, although it is
// killed mid-way and started again, and the leader saves while it runs and
// while it is down.
func TestFollowerInAnotherProcessOverHTTP(t *testing.T) {
	childtest.SkipInChild(t)
	ctx := context.Background()
	dir := t.TempDir()

	// The leader process: Worlds on SQLite, its log served on a random
	// port of the loopback interface.
	leader, err := worlds.New(ctx, application.WithoutProcessEnv(),
		application.WithEnv(map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(dir, "worlds.db")}))
	if err != nil {
		t.Fatal(err)
	}
	defer leader.Close()
	secret := make([]byte, 16)
	rand.Read(secret)
	token := hex.EncodeToString(secret)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewServer(ln.Addr().String(), httpapi.NewHandler(leader.Log(), httpapi.WithBearerToken(token)))
	serveCtx, stopServing := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- httpapi.Serve(serveCtx, srv, ln, "", "") }()
	defer func() {
		stopServing()
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	url := "http://" + ln.Addr().String()

	// Without the token, the log stays closed.
	stranger, err := httpapi.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stranger.Select(ctx, 1, 10); !errors.Is(err, httpapi.ErrUnauthorized) {
		t.Fatalf("select without the token: %v, want ErrUnauthorized", err)
	}

	whats := []string{"dinosaurs", "trucks", "internet"}
	want := map[string]int{}
	var ids []uuid.UUID
	for range 4 {
		id, err := leader.CreateWorld(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	saved := 0
	save := func(n int) {
		t.Helper()
		for range n {
			what := whats[saved%len(whats)]
			if err := leader.MakeItSo(ctx, ids[saved%len(ids)], what); err != nil {
				t.Fatal(err)
			}
			want[what]++
			saved++
		}
	}

	// The follower's store, as the follower process leaves it.
	followerEnv := map[string]string{"PERSISTENCE_MODULE": "sqlite", "SQLITE_DBNAME": filepath.Join(dir, "counters.db")}
	observer, err := counters.New(ctx, application.WithoutProcessEnv(), application.WithEnv(followerEnv), application.WithTracking())
	if err != nil {
		t.Fatal(err)
	}
	defer observer.Close()
	processed := func() int {
		t.Helper()
		n := 0
		for _, what := range whats {
			c, err := observer.Count(ctx, what)
			if err != nil {
				t.Fatal(err)
			}
			n += c
		}
		return n
	}
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for processed() < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d of %d events processed", processed(), n)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	cfg := e2eConfig{URL: url, Token: token, Env: followerEnv}

	save(200)
	f := startFollower(t, cfg)
	waitFor(40)
	f.Kill()
	atKill := processed()
	if atKill >= saved {
		t.Fatalf("all %d events were processed before the kill: the test did not kill mid-processing", atKill)
	}

	save(50) // while the follower is down
	f = startFollower(t, cfg)
	save(50) // while it catches up
	waitFor(saved)
	f.Stdin.Close()
	if err := f.Cmd.Wait(); err != nil {
		t.Fatalf("the follower process: %v\n%s", err, f.Output())
	}
	if !strings.Contains(f.Output(), "follower stopped cleanly") {
		t.Fatalf("the follower process did not stop cleanly:\n%s", f.Output())
	}

	// Exactly once: the counts, the counters' versions (one Incremented
	// event per count), the tracking position, and the follower's log.
	repo, err := application.NewRepository[counters.Counter](observer.Application)
	if err != nil {
		t.Fatal(err)
	}
	for _, what := range whats {
		counter, err := repo.Get(ctx, counters.CounterID(what))
		if err != nil {
			t.Fatal(err)
		}
		if counter.Count != want[what] || counter.Version() != int64(want[what]+1) {
			t.Errorf("%s counted %d times at version %d, want %d", what, counter.Count, counter.Version(), want[what])
		}
	}
	last, err := leader.Recorder().MaxNotificationID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tracked, err := observer.Recorder().(persistence.ProcessRecorder).MaxTrackingID(ctx, worlds.Name)
	if err != nil || tracked != last {
		t.Errorf("tracked up to %d, the leader's log ends at %d (%v)", tracked, last, err)
	}
	logged, err := observer.Recorder().MaxNotificationID(ctx)
	if err != nil || logged != int64(saved+len(whats)) {
		t.Errorf("the follower recorded %d events for %d processed (%v), want %d", logged, saved, err, saved+len(whats))
	}
	t.Logf("%d events processed exactly once over HTTP; the follower was killed after %d", saved, atKill)
}
