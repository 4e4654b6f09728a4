package persistence_test

import (
	"bytes"
	"compress/zlib"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/internal/benchcmp"
	"github.com/strata-go/strata/persistence"
)

// BenchmarkMapper measures the mapper encoding and decoding one event (a
// decimal, a time and a UUID) against the standard library doing the same
// work: encoding/json on an envelope with the same fields written the same
// way, and for the compressed and encrypted mapper compress/zlib and
// AES-GCM with the same level and layout (stdCodec; a test checks that
// each reads what the other writes). For plain JSON, a second baseline
// marshals only the event's data struct, with encoding/json's own forms
// of the decimal and the time: what the envelope and exact forms cost on
// top. For the compressed and encrypted mapper, a third compares its
// encode with encoding/json's plain encode of the same envelope.
func BenchmarkMapper(b *testing.B) {
	_, events := newAccount(b)
	e := events[1]
	for _, name := range []string{"JSON", "JSON, zlib and AES-GCM"} {
		m := mappers(b)[name]
		std := newStdCodec(b, name)
		stored, err := m.ToStored(e)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/"+name+"/vs the standard library, same work", func(b *testing.B) {
			b.ReportAllocs()
			benchcmp.Compare(b,
				func(int) {
					if _, err := std.encode(e); err != nil {
						b.Fatal(err)
					}
				},
				func(int) {
					if _, err := m.ToStored(e); err != nil {
						b.Fatal(err)
					}
				})
		})
		b.Run("decode/"+name+"/vs the standard library, same work", func(b *testing.B) {
			b.ReportAllocs()
			benchcmp.Compare(b,
				func(int) {
					if _, err := std.decode(stored); err != nil {
						b.Fatal(err)
					}
				},
				func(int) {
					if _, err := m.ToEvent(stored); err != nil {
						b.Fatal(err)
					}
				})
		})
		if name != "JSON" {
			// The price of compressing and encrypting: the whole encode
			// against encoding/json's plain encode of the same envelope.
			plain := newStdCodec(b, "JSON")
			b.Run("encode/"+name+"/vs plain JSON, the standard library", func(b *testing.B) {
				b.ReportAllocs()
				benchcmp.Compare(b,
					func(int) {
						if _, err := plain.encode(e); err != nil {
							b.Fatal(err)
						}
					},
					func(int) {
						if _, err := m.ToStored(e); err != nil {
							b.Fatal(err)
						}
					})
			})
			continue
		}
		raw, err := stdjson.Marshal(e.Data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/"+name+"/vs encoding-json, data only", func(b *testing.B) {
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
		b.Run("decode/"+name+"/vs encoding-json, data only", func(b *testing.B) {
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

// TestTheMapperBaselineDoesTheMappersWork checks that the baseline of
// BenchmarkMapper is a fair one: for each mapper it reads what the mapper
// writes and the mapper reads what it writes, to the same event, and
// without compression and encryption it writes the same bytes.
func TestTheMapperBaselineDoesTheMappersWork(t *testing.T) {
	_, events := newAccount(t)
	e := events[1]
	for _, name := range []string{"JSON", "JSON, zlib and AES-GCM"} {
		t.Run(name, func(t *testing.T) {
			m, std := mappers(t)[name], newStdCodec(t, name)
			fromMapper, err := m.ToStored(e)
			if err != nil {
				t.Fatal(err)
			}
			fromStd, err := std.encode(e)
			if err != nil {
				t.Fatal(err)
			}
			if fromStd.Topic != fromMapper.Topic || fromStd.OriginatorID != e.OriginatorID || fromStd.OriginatorVersion != e.OriginatorVersion {
				t.Fatalf("the baseline stored %+v, the mapper %+v", fromStd, fromMapper)
			}
			if name == "JSON" && !bytes.Equal(fromStd.State, fromMapper.State) {
				t.Fatalf("the baseline wrote\n%s\nthe mapper\n%s", fromStd.State, fromMapper.State)
			}
			back, err := std.decode(fromMapper)
			if err != nil {
				t.Fatalf("the baseline reads the mapper's state: %v", err)
			}
			sameEvent(t, back, e)
			back, err = m.ToEvent(fromStd)
			if err != nil {
				t.Fatalf("the mapper reads the baseline's state: %v", err)
			}
			sameEvent(t, back, e)
		})
	}
}

func sameEvent(t *testing.T, got, want domain.Event) {
	t.Helper()
	g, gok := got.Data.(Deposited)
	w := want.Data.(Deposited)
	if !gok || got.OriginatorID != want.OriginatorID || got.OriginatorVersion != want.OriginatorVersion ||
		!got.Timestamp.Equal(want.Timestamp) || got.Timestamp.Location().String() != want.Timestamp.Location().String() ||
		g.Amount.String() != w.Amount.String() || g.Amount.Exponent() != w.Amount.Exponent() ||
		!g.At.Equal(w.At) || g.At.Location().String() != w.At.Location().String() || g.Ref != w.Ref {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// stdCodec is the mapper's work done with the standard library alone, for
// the one event type of the benchmark: encoding/json on an envelope of the
// same fields, times written as RFC 3339 with the zone's name and decimals
// with their scale, then for "JSON, zlib and AES-GCM" compress/zlib at
// BestSpeed with pooled writers and readers, and AES-GCM laid out as
// persistence.AESCipher lays it out (format byte, key ID, nonce, sealed
// text with the first two as additional data).
type stdCodec struct {
	compress         bool
	aead             cipher.AEAD // nil: no encryption
	keyID            [4]byte
	writers, readers sync.Pool
}

func newStdCodec(t testing.TB, mapper string) *stdCodec {
	c := &stdCodec{}
	switch mapper {
	case "JSON":
	case "JSON, zlib and AES-GCM":
		key := testKey(t)
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		if c.aead, err = cipher.NewGCM(block); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(key)
		c.compress, c.keyID = true, [4]byte(sum[:4])
	default:
		t.Fatalf("no baseline for the mapper %q", mapper)
	}
	return c
}

type stdEnvelope struct {
	Timestamp    stdTime      `json:"timestamp"`
	ClassVersion int          `json:"class_version"`
	Data         stdDeposited `json:"data"`
}

type stdDeposited struct {
	Amount stdDecimal
	At     stdTime
	Ref    uuid.UUID
}

const depositedTopic = "Account.Deposited"

func (c *stdCodec) encode(e domain.Event) (persistence.StoredEvent, error) {
	d, ok := e.Data.(Deposited)
	if !ok {
		return persistence.StoredEvent{}, fmt.Errorf("no topic for %T", e.Data)
	}
	b, err := stdjson.Marshal(stdEnvelope{Timestamp: stdTime(e.Timestamp), ClassVersion: 1,
		Data: stdDeposited{Amount: stdDecimal(d.Amount), At: stdTime(d.At), Ref: d.Ref}})
	if err != nil {
		return persistence.StoredEvent{}, err
	}
	if c.compress {
		var buf bytes.Buffer
		w, _ := c.writers.Get().(*zlib.Writer)
		if w == nil {
			if w, err = zlib.NewWriterLevel(&buf, zlib.BestSpeed); err != nil {
				return persistence.StoredEvent{}, err
			}
		} else {
			w.Reset(&buf)
		}
		_, err = w.Write(b)
		if err == nil {
			err = w.Close()
		}
		c.writers.Put(w)
		if err != nil {
			return persistence.StoredEvent{}, err
		}
		b = buf.Bytes()
	}
	if c.aead != nil {
		out := make([]byte, 17, 17+len(b)+c.aead.Overhead())
		out[0] = 1
		copy(out[1:5], c.keyID[:])
		if _, err := rand.Read(out[5:17]); err != nil {
			return persistence.StoredEvent{}, err
		}
		b = c.aead.Seal(out, out[5:17], b, out[:5])
	}
	return persistence.StoredEvent{OriginatorID: e.OriginatorID, OriginatorVersion: e.OriginatorVersion, Topic: depositedTopic, State: b}, nil
}

func (c *stdCodec) decode(s persistence.StoredEvent) (domain.Event, error) {
	if s.Topic != depositedTopic {
		return domain.Event{}, fmt.Errorf("unknown topic %q", s.Topic)
	}
	b := s.State
	if c.aead != nil {
		if len(b) < 17 || b[0] != 1 || [4]byte(b[1:5]) != c.keyID {
			return domain.Event{}, errors.New("not sealed with this key")
		}
		var err error
		if b, err = c.aead.Open(nil, b[5:17], b[17:], b[:5]); err != nil {
			return domain.Event{}, err
		}
	}
	if c.compress {
		var r io.ReadCloser
		if pooled, _ := c.readers.Get().(io.ReadCloser); pooled != nil {
			if err := pooled.(zlib.Resetter).Reset(bytes.NewReader(b), nil); err != nil {
				return domain.Event{}, err
			}
			r = pooled
		} else {
			var err error
			if r, err = zlib.NewReader(bytes.NewReader(b)); err != nil {
				return domain.Event{}, err
			}
		}
		var out bytes.Buffer
		out.Grow(len(b) * 3)
		_, err := out.ReadFrom(r)
		c.readers.Put(r)
		if err != nil {
			return domain.Event{}, err
		}
		b = out.Bytes()
	}
	var env stdEnvelope
	if err := stdjson.Unmarshal(b, &env); err != nil {
		return domain.Event{}, err
	}
	return domain.Event{OriginatorID: s.OriginatorID, OriginatorVersion: s.OriginatorVersion, Timestamp: time.Time(env.Timestamp),
		Data: Deposited{Amount: decimal.Decimal(env.Data.Amount), At: time.Time(env.Data.At), Ref: env.Data.Ref}}, nil
}

// stdTime is a time in the mapper's form: RFC 3339 with nanoseconds, and
// the zone's name in brackets unless it is UTC.
type stdTime time.Time

func (t stdTime) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	b := append(make([]byte, 0, 64), '"')
	b = tt.AppendFormat(b, time.RFC3339Nano)
	if loc := tt.Location(); loc != time.UTC {
		b = append(append(append(b, '['), loc.String()...), ']')
	}
	return append(b, '"'), nil
}

func (t *stdTime) UnmarshalJSON(data []byte) error {
	s, err := strconv.Unquote(string(data))
	if err != nil {
		return err
	}
	zone := ""
	if i := strings.IndexByte(s, '['); i >= 0 && strings.HasSuffix(s, "]") {
		s, zone = s[:i], s[i+1:len(s)-1]
	}
	tt, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return err
	}
	switch {
	case zone == "" && strings.HasSuffix(s, "Z"):
		tt = tt.UTC()
	case zone != "":
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return err
		}
		tt = tt.In(loc)
	}
	*t = stdTime(tt)
	return nil
}

// stdDecimal is a decimal in the mapper's form: a string that keeps the
// scale.
type stdDecimal decimal.Decimal

func (d stdDecimal) MarshalJSON() ([]byte, error) {
	dd := decimal.Decimal(d)
	var s string
	if exp := dd.Exponent(); exp <= 0 {
		s = dd.StringFixed(-exp)
	} else {
		s = dd.Coefficient().String() + "e" + strconv.Itoa(int(exp))
	}
	return strconv.AppendQuote(nil, s), nil
}

func (d *stdDecimal) UnmarshalJSON(data []byte) error {
	s, err := strconv.Unquote(string(data))
	if err != nil {
		return err
	}
	dd, err := decimal.NewFromString(s)
	*d = stdDecimal(dd)
	return err
}
