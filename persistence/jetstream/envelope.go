package jetstream

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/strata-go/strata/persistence"
)

// The payload of an event message is an envelope: a format byte, then the
// originator ID, its version, the commit ID, the topic, the headers and
// the state. Everything but the state is length-prefixed, so that no value
// (a topic with a newline, say) needs escaping, as NATS headers would.
const (
	formatEvent    byte = 1
	formatTracking byte = 2
)

// event is what one event message holds.
type event struct {
	persistence.StoredEvent
	seq uint64 // stream sequence: the notification ID
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// encodeEvent returns the envelope of e.
func encodeEvent(e persistence.StoredEvent) []byte {
	h := persistence.EncodeHeaders(e.Headers)
	b := make([]byte, 0, 1+16+10+16+2+len(e.Topic)+2+len(h)+len(e.State))
	b = append(b, formatEvent)
	b = append(b, e.OriginatorID[:]...)
	b = binary.AppendVarint(b, e.OriginatorVersion)
	b = append(b, e.CommitID[:]...)
	b = appendBytes(b, []byte(e.Topic))
	b = appendBytes(b, h)
	return append(b, e.State...)
}

var errShort = errors.New("truncated envelope")

func readBytes(b []byte) (v, rest []byte, err error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, errShort
	}
	return b[k : k+int(n)], b[k+int(n):], nil
}

// decodeEvent reverses encodeEvent. The state it returns is a copy.
func decodeEvent(b []byte) (persistence.StoredEvent, error) {
	var e persistence.StoredEvent
	if len(b) < 1+16 || b[0] != formatEvent {
		if len(b) > 0 && b[0] != formatEvent {
			return e, fmt.Errorf("%w: message of format %d is no event", persistence.ErrCorrupt, b[0])
		}
		return e, fmt.Errorf("%w: %v", persistence.ErrCorrupt, errShort)
	}
	copy(e.OriginatorID[:], b[1:17])
	b = b[17:]
	v, k := binary.Varint(b)
	if k <= 0 || len(b)-k < 16 {
		return e, fmt.Errorf("%w: %v", persistence.ErrCorrupt, errShort)
	}
	e.OriginatorVersion = v
	b = b[k:]
	copy(e.CommitID[:], b[:16])
	b = b[16:]
	topic, b, err := readBytes(b)
	if err != nil {
		return e, fmt.Errorf("%w: topic: %v", persistence.ErrCorrupt, err)
	}
	h, b, err := readBytes(b)
	if err != nil {
		return e, fmt.Errorf("%w: headers: %v", persistence.ErrCorrupt, err)
	}
	if e.Headers, err = persistence.DecodeHeaders(h); err != nil {
		return e, err
	}
	e.Topic = string(topic)
	e.State = append([]byte{}, b...)
	return e, nil
}

// tracking is what one tracking message holds.
type tracking struct {
	id     int64
	tenant string
}

func encodeTracking(id int64, tenant string) []byte {
	b := []byte{formatTracking}
	b = binary.AppendVarint(b, id)
	return append(b, tenant...)
}

func decodeTracking(b []byte) (tracking, error) {
	if len(b) < 2 || b[0] != formatTracking {
		return tracking{}, fmt.Errorf("%w: not a tracking record", persistence.ErrCorrupt)
	}
	id, k := binary.Varint(b[1:])
	if k <= 0 {
		return tracking{}, fmt.Errorf("%w: tracking record: %v", persistence.ErrCorrupt, errShort)
	}
	return tracking{id: id, tenant: string(b[1+k:])}, nil
}

// tenantToken is a tenant ID as one subject token: "_" for the default
// tenant, otherwise "t" and the hexadecimal UTF-8, since tenant IDs may hold
// dots, spaces and wildcards.
func tenantToken(tenant string) string {
	if tenant == "" {
		return "_"
	}
	return "t" + hex.EncodeToString([]byte(tenant))
}

// tenantFromToken reverses tenantToken.
func tenantFromToken(tok string) (string, error) {
	if tok == "_" {
		return "", nil
	}
	if len(tok) < 2 || tok[0] != 't' {
		return "", fmt.Errorf("%w: subject token %q is no tenant", persistence.ErrCorrupt, tok)
	}
	b, err := hex.DecodeString(tok[1:])
	if err != nil {
		return "", fmt.Errorf("%w: subject token %q is no tenant", persistence.ErrCorrupt, tok)
	}
	return string(b), nil
}

// nameToken is a name (a purpose, an upstream application) as one subject
// token.
func nameToken(name string) string { return "x" + hex.EncodeToString([]byte(name)) }
