package memory_test

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/internal/benchcmp"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

// batch returns n events of one aggregate, versions 1 to n, with 200-byte
// states and a commit, as an EventStore's Put makes them.
func batch(n int) []persistence.StoredEvent {
	id, commit := uuid.New(), uuid.New()
	events := make([]persistence.StoredEvent, n)
	for i := range events {
		events[i] = persistence.StoredEvent{OriginatorID: id, OriginatorVersion: int64(i + 1), Topic: "bench.Event",
			State: make([]byte, 200), CommitID: commit}
	}
	return events
}

// renumber gives the events of a batch the aggregate and commit of
// iteration i, so that every iteration saves a new aggregate without
// building a new batch.
func renumber(events []persistence.StoredEvent, i int) {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[:8], uint64(i)+1)
	for j := range events {
		events[j].OriginatorID, events[j].CommitID = id, id
	}
}

// storeSize is how many saves a benchmark's store holds before it is
// replaced by an empty one, on both sides: a store that grew with b.N
// would make the chunks that grow its slices and maps, and the collector's
// work on a heap of b.N saves, the figures.
const storeSize = 1024

// appender is the baseline: the same values appended to a slice under a
// mutex, which is the least an in-memory store can do.
type appender struct {
	mu     sync.Mutex
	events []persistence.StoredEvent
}

func (a *appender) append(events []persistence.StoredEvent) {
	a.mu.Lock()
	a.events = append(a.events, events...)
	a.mu.Unlock()
}

// BenchmarkInsert measures InsertEvents of 1 and of 100 events of a new
// aggregate against appending the same values to a slice under a mutex.
func BenchmarkInsert(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, 100} {
		name := "1 event"
		if n > 1 {
			name = "100 events"
		}
		b.Run(name+"/vs appending to a slice", func(b *testing.B) {
			rec, base := memory.NewRecorder(), &appender{}
			events, baseEvents := batch(n), batch(n)
			b.ReportAllocs()
			benchcmp.Compare(b,
				func(i int) {
					if i%storeSize == 0 {
						base = &appender{}
					}
					renumber(baseEvents, i)
					base.append(baseEvents)
				},
				func(i int) {
					if i%storeSize == 0 {
						rec = memory.NewRecorder()
					}
					renumber(events, i)
					if _, err := rec.InsertEvents(ctx, events); err != nil {
						b.Fatal(err)
					}
				})
		})
	}
}

// BenchmarkSaveGet measures the saving of one event of a new aggregate
// and the reading back of its events, the recorder's part of a save and a
// load; the baseline appends the event to a slice and reads it back by
// index, under a mutex. allocs/op is what the recorder allocates.
func BenchmarkSaveGet(b *testing.B) {
	ctx := context.Background()
	rec, base := memory.NewRecorder(), &appender{}
	events, baseEvents := batch(1), batch(1)
	b.ReportAllocs()
	benchcmp.Compare(b,
		func(i int) {
			if i%storeSize == 0 {
				base = &appender{}
			}
			renumber(baseEvents, i)
			base.append(baseEvents)
			base.mu.Lock()
			e := base.events[len(base.events)-1]
			base.mu.Unlock()
			if e.OriginatorID != baseEvents[0].OriginatorID {
				b.Fatal("read another event")
			}
		},
		func(i int) {
			if i%storeSize == 0 {
				rec = memory.NewRecorder()
			}
			renumber(events, i)
			if _, err := rec.InsertEvents(ctx, events); err != nil {
				b.Fatal(err)
			}
			got, err := rec.SelectEvents(ctx, events[0].OriginatorID, persistence.EventQuery{})
			if err != nil || len(got) != 1 {
				b.Fatalf("read %d events: %v", len(got), err)
			}
		})
}
