package s3

import (
	"slices"
	"sync"

	"github.com/google/uuid"
)

// known is what a process knows of the aggregates of the events' log:
// for each aggregate it has read whole, its chunks as of a log position,
// and the positions this process claimed itself since, with the
// aggregates each touched. A read whose list of the end of the log shows
// no position past what it knows, but positions this process claimed
// without touching the aggregate, takes the chunks from here instead of
// listing them; a save checks its versions and commit ID against them
// instead of listing the aggregate's chunks and commit records.
//
// That is exact, not a guess: positions are dense and claimed in order,
// and a list of the end of the log is strongly consistent, so if every
// position between the one an entry is complete for and the end of the
// log just listed is this process's own save of other aggregates (no
// erase marker), nothing has been recorded for the aggregate since, and
// nothing of it can have been erased or deleted (an erasure is a marker
// in the log first). A position of another process, or a marker, voids
// the entry for that read, which then lists as before and remembers what
// it finds.
type known struct {
	mu   sync.Mutex
	aggs map[aggKey]*aggState
	// own holds the positions this process claimed, with what each save
	// touched, the last maxOwn of them.
	own    map[int64]ownSave
	ownMax int64
}

type aggKey struct {
	tenant string
	id     uuid.UUID
}

// aggState is an aggregate's live chunks (no erase marker up to at
// hides them), complete as of log position at.
type aggState struct {
	at   int64
	srcs []knownSrc
}

// knownSrc is one chunk of an aggregate: its key, versions, save, and
// the save's commit ID if known.
type knownSrc struct {
	key              string
	first, last, pos int64
	commit           uuid.UUID
	commitKnown      bool
}

type ownSave struct {
	aggs   []aggKey
	marker bool
}

const (
	// maxOwn bounds the own positions remembered, and so how far an
	// entry can fall behind the end of the log and still be used.
	maxOwn = 1024
	// maxKnownAggs bounds the aggregates remembered; past it the process
	// forgets them all and starts again.
	maxKnownAggs = 4096
)

// validLocked reports whether the entry is still complete at head.
func (k *known) validLocked(key aggKey, st *aggState, head int64) bool {
	if st == nil || head < st.at || head-st.at > maxOwn {
		return false
	}
	for p := st.at + 1; p <= head; p++ {
		o, ok := k.own[p]
		if !ok || o.marker || slices.Contains(o.aggs, key) {
			return false
		}
	}
	return true
}

// lookup returns the chunks of the aggregate as of head, if it knows
// them.
func (k *known) lookup(tenant string, id uuid.UUID, head int64) ([]knownSrc, bool) {
	key := aggKey{tenant, id}
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.aggs[key]
	if !k.validLocked(key, st, head) {
		return nil, false
	}
	return st.srcs, true
}

// store remembers the aggregate's live chunks as of head.
func (k *known) store(tenant string, id uuid.UUID, head int64, srcs []knownSrc) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.aggs == nil || len(k.aggs) >= maxKnownAggs {
		k.aggs = map[aggKey]*aggState{}
	}
	key := aggKey{tenant, id}
	if st := k.aggs[key]; st != nil && st.at > head {
		return
	}
	k.aggs[key] = &aggState{at: head, srcs: srcs}
}

// forget drops what it knows of an aggregate: a chunk it listed is gone.
func (k *known) forget(tenant string, id uuid.UUID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.aggs, aggKey{tenant, id})
}

// saved records this process's save at next, claimed on a head at pos.
// With indexed (its chunks are written), an aggregate known as of pos is
// known as of next with the save's chunk added; otherwise the save voids
// what is known of the aggregates it touched.
func (k *known) saved(pos, next int64, rec *commitRecord, chunkKey func(tenant string, id uuid.UUID, first, last, pos int64) string, indexed bool) {
	groups := groupRecord(rec.Events)
	o := ownSave{marker: rec.Erase != nil}
	for _, g := range groups {
		o.aggs = append(o.aggs, aggKey{rec.Tenant, g[0].ID})
	}
	commit, cerr := rec.commitID()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.own == nil {
		k.own = map[int64]ownSave{}
	}
	k.own[next] = o
	k.ownMax = max(k.ownMax, next)
	if len(k.own) > maxOwn {
		for p := range k.own {
			if p <= k.ownMax-maxOwn {
				delete(k.own, p)
			}
		}
	}
	if !indexed || o.marker || cerr != nil {
		return
	}
	for _, g := range groups {
		key := aggKey{rec.Tenant, g[0].ID}
		st := k.aggs[key]
		if !k.validLocked(key, st, pos) {
			continue
		}
		first, last := g[0].Version, g[len(g)-1].Version
		srcs := append(slices.Clip(st.srcs), knownSrc{key: chunkKey(rec.Tenant, g[0].ID, first, last, next),
			first: first, last: last, pos: next, commit: commit, commitKnown: true})
		k.aggs[key] = &aggState{at: next, srcs: srcs}
	}
}
