package recordertest

import (
	"context"
	"strings"
	"testing"

	"github.com/strata-go/strata/persistence"
	"github.com/strata-go/strata/persistence/memory"
)

// prefixOnly claims to record batches all or nothing, but records them one
// insert at a time and keeps those before a failure.
type prefixOnly struct{ *memory.Recorder }

func (r prefixOnly) InsertTrackedBatch(ctx context.Context, inserts []persistence.TrackedInsert) ([][]int64, error) {
	var out [][]int64
	for i, in := range inserts {
		ids, err := r.InsertEvents(ctx, in.Events, persistence.WithTracking(in.Tracking))
		if err != nil {
			return nil, &persistence.BatchError{Index: i, Err: err}
		}
		out = append(out, ids)
	}
	return out, nil
}

// lastUntracked records a batch's events but not its last tracking record.
type lastUntracked struct{ *memory.Recorder }

func (r lastUntracked) InsertTrackedBatch(ctx context.Context, inserts []persistence.TrackedInsert) ([][]int64, error) {
	var out [][]int64
	for i, in := range inserts {
		opts := []persistence.InsertOption{persistence.WithTracking(in.Tracking)}
		if i == len(inserts)-1 {
			opts = nil
		}
		ids, err := r.InsertEvents(ctx, in.Events, opts...)
		if err != nil {
			return nil, &persistence.BatchError{Index: i, Err: err}
		}
		out = append(out, ids)
	}
	return out, nil
}

func TestTheBatchChecksFailOnBrokenRecorders(t *testing.T) {
	ctx := context.Background()
	if msg := checkFailedBatch(ctx, prefixOnly{memory.NewRecorder()}, true); !strings.Contains(msg, "says 0 were recorded") && !strings.Contains(msg, "tracking record recorded true") {
		t.Fatalf("a batch recorder that keeps part of a failed batch passed the check (%q)", msg)
	}
	if msg := checkTrackedBatch(ctx, lastUntracked{memory.NewRecorder()}); !strings.Contains(msg, "is not recorded") {
		t.Fatalf("a batch recorder that loses a tracking record passed the check (%q)", msg)
	}
	for name, atomic := range map[string]bool{"as a batch": true, "one by one": false} {
		fresh := func() persistence.ProcessRecorder {
			if atomic {
				return memory.NewRecorder()
			}
			return unbatched{memory.NewRecorder()}
		}
		if msg := checkTrackedBatch(ctx, fresh()); msg != "" {
			t.Fatalf("the memory recorder %s failed: %s", name, msg)
		}
		if msg := checkFailedBatch(ctx, fresh(), atomic); msg != "" {
			t.Fatalf("the memory recorder %s failed: %s", name, msg)
		}
	}
}

// unbatched hides the memory recorder's batches, so that
// persistence.InsertTracked records one insert at a time.
type unbatched struct{ persistence.ProcessRecorder }
