package jetstream

import (
	"bytes"
	"maps"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/persistence"
)

func FuzzDecodeEvent(f *testing.F) {
	f.Add(encodeEvent(persistence.StoredEvent{OriginatorID: uuid.New(), OriginatorVersion: 7, Topic: "a\nb", State: []byte("s"),
		CommitID: uuid.New(), Headers: persistence.Headers{"k": "v"}}))
	f.Add([]byte{formatEvent})
	f.Add(encodeTracking(5, "tenant"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEvent(b)
		if err != nil {
			return
		}
		again, err := decodeEvent(encodeEvent(e))
		if err != nil || again.OriginatorID != e.OriginatorID || again.OriginatorVersion != e.OriginatorVersion ||
			again.Topic != e.Topic || !bytes.Equal(again.State, e.State) || again.CommitID != e.CommitID || !maps.Equal(again.Headers, e.Headers) {
			t.Fatalf("%+v does not survive encoding: %+v %v", e, again, err)
		}
		decodeTracking(b)
	})
}

func TestTenantTokens(t *testing.T) {
	for _, tenant := range []string{"", "a", "tenant b/ü", "x.y.*>"} {
		tok := tenantToken(tenant)
		got, err := tenantFromToken(tok)
		if err != nil || got != tenant {
			t.Fatalf("tenant %q: token %q reads back as %q, %v", tenant, tok, got, err)
		}
	}
}
