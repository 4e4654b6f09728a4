package recordertest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
	"github.com/strata-go/strata/persistence/recordertest"
)

// interleaving behaves like a database whose notification IDs come from a
// sequence at insert time while commits become visible later, in another
// order: the bug the notification order guarantee is about.
type interleaving struct {
	*memory.Recorder
	mu      sync.Mutex
	next    int64
	visible []persistence.Notification
}

func (r *interleaving) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	if _, err := r.Recorder.InsertEvents(ctx, events, opts...); err != nil {
		return nil, err
	}
	r.mu.Lock()
	ids := make([]int64, len(events))
	for i := range events {
		r.next++
		ids[i] = r.next
	}
	r.mu.Unlock()
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) // the commit takes a while
	r.mu.Lock()
	for i, e := range events {
		r.visible = append(r.visible, persistence.Notification{ID: ids[i], StoredEvent: e})
	}
	sort.Slice(r.visible, func(i, j int) bool { return r.visible[i].ID < r.visible[j].ID })
	r.mu.Unlock()
	return ids, nil
}

func (r *interleaving) SelectNotifications(_ context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []persistence.Notification
	for _, n := range r.visible {
		if n.ID >= q.Start && len(out) < q.Limit {
			out = append(out, n)
		}
	}
	return out, nil
}

func (r *interleaving) MaxNotificationID(context.Context) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.visible) == 0 {
		return 0, nil
	}
	return r.visible[len(r.visible)-1].ID, nil
}

// doubleWinner lets two writers win one version.
type doubleWinner struct{ *memory.Recorder }

func (r doubleWinner) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	for i := range events {
		events[i].OriginatorVersion += int64(rand.IntN(2)) * 1000 // some land at versions nobody raced for
	}
	return r.Recorder.InsertEvents(ctx, events, opts...)
}

// fatalTB records the first fatal failure instead of ending the test.
type fatalTB struct {
	testing.TB
	msg string
}

type fatal struct{}

func (f *fatalTB) Helper()                         {}
func (f *fatalTB) Fatal(args ...any)               { f.msg = fmt.Sprint(args...); panic(fatal{}) }
func (f *fatalTB) Fatalf(format string, a ...any)  { f.msg = fmt.Sprintf(format, a...); panic(fatal{}) }
func (f *fatalTB) Logf(format string, args ...any) {}

func stressFails(r persistence.ApplicationRecorder) (msg string) {
	tb := &fatalTB{}
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(fatal); !ok {
				panic(v)
			}
			msg = tb.msg
		}
	}()
	recordertest.Stress(tb, r, recordertest.StressConfig{Writers: 8, SavesPerWriter: 100})
	return ""
}

func TestStressDetectsBrokenRecorders(t *testing.T) {
	if msg := stressFails(&interleaving{Recorder: memory.NewRecorder()}); !strings.Contains(msg, "missed") {
		t.Fatalf("a recorder whose commits interleave passed the stress test (%q)", msg)
	}
	if msg := stressFails(doubleWinner{memory.NewRecorder()}); msg == "" {
		t.Fatal("a recorder that stores events at other versions passed the stress test")
	}
	if msg := stressFails(memory.NewRecorder()); msg != "" {
		t.Fatalf("a correct recorder failed: %s", msg)
	}
}

// forgetfulTruncater truncates streams but forgets where: what the suite
// must catch, since verify tells a truncated stream from a damaged one by
// its truncation point.
type forgetfulTruncater struct{ *memory.Factory }

func (forgetfulTruncater) TruncationPoint(context.Context, uuid.UUID) (int64, error) { return 0, nil }

func (f forgetfulTruncater) Tenant(id string) (persistence.Factory, error) {
	t, err := f.Factory.Tenant(id)
	if err != nil {
		return nil, err
	}
	return forgetfulTruncater{t.(*memory.Factory)}, nil
}

// lazyTruncater says it truncated and deletes nothing.
type lazyTruncater struct{ *memory.Factory }

func (lazyTruncater) TruncateAggregate(context.Context, uuid.UUID, int64) (int, error) { return 3, nil }

func (f lazyTruncater) Tenant(id string) (persistence.Factory, error) {
	t, err := f.Factory.Tenant(id)
	if err != nil {
		return nil, err
	}
	return lazyTruncater{t.(*memory.Factory)}, nil
}

// TestTheTruncationChecksFailOnBrokenTruncaters runs the suite on broken
// truncaters in a child process (a failing suite fails its test) and
// requires it to fail, naming what is wrong.
func TestTheTruncationChecksFailOnBrokenTruncaters(t *testing.T) {
	broken := map[string]func() persistence.Factory{
		"forgetful": func() persistence.Factory { return forgetfulTruncater{memory.NewFactory()} },
		"lazy":      func() persistence.Factory { return lazyTruncater{memory.NewFactory()} },
	}
	if name := os.Getenv("RECORDERTEST_BROKEN_TRUNCATER"); name != "" {
		recordertest.TestFactory(t, recordertest.Features{Replace: true, Erase: true, List: true, Truncate: true},
			func(*testing.T) persistence.Factory { return broken[name]() })
		return
	}
	for name, want := range map[string]string{
		"forgetful": "the truncation point: 0 <nil>, want 4",
		"lazy":      "versions [1 2 3 4] after refused inserts, want [3 4]",
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestTheTruncationChecksFailOnBrokenTruncaters$")
			cmd.Env = append(os.Environ(), "RECORDERTEST_BROKEN_TRUNCATER="+name)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), want) {
				t.Fatalf("the suite on a %s truncater: %v, want a failure saying %q:\n%s", name, err, want, out)
			}
		})
	}
}
