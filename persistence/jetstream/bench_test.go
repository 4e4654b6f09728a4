package jetstream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/google/uuid"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/strata-go/strata/internal/natstest"
	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/jetstream"
)

// BenchmarkSave compares a save of one new aggregate's event through
// Strata (an atomic batch of one message with its expected sequence and
// commit ID, the head read from the leader first since the aggregate is
// new to the factory) with a raw js.Publish of a message of the same
// size to an R3 stream of the same cluster, by 1, 4 and 16 writers.
func BenchmarkSave(b *testing.B) {
	c := natstest.Shared(b)
	ctx := context.Background()
	f := open(b, c)
	r, err := f.ApplicationRecorder(ctx)
	if err != nil {
		b.Fatal(err)
	}
	js, err := njs.New(f.Conn())
	if err != nil {
		b.Fatal(err)
	}
	raw := "RAW" + fmt.Sprint(apps.Add(1))
	deleteStream(b, c.URL(), raw)
	if _, err := js.CreateStream(ctx, njs.StreamConfig{Name: raw, Subjects: []string{raw + ".>"}, Replicas: 3, Storage: njs.FileStorage}); err != nil {
		b.Fatal(err)
	}
	state := make([]byte, 200)
	event := func() persistence.StoredEvent {
		return persistence.StoredEvent{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: "bench.Created", State: state, CommitID: uuid.New()}
	}
	// The raw message is as long as Strata's envelope of the same event.
	payload := make([]byte, len(jetstream.EncodeEventForBench(event())))
	ops := map[string]func() error{
		"strata": func() error { _, err := r.InsertEvents(ctx, []persistence.StoredEvent{event()}); return err },
		"raw js.Publish": func() error {
			_, err := js.Publish(ctx, raw+"."+uuid.NewString(), payload)
			return err
		},
	}
	for _, writers := range []int{1, 4, 16} {
		for _, name := range []string{"raw js.Publish", "strata"} {
			op := ops[name]
			b.Run(fmt.Sprintf("writers=%d/%s", writers, name), func(b *testing.B) {
				b.ReportAllocs()
				var wg sync.WaitGroup
				errs := make(chan error, writers)
				per := (b.N + writers - 1) / writers
				b.ResetTimer()
				for range writers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range per {
							if err := op(); err != nil {
								errs <- err
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				close(errs)
				for err := range errs {
					b.Fatal(err)
				}
				b.ReportMetric(float64(per*writers)/b.Elapsed().Seconds(), "saves/s")
			})
		}
	}
}
