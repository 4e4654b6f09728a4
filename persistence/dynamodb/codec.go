package dynamodb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

// sortable encodes n so that the strings sort as the numbers do: the
// table's sort keys are strings, shared by items of every kind.
func sortable(n int64) string {
	return fmt.Sprintf("%016x", uint64(n)^(1<<63))
}

// unsortable reverses sortable.
func unsortable(s string) (int64, error) {
	u, err := strconv.ParseUint(s, 16, 64)
	if err != nil || len(s) != 16 {
		return 0, fmt.Errorf("%w: sort key %q is not a number", persistence.ErrCorrupt, s)
	}
	return int64(u ^ (1 << 63)), nil
}

// esc makes a tenant or purpose safe inside a key whose parts are joined
// by "|": a tenant "a|b" must not meet the tenant "a" of aggregate "b|..."
// (aett joins tenant and stream with no separator at all).
func esc(s string) string {
	return strings.NewReplacer("%", "%25", "|", "%7C").Replace(s)
}

// event is an event as an item's blob holds it.
type event struct {
	id      uuid.UUID // in log items only: a chunk's key names its aggregate
	version int64
	nid     int64
	topic   string
	state   []byte
}

// encodeEvents encodes events compactly: DynamoDB charges by the byte and
// limits an item to 400 KB, so one item holds one aggregate's events of
// one save (a chunk) or all the events of a save (a log item).
func encodeEvents(evs []event, withID bool) []byte {
	n := 0
	for _, e := range evs {
		n += 16 + 3*binary.MaxVarintLen64 + len(e.topic) + len(e.state)
	}
	b := make([]byte, 0, n)
	for _, e := range evs {
		if withID {
			b = append(b, e.id[:]...)
		}
		b = binary.AppendVarint(b, e.version)
		b = binary.AppendUvarint(b, uint64(e.nid))
		b = binary.AppendUvarint(b, uint64(len(e.topic)))
		b = append(b, e.topic...)
		b = binary.AppendUvarint(b, uint64(len(e.state)))
		b = append(b, e.state...)
	}
	return b
}

var errShort = errors.New("truncated")

// decodeEvents reverses encodeEvents. Damaged bytes are an error wrapping
// persistence.ErrCorrupt, never a panic.
func decodeEvents(b []byte, withID bool) ([]event, error) {
	var out []event
	for len(b) > 0 {
		var e event
		if withID {
			if len(b) < 16 {
				return nil, fmt.Errorf("%w: stored events: %v", persistence.ErrCorrupt, errShort)
			}
			copy(e.id[:], b[:16])
			b = b[16:]
		}
		v, n := binary.Varint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: stored events: bad version", persistence.ErrCorrupt)
		}
		e.version, b = v, b[n:]
		nid, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: stored events: bad notification ID", persistence.ErrCorrupt)
		}
		e.nid, b = int64(nid), b[n:]
		for _, dst := range []*[]byte{nil, &e.state} {
			l, n := binary.Uvarint(b)
			if n <= 0 || uint64(len(b)-n) < l {
				return nil, fmt.Errorf("%w: stored events: %v", persistence.ErrCorrupt, errShort)
			}
			field := b[n : n+int(l)]
			b = b[n+int(l):]
			if dst == nil {
				e.topic = string(field)
			} else {
				*dst = append([]byte(nil), field...)
			}
		}
		out = append(out, e)
	}
	return out, nil
}
