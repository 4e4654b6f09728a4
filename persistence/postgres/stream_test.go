package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/postgres"
)

// streamFixture records 23 notifications, every fourth save of two events
// of two topics, and returns the recorder and their IDs.
func streamFixture(t *testing.T, vars ...string) (*postgres.Factory, persistence.ProcessRecorder, []int64) {
	t.Helper()
	ctx := context.Background()
	f := open(t, vars...)
	r, err := f.ProcessRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := 0; len(ids) < 23; i++ {
		id := uuid.New()
		batch := []persistence.StoredEvent{{OriginatorID: id, OriginatorVersion: 1, Topic: "A", State: []byte(fmt.Sprint(i))}}
		if i%4 == 0 && len(ids) < 22 {
			batch = append(batch, persistence.StoredEvent{OriginatorID: id, OriginatorVersion: 2, Topic: "B", State: []byte(fmt.Sprint(i, "b"))})
		}
		got, err := r.InsertEvents(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, got...)
	}
	return f, r, ids
}

// idAndState identifies a notification by its ID and its state, which
// differs from row to row in streamFixture.
func idAndState(n persistence.Notification) string { return fmt.Sprint(n.ID, ":", string(n.State)) }

// A stream read in pages, each into the blocks of the page before, gives
// what one select gives, whether its limit ends on a page's end or inside
// one, whether a page is full or not.
func TestAStreamInPagesGivesWhatOneSelectGives(t *testing.T) {
	ctx := context.Background()
	_, r, ids := streamFixture(t)
	// Against what was recorded, not only against another read.
	var all []int64
	for n, err := range postgres.StreamNotifications(ctx, r, persistence.NotificationQuery{Start: 1}, 5) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, n.ID)
	}
	if !slices.Equal(all, ids) {
		t.Fatalf("streamed %v in pages of 5, recorded %v", all, ids)
	}
	for name, q := range map[string]persistence.NotificationQuery{
		"all":                    {Start: 1},
		"from the middle":        {Start: ids[6]},
		"limited in a page":      {Start: 1, Limit: 12},
		"limited at a page":      {Start: 1, Limit: 10},
		"of a topic":             {Start: 1, Topics: []string{"B"}},
		"up to a stop":           {Start: 1, Stop: ids[16]},
		"ending on a page's end": {Start: ids[3]},
	} {
		t.Run(name, func(t *testing.T) {
			one := q
			if one.Limit == 0 {
				one.Limit = 1000
			}
			want, err := r.SelectNotifications(ctx, one)
			if err != nil {
				t.Fatal(err)
			}
			var streamed []persistence.Notification
			for n, err := range postgres.StreamNotifications(ctx, r, q, 5) {
				if err != nil {
					t.Fatal(err)
				}
				streamed = append(streamed, n)
			}
			got, wanted := make([]string, len(streamed)), make([]string, len(want))
			for i, n := range streamed {
				got[i] = idAndState(n)
			}
			for i, n := range want {
				wanted[i] = idAndState(n)
			}
			if !slices.Equal(got, wanted) {
				t.Fatalf("streamed %v in pages of 5, one select gives %v", got, wanted)
			}
		})
	}
}

// A stream holds no connection while its caller works on a page: a caller
// using a pool of one connection meanwhile is served, and one that stops
// early leaves no connection acquired.
func TestAStreamHoldsNoConnectionWhileItsCallerWorks(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f, r, ids := streamFixture(t, "POSTGRES_POOL_SIZE=1")
	seen := 0
	for n, err := range postgres.StreamNotifications(ctx, r, persistence.NotificationQuery{Start: 1}, 5) {
		if err != nil {
			t.Fatal(err)
		}
		if max, err := r.MaxNotificationID(ctx); err != nil || max != ids[len(ids)-1] {
			t.Fatalf("max notification ID %d, %v during the stream, want %d", max, err, ids[len(ids)-1])
		}
		if seen++; n.ID != ids[seen-1] {
			t.Fatalf("notification %d is %d, want %d", seen, n.ID, ids[seen-1])
		}
		if seen == 7 { // in the second page
			break
		}
	}
	if acquired := f.Pool().Stat().AcquiredConns(); acquired != 0 {
		t.Fatalf("%d connections still acquired after the stream stopped", acquired)
	}
}

// A context cancelled while a page is yielded fails the stream after that
// page, when it reads the next.
func TestAStreamCancelledMidPageFailsAfterIt(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, r, _ := streamFixture(t)
	seen := 0
	var failed error
	for _, err := range postgres.StreamNotifications(ctx, r, persistence.NotificationQuery{Start: 1}, 5) {
		if err != nil {
			failed = err
			break
		}
		if seen++; seen == 1 {
			cancel()
		}
	}
	if seen != 5 || !errors.Is(failed, context.Canceled) {
		t.Fatalf("streamed %d notifications then %v, want 5 then context.Canceled", seen, failed)
	}
}
