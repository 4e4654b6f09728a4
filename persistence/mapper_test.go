package persistence_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
)

type Account struct {
	domain.Aggregate
	Owner   string
	Balance decimal.Decimal
}

type AccountOpened struct {
	Owner string
}

type Deposited struct {
	Amount decimal.Decimal
	At     time.Time
	Ref    uuid.UUID
}

func (e AccountOpened) ApplyTo(a *Account) { a.Owner = e.Owner }
func (e Deposited) ApplyTo(a *Account)     { a.Balance = a.Balance.Add(e.Amount) }

type secretive struct {
	domain.Aggregate
	hidden int
}

type secretiveOpened struct{}

func (secretiveOpened) ApplyTo(s *secretive) { s.hidden = 1 }

func accountTypes(t testing.TB, extra ...domain.Def) *domain.Registry {
	r, err := domain.NewRegistry(append([]domain.Def{
		domain.AggregateType[Account](domain.Named("Account"), domain.CreatedBy(AccountOpened{})),
		domain.EventType[AccountOpened](domain.Named("Account.Opened")),
		domain.EventType[Deposited](domain.Named("Account.Deposited")),
		domain.AggregateType[secretive](),
	}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newAccount(t testing.TB) (*Account, []domain.Event) {
	a, err := domain.New[Account](domain.NewID(), AccountOpened{Owner: "Alice"})
	if err != nil {
		t.Fatal(err)
	}
	if err := domain.Trigger(a, Deposited{Amount: decimal.RequireFromString("200.00"), At: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), Ref: uuid.New()}); err != nil {
		t.Fatal(err)
	}
	return a, a.PendingEvents()
}

func testKey(t testing.TB) []byte {
	return bytes.Repeat([]byte{7}, 32)
}

func mappers(t testing.TB) map[string]*persistence.Mapper {
	types := accountTypes(t)
	c, err := persistence.NewAESCipher(testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*persistence.Mapper{
		"JSON":                   persistence.NewMapper(types),
		"JSON and zlib":          persistence.NewMapper(types, persistence.WithCompressor(new(persistence.ZlibCompressor))),
		"JSON and AES-GCM":       persistence.NewMapper(types, persistence.WithCipher(c)),
		"JSON, zlib and AES-GCM": persistence.NewMapper(types, persistence.WithCompressor(new(persistence.ZlibCompressor)), persistence.WithCipher(c)),
	}
}

func TestMapperRoundTripsEventsAndSnapshots(t *testing.T) {
	for name, m := range mappers(t) {
		t.Run(name, func(t *testing.T) {
			a, events := newAccount(t)
			for _, e := range events {
				s, err := m.ToStored(e)
				if err != nil {
					t.Fatal(err)
				}
				if s.OriginatorID != e.OriginatorID || s.OriginatorVersion != e.OriginatorVersion || !strings.HasPrefix(s.Topic, "Account.") {
					t.Fatalf("stored %+v", s)
				}
				// Encrypted state never shows the plaintext, plain JSON always
				// does; whether zlib's output happens to keep a short string
				// literal depends on the rest of the state, so it is not said.
				visible := bytes.Contains(s.State, []byte("Alice"))
				if e.OriginatorVersion == 1 && (strings.Contains(name, "AES") && visible || name == "JSON" && !visible) {
					t.Fatalf("%s: state %q shows the plaintext: %v", name, s.State, visible)
				}
				back, err := m.ToEvent(s)
				if err != nil {
					t.Fatal(err)
				}
				if back.OriginatorID != e.OriginatorID || back.OriginatorVersion != e.OriginatorVersion || back.Timestamp != e.Timestamp {
					t.Fatalf("decoded %+v, want %+v", back, e)
				}
				if d, ok := back.Data.(Deposited); ok {
					want := e.Data.(Deposited)
					if !d.Amount.Equal(want.Amount) || d.Amount.Exponent() != -2 || d.At != want.At || d.Ref != want.Ref {
						t.Fatalf("decoded %+v, want %+v", d, want)
					}
				} else if back.Data != e.Data {
					t.Fatalf("decoded %#v, want %#v", back.Data, e.Data)
				}
			}

			snap, err := domain.TakeSnapshot(a)
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.SnapshotToStored(snap)
			if err != nil {
				t.Fatal(err)
			}
			if s.Topic != "Account" || s.OriginatorVersion != 2 {
				t.Fatalf("stored snapshot %+v", s)
			}
			back, err := m.ToSnapshot(s)
			if err != nil {
				t.Fatal(err)
			}
			agg, err := back.Aggregate()
			if err != nil {
				t.Fatal(err)
			}
			got := agg.(*Account)
			if got.ID() != a.ID() || got.Version() != 2 || got.CreatedOn() != a.CreatedOn() || got.ModifiedOn() != a.ModifiedOn() ||
				got.Owner != "Alice" || got.Balance.String() != "200" || got.Balance.Exponent() != -2 {
				t.Fatalf("restored %+v from %+v", got, back)
			}
		})
	}
}

func TestCompressionMakesStateNoLarger(t *testing.T) {
	ms := mappers(t)
	_, events := newAccount(t)
	plain, _ := ms["JSON and AES-GCM"].ToStored(events[1])
	small, _ := ms["JSON, zlib and AES-GCM"].ToStored(events[1])
	if len(small.State) > len(plain.State)+8 {
		t.Fatalf("compressed %d bytes, uncompressed %d", len(small.State), len(plain.State))
	}
}

func TestDecodingBadStateSaysWhatIsWrong(t *testing.T) {
	ms := mappers(t)
	_, events := newAccount(t)
	enc := ms["JSON, zlib and AES-GCM"]
	good, err := enc.ToStored(events[1])
	if err != nil {
		t.Fatal(err)
	}
	otherKey, _ := persistence.NewAESCipher(bytes.Repeat([]byte{9}, 32))
	wrongKey := persistence.NewMapper(enc.Types(), persistence.WithCompressor(new(persistence.ZlibCompressor)), persistence.WithCipher(otherKey))
	flipped := bytes.Clone(good.State)
	flipped[len(flipped)-3] ^= 0x40
	tests := []struct {
		name   string
		mapper *persistence.Mapper
		state  []byte
		topic  string
		want   error
	}{
		{"a wrong key", wrongKey, good.State, good.Topic, persistence.ErrWrongKey},
		{"a flipped bit", enc, flipped, good.Topic, persistence.ErrCorrupt},
		{"truncated ciphertext", enc, good.State[:20], good.Topic, persistence.ErrCorrupt},
		{"no bytes", enc, nil, good.Topic, persistence.ErrCorrupt},
		{"an unknown topic", enc, good.State, "Account.Vanished", domain.ErrUnknownTopic},
		{"corrupt zlib", ms["JSON and zlib"], []byte("x\x9cnot zlib"), good.Topic, persistence.ErrCorrupt},
		{"corrupt JSON", ms["JSON"], []byte(`{"timestamp":`), good.Topic, persistence.ErrCorrupt},
		{"JSON of another shape", ms["JSON"], []byte(`{"timestamp":"2024-01-01T00:00:00Z","class_version":1,"data":{"Amount":[1]}}`), good.Topic, persistence.ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.mapper.ToEvent(persistence.StoredEvent{OriginatorID: good.OriginatorID, OriginatorVersion: 2, Topic: tt.topic, State: tt.state})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), good.OriginatorID.String()) {
				t.Fatalf("error %q does not name the aggregate", err)
			}
			if tt.want == domain.ErrUnknownTopic && !strings.Contains(err.Error(), `"Account.Vanished"`) {
				t.Fatalf("error %q does not name the topic", err)
			}
			if tt.want != domain.ErrUnknownTopic && !errors.Is(err, persistence.ErrData) {
				t.Fatalf("%v is not a data error", err)
			}
		})
	}
}

func TestOldEventsAreUpcastWhenRead(t *testing.T) {
	// Version 1 of Deposited had a float amount in cents and no reference.
	old := []byte(`{"timestamp":"2020-01-01T00:00:00Z","class_version":1,"data":{"Cents":1999}}`)
	v3 := domain.EventType[Deposited](domain.Named("Account.Deposited"), domain.ClassVersion(3),
		domain.Upcast(1, func(s map[string]any) error {
			cents, ok := s["Cents"].(int64)
			if !ok {
				return errors.New("cents is not an integer")
			}
			s["Amount"] = decimal.New(cents, -2).StringFixed(2)
			delete(s, "Cents")
			return nil
		}),
		domain.Upcast(2, func(s map[string]any) error { s["Ref"] = uuid.Nil.String(); return nil }),
	)
	types, err := domain.NewRegistry(domain.AggregateType[Account](domain.Named("Account")), domain.EventType[AccountOpened](domain.Named("Account.Opened")), v3)
	if err != nil {
		t.Fatal(err)
	}
	m := persistence.NewMapper(types)
	e, err := m.ToEvent(persistence.StoredEvent{OriginatorID: uuid.New(), OriginatorVersion: 2, Topic: "Account.Deposited", State: old})
	if err != nil {
		t.Fatal(err)
	}
	d := e.Data.(Deposited)
	if d.Amount.String() != "19.99" || d.Ref != uuid.Nil || e.Timestamp.Year() != 2020 {
		t.Fatalf("upcast %+v", e)
	}
	// New events are written at version 3 and read without upcasting.
	s, _ := m.ToStored(domain.Event{OriginatorID: uuid.New(), OriginatorVersion: 2, Timestamp: time.Now().UTC(), Data: Deposited{Amount: decimal.NewFromInt(1)}})
	if !bytes.Contains(s.State, []byte(`"class_version":3`)) {
		t.Fatalf("stored %s", s.State)
	}
	if _, err := m.ToEvent(s); err != nil {
		t.Fatal(err)
	}
	// State from a newer program is refused rather than misread.
	newer := []byte(`{"timestamp":"2020-01-01T00:00:00Z","class_version":4,"data":{}}`)
	if _, err := m.ToEvent(persistence.StoredEvent{OriginatorID: uuid.New(), OriginatorVersion: 2, Topic: "Account.Deposited", State: newer}); !errors.Is(err, domain.ErrUpcast) {
		t.Fatalf("newer class version: %v", err)
	}
}

func TestAliasesReadEventsStoredUnderOldTopics(t *testing.T) {
	types := accountTypes(t)
	_ = types.Register(domain.EventType[Deposited](domain.Named("Account.Deposited"), domain.Aliases("bank.Credited")))
	m := persistence.NewMapper(types)
	_, events := newAccount(t)
	s, _ := m.ToStored(events[1])
	s.Topic = "bank.Credited"
	if e, err := m.ToEvent(s); err != nil || e.Data.(Deposited).Amount.String() != "200" {
		t.Fatalf("read under the old topic: %v", err)
	}
}

func TestSnapshotsThatWouldLoseStateAreRefused(t *testing.T) {
	m := persistence.NewMapper(accountTypes(t))
	agg, err := domain.New[secretive](domain.NewID(), secretiveOpened{})
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := domain.TakeSnapshot(agg)
	if _, err := m.SnapshotToStored(snap); !errors.Is(err, persistence.ErrProgramming) || !strings.Contains(err.Error(), "hidden") {
		t.Fatalf("snapshot of an aggregate with unexported state: %v", err)
	}
	_, err = m.ToStored(domain.Event{OriginatorID: uuid.New(), OriginatorVersion: 1, Data: struct{ X int }{1}})
	if !errors.Is(err, domain.ErrUnregistered) {
		t.Fatalf("unregistered event: %v", err)
	}
}

func TestAESCipher(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		key, err := persistence.CreateKey(n)
		if err != nil {
			t.Fatal(err)
		}
		c, err := persistence.NewAESCipherFromString(key)
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := c.Encrypt([]byte("secret"))
		ct2, _ := c.Encrypt([]byte("secret"))
		if bytes.Equal(ct, ct2) || bytes.Contains(ct, []byte("secret")) {
			t.Fatal("ciphertexts repeat or show the plaintext")
		}
		if pt, err := c.Decrypt(ct); err != nil || string(pt) != "secret" {
			t.Fatalf("decrypt: %q %v", pt, err)
		}
	}
	for _, n := range []int{0, 8, 31, 33} {
		if _, err := persistence.CreateKey(n); !errors.Is(err, persistence.ErrConfig) {
			t.Fatalf("CreateKey(%d): %v", n, err)
		}
		if _, err := persistence.NewAESCipher(make([]byte, n)); !errors.Is(err, persistence.ErrConfig) {
			t.Fatalf("a %d-byte key: %v", n, err)
		}
	}
	if _, err := persistence.NewAESCipherFromString("not base64!"); !errors.Is(err, persistence.ErrConfig) {
		t.Fatalf("a key that is not base64: %v", err)
	}
	// Rotation: the new cipher encrypts with the new key and still reads
	// what the old key encrypted.
	oldKey, newKey := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 32)
	old, _ := persistence.NewAESCipher(oldKey)
	rotated, _ := persistence.NewAESCipher(newKey, oldKey)
	ct, _ := old.Encrypt([]byte("kept"))
	if pt, err := rotated.Decrypt(ct); err != nil || string(pt) != "kept" {
		t.Fatalf("decrypt with a previous key: %v", err)
	}
	ct, _ = rotated.Encrypt([]byte("new"))
	if _, err := old.Decrypt(ct); !errors.Is(err, persistence.ErrWrongKey) {
		t.Fatalf("decrypt with the old key only: %v", err)
	}
}

func TestDecodingWithTheWrongSettingsNamesTheSetting(t *testing.T) {
	ms := mappers(t)
	_, events := newAccount(t)
	stored := map[string]persistence.StoredEvent{}
	for name, m := range ms {
		s, err := m.ToStored(events[1])
		if err != nil {
			t.Fatal(err)
		}
		stored[name] = s
	}
	otherKey, _ := persistence.NewAESCipher(bytes.Repeat([]byte{9}, 32))
	tests := []struct {
		name, written string
		reader        *persistence.Mapper
		kind          error
		says          string
	}{
		{"encrypted, read without a key", "JSON and AES-GCM", ms["JSON"], persistence.ErrWrongKey, "CIPHER_KEY is not set"},
		{"encrypted and compressed, read without either", "JSON, zlib and AES-GCM", ms["JSON"], persistence.ErrWrongKey, "CIPHER_KEY is not set"},
		{"encrypted, read with another key", "JSON and AES-GCM", persistence.NewMapper(accountTypes(t), persistence.WithCipher(otherKey)), persistence.ErrWrongKey, "CIPHER_KEY is not the key"},
		{"compressed, read without a compressor", "JSON and zlib", ms["JSON"], persistence.ErrCorrupt, "COMPRESSOR_TOPIC is not set"},
		{"encrypted and compressed, read with the key only", "JSON, zlib and AES-GCM", ms["JSON and AES-GCM"], persistence.ErrCorrupt, "COMPRESSOR_TOPIC is not set"},
		{"plain, read with a key", "JSON", ms["JSON and AES-GCM"], persistence.ErrCorrupt, "written without CIPHER_KEY"},
		{"plain, read with a compressor", "JSON", ms["JSON and zlib"], persistence.ErrCorrupt, "written without COMPRESSOR_TOPIC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.reader.ToEvent(stored[tt.written])
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("decode: %v, want an error wrapping %v that says %q", err, tt.kind, tt.says)
			}
			if err := tt.reader.CheckState(stored[tt.written].State); !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("check state: %v, want an error wrapping %v that says %q", err, tt.kind, tt.says)
			}
		})
	}
	for name, m := range ms {
		if err := m.CheckState(stored[name].State); err != nil {
			t.Errorf("%s checks its own state: %v", name, err)
		}
	}
}

func TestDecompressionIsBounded(t *testing.T) {
	types := accountTypes(t)
	a, _ := newAccount(t)
	a.Owner = strings.Repeat("A", persistence.DefaultMaxDecompressed)
	snap, _ := domain.TakeSnapshot(a)
	big := persistence.NewMapper(types, persistence.WithCompressor(&persistence.ZlibCompressor{MaxSize: 64 << 20}))
	s, err := big.SnapshotToStored(snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := big.ToSnapshot(s); err != nil {
		t.Fatalf("a limit of 64 MiB decodes a 16 MiB state: %v", err)
	}
	_, err = persistence.NewMapper(types, persistence.WithCompressor(new(persistence.ZlibCompressor))).ToSnapshot(s)
	if !errors.Is(err, persistence.ErrData) || !strings.Contains(err.Error(), "COMPRESSOR_MAX_SIZE") {
		t.Fatalf("a state above the default limit: %v", err)
	}
	m, err := persistence.NewMapperFromEnv(persistence.NewEnv("Accounts", map[string]string{"COMPRESSOR_TOPIC": "zlib", "COMPRESSOR_MAX_SIZE": "1000"}), types)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.ToSnapshot(s); !errors.Is(err, persistence.ErrData) {
		t.Fatalf("COMPRESSOR_MAX_SIZE=1000: %v", err)
	}
	for _, bad := range []string{"0", "-1", "lots"} {
		_, err := persistence.NewMapperFromEnv(persistence.NewEnv("Accounts", map[string]string{"COMPRESSOR_MAX_SIZE": bad}), types)
		if !errors.Is(err, persistence.ErrConfig) || !strings.Contains(err.Error(), "COMPRESSOR_MAX_SIZE") {
			t.Errorf("COMPRESSOR_MAX_SIZE=%s: %v", bad, err)
		}
	}
}
