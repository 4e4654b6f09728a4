package persistence

import (
	"bytes"
	"compress/zlib"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// inflate reads a zlib stream with the standard library's reader, which
// checks the Adler-32 checksum.
func inflate(t testing.TB, b []byte) []byte {
	t.Helper()
	r, err := zlib.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("zlib header of %x: %v", b, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflate %x: %v", b, err)
	}
	return out
}

func TestDeflateFixedIsReadByCompressZlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, smallDeflate)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	json := `{"timestamp":"2026-11-25T02:20:43.080501756Z","class_version":1,"data":{"Amount":"200.00","At":"2024-01-02T03:04:05.000000006Z","Ref":"5d2f8a44-8e0b-4cbb-9a43-0c9c6b2d1e7f"}}`
	cases := map[string][]byte{
		"empty":                      nil,
		"one byte":                   {'x'},
		"an event's JSON":            []byte(json),
		"a run longer than 258":      bytes.Repeat([]byte{'a'}, 1000),
		"every length and distance":  []byte(strings.Repeat("abcdefghijklmnopqrstuvwxyz0123456789", 60)[:smallDeflate]),
		"random bytes (stored)":      random,
		"bytes from 144 up":          bytes.Repeat([]byte{0xf0, 0x9f, 0x98, 0x80}, 100),
		"the largest state it takes": bytes.Repeat([]byte(json), smallDeflate/len(json)+1)[:smallDeflate],
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			out := deflateFixed([]byte("prefix"), data)
			if !bytes.HasPrefix(out, []byte("prefix")) {
				t.Fatalf("the prefix is lost: %q", out)
			}
			if got := inflate(t, out[len("prefix"):]); !bytes.Equal(got, data) {
				t.Fatalf("inflated %q, want %q", got, data)
			}
			if len(out)-len("prefix") > len(data)+11 {
				t.Fatalf("%d bytes compressed to %d, more than a stored block", len(data), len(out)-len("prefix"))
			}
		})
	}
	// Matches at every distance code and length code that 2 KiB allows.
	for dist := 1; dist < smallDeflate-258; dist = dist*3/2 + 1 {
		for _, length := range []int{3, 4, 5, 10, 11, 12, 18, 34, 67, 130, 131, 227, 257, 258} {
			data := make([]byte, dist+length)
			for i := range dist {
				data[i] = byte(rng.Uint32())
			}
			for i := dist; i < len(data); i++ {
				data[i] = data[i-dist]
			}
			if got := inflate(t, deflateFixed(nil, data)); !bytes.Equal(got, data) {
				t.Fatalf("distance %d, length %d: inflated %x, want %x", dist, length, got, data)
			}
		}
	}
}

func TestDistCode(t *testing.T) {
	for dist := 1; dist <= 32768; dist++ {
		c := distCode(dist)
		hi := 32769
		if c+1 < len(distBase) {
			hi = int(distBase[c+1])
		}
		if dist < int(distBase[c]) || dist >= hi || dist-int(distBase[c]) >= 1<<distExtra[c] {
			t.Fatalf("distance %d: code %d (base %d, %d extra bits)", dist, c, distBase[c], distExtra[c])
		}
	}
}

func FuzzDeflateFixed(f *testing.F) {
	f.Add([]byte(`{"timestamp":"2026-11-25T02:20:43Z","class_version":1,"data":{}}`))
	f.Add(bytes.Repeat([]byte("ab"), 300))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > smallDeflate {
			data = data[:smallDeflate]
		}
		if got := inflate(t, deflateFixed(nil, data)); !bytes.Equal(got, data) {
			t.Fatalf("inflated %x, want %x", got, data)
		}
	})
}
