package recordertest

import (
	"context"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

// lateCommits gives notification IDs at insert time and shows each save to
// readers only when it "commits", a little later and in any order: the
// AUTO_INCREMENT bug the stable-prefix rule is about.
type lateCommits struct {
	*memory.Recorder
	mu      sync.Mutex
	next    int64
	visible []persistence.Notification
}

func (r *lateCommits) InsertEvents(ctx context.Context, events []persistence.StoredEvent, opts ...persistence.InsertOption) ([]int64, error) {
	r.mu.Lock()
	ids := make([]int64, len(events))
	for i := range events {
		r.next++
		ids[i] = r.next
	}
	r.mu.Unlock()
	time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range events {
		r.visible = append(r.visible, persistence.Notification{ID: ids[i], StoredEvent: e})
	}
	sort.Slice(r.visible, func(i, j int) bool { return r.visible[i].ID < r.visible[j].ID })
	return ids, nil
}

func (r *lateCommits) SelectNotifications(_ context.Context, q persistence.NotificationQuery) ([]persistence.Notification, error) {
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

func TestTheStablePrefixCheckFailsOnLateCommits(t *testing.T) {
	if msg := checkStablePrefix(&lateCommits{Recorder: memory.NewRecorder()}, 4, 100); !strings.Contains(msg, "would never see them") {
		t.Fatalf("a recorder whose commits show up out of ID order passed the stable-prefix check (%q)", msg)
	}
	if msg := checkStablePrefix(memory.NewRecorder(), 4, 100); msg != "" {
		t.Fatalf("the memory recorder failed the stable-prefix check: %s", msg)
	}
}
