package s3

import (
	"encoding/json"
	"fmt"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// commitRecord is the body of a log object: one save, whole. It is the
// only object a save writes to record itself; everything else is an
// index derived from it.
type commitRecord struct {
	Tenant  string                `json:"tenant,omitempty"`
	Commit  string                `json:"commit,omitempty"`
	Headers persistence.Headers   `json:"headers,omitempty"`
	Track   *persistence.Tracking `json:"tracking,omitempty"`
	Events  []storedEvent         `json:"events,omitempty"`
	// Replace marks a save of snapshots that replaces the records at its
	// versions rather than follows them.
	Replace bool `json:"replace,omitempty"`
	// Erase makes the record an erase marker: it hides what it erases
	// from every read from the moment its position is claimed.
	Erase *eraseRecord `json:"erase,omitempty"`
	// Nonce tells the writer that a log object is its own when the SDK
	// retried a put that had in fact succeeded.
	Nonce string `json:"nonce"`
}

// storedEvent is an event in a commit record or a chunk.
type storedEvent struct {
	ID      uuid.UUID `json:"id"`
	Version int64     `json:"v"`
	Topic   string    `json:"topic"`
	State   []byte    `json:"state"`
}

// erased reports whether the event is the place of an erased one: its
// index in the save keeps the notification IDs of the others.
func (e storedEvent) erased() bool { return e.ID == uuid.Nil }

// liveEvents counts the events of the record that are not erased.
func (r *commitRecord) liveEvents() int {
	n := 0
	for _, e := range r.Events {
		if !e.erased() {
			n++
		}
	}
	return n
}

// eraseRecord is what an erase marker erases: the aggregate of the
// record's tenant (every purpose's records of it too), or with no
// aggregate the whole tenant. Bounds holds, for each purpose (by its
// escaped name), the last position of its log when the marker was
// claimed: the marker erases that log's records up to it.
type eraseRecord struct {
	Aggregate *uuid.UUID       `json:"aggregate,omitempty"`
	Bounds    map[string]int64 `json:"bounds,omitempty"`
}

// marker is an erase marker as its index object holds it.
type marker struct {
	Pos       int64            `json:"pos"`
	Tenant    string           `json:"tenant,omitempty"`
	Aggregate *uuid.UUID       `json:"aggregate,omitempty"`
	Bounds    map[string]int64 `json:"bounds,omitempty"`
}

func (r *commitRecord) marker(pos int64) *marker {
	return &marker{Pos: pos, Tenant: r.Tenant, Aggregate: r.Erase.Aggregate, Bounds: r.Erase.Bounds}
}

// chunk is the body of an aggregate's index object: its events of one
// save, and where the save is in the log.
type chunk struct {
	Pos     int64               `json:"pos"`
	Commit  string              `json:"commit,omitempty"`
	Headers persistence.Headers `json:"headers,omitempty"`
	Events  []storedEvent       `json:"events"`
}

func (r *commitRecord) commitID() (uuid.UUID, error) { return parseCommit(r.Commit) }

func parseCommit(s string) (uuid.UUID, error) {
	if s == "" {
		return uuid.Nil, nil
	}
	id, err := uuid.Parse(s)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%w: commit ID %q: %v", persistence.ErrCorrupt, s, err)
	}
	return id, nil
}

func commitString(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

// decode reads a stored body; damaged bytes are an error wrapping
// persistence.ErrCorrupt naming the key, never a panic.
func decode(key string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: object %s: %v", persistence.ErrCorrupt, key, err)
	}
	return nil
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Strings, numbers, UUIDs and byte slices always encode.
		panic(err)
	}
	return b
}
