package persistence_test

import (
	stdjson "encoding/json"
	"testing"

	"github.com/strata-go/strata/internal/benchcmp"
)

// BenchmarkMapper measures encoding and decoding one event against plain
// encoding/json marshalling and unmarshalling of the same struct.
func BenchmarkMapper(b *testing.B) {
	_, events := newAccount(b)
	e := events[1]
	for _, name := range []string{"JSON", "JSON, zlib and AES-GCM"} {
		m := mappers(b)[name]
		b.Run("encode/"+name, func(b *testing.B) {
			b.ReportAllocs()
			benchcmp.Compare(b,
				func(int) {
					if _, err := stdjson.Marshal(e.Data); err != nil {
						b.Fatal(err)
					}
				},
				func(int) {
					if _, err := m.ToStored(e); err != nil {
						b.Fatal(err)
					}
				})
		})
		stored, err := m.ToStored(e)
		if err != nil {
			b.Fatal(err)
		}
		raw, _ := stdjson.Marshal(e.Data)
		b.Run("decode/"+name, func(b *testing.B) {
			b.ReportAllocs()
			benchcmp.Compare(b,
				func(int) {
					var d Deposited
					if err := stdjson.Unmarshal(raw, &d); err != nil {
						b.Fatal(err)
					}
				},
				func(int) {
					if _, err := m.ToEvent(stored); err != nil {
						b.Fatal(err)
					}
				})
		})
	}
}
