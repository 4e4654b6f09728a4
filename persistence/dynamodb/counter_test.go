package dynamodb_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/awstest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/dynamodb"
)

// TestWritersOfTwoProcessesShareTheCounter opens one table twice, as two
// processes would, and saves from both at once. Each process takes the
// counter as it last left it, without reading it, so each must notice the
// other's saves: no notification ID may be lost or given twice, every save
// is recorded, and the log gives each event the ID its save returned.
func TestWritersOfTwoProcessesShareTheCounter(t *testing.T) {
	ctx := context.Background()
	env := awstest.DynamoDBEnv(t)
	app := fmt.Sprintf("App%d", apps.Add(1))
	var procs [2]persistence.ApplicationRecorder
	for i := range procs {
		f, err := dynamodb.OpenEnv(ctx, persistence.NewEnv(app, env))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		if procs[i], err = f.ApplicationRecorder(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	byID := map[int64]persistence.StoredEvent{}
	save := func(p int, events []persistence.StoredEvent) error {
		ids, err := procs[p].InsertEvents(ctx, events)
		if err != nil {
			return fmt.Errorf("process %d: %w", p, err)
		}
		if len(ids) != len(events) {
			return fmt.Errorf("process %d: %d IDs for %d events", p, len(ids), len(events))
		}
		mu.Lock()
		defer mu.Unlock()
		for i, id := range ids {
			if prev, ok := byID[id]; ok {
				return fmt.Errorf("process %d: notification ID %d given twice, to %s and %s", p, id, prev.OriginatorID, events[i].OriginatorID)
			}
			byID[id] = events[i]
		}
		return nil
	}
	events := func(n int) []persistence.StoredEvent {
		evs := make([]persistence.StoredEvent, n)
		for i := range evs {
			evs[i] = ev(uuid.New(), 1, []byte(fmt.Sprint(i)))
		}
		return evs
	}
	// In turn first: each process's next save follows a save of the other.
	for _, p := range []int{0, 1, 0, 1} {
		if err := save(p, events(1)); err != nil {
			t.Fatal(err)
		}
	}
	const writers, saves = 4, 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*writers)
	for p := range procs {
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range saves {
					if err := save(p, events(1+(w+i)%3)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	n := len(byID)
	for id := int64(1); id <= int64(n); id++ {
		if _, ok := byID[id]; !ok {
			t.Fatalf("%d notification IDs were given, but not %d: IDs are not dense", n, id)
		}
	}
	for p, r := range procs {
		ns, err := r.SelectNotifications(ctx, persistence.NotificationQuery{Start: 1, Limit: n + 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) != n {
			t.Fatalf("process %d reads %d notifications, want %d", p, len(ns), n)
		}
		for i, no := range ns {
			want := byID[int64(i+1)]
			if no.ID != int64(i+1) || no.OriginatorID != want.OriginatorID || string(no.State) != string(want.State) {
				t.Fatalf("process %d: notification %d of the log is ID %d of %s, want ID %d of %s", p, i, no.ID, no.OriginatorID, i+1, want.OriginatorID)
			}
		}
		if max, err := r.MaxNotificationID(ctx); err != nil || max != int64(n) {
			t.Fatalf("process %d: max notification ID %d (%v), want %d", p, max, err, n)
		}
	}
}
