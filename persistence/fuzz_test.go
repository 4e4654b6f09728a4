package persistence_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/strata-go/strata/domain"
	"github.com/strata-go/strata/persistence"
)

// FuzzMapperDecode feeds arbitrary stored state and topics to every mapper
// configuration: decoding must return a value or a classified error, never
// panic.
func FuzzMapperDecode(f *testing.F) {
	ms := mappers(f)
	names := []string{"JSON", "JSON and zlib", "JSON and AES-GCM", "JSON, zlib and AES-GCM"}
	acc, events := newAccount(f)
	snap, _ := domain.TakeSnapshot(acc)
	for i, name := range names {
		for _, e := range events {
			s, _ := ms[name].ToStored(e)
			f.Add(uint8(i), s.Topic, s.State)
		}
		s, _ := ms[name].SnapshotToStored(snap)
		f.Add(uint8(i), s.Topic, s.State)
	}
	f.Add(uint8(0), "Account.Deposited", []byte(`{"timestamp":"2024-01-01T00:00:00Z","class_version":1,"data":{"Amount":"1.5e400","At":"2024-01-01T00:00:00+01:00[Mars/Olympus]"}}`))
	f.Add(uint8(0), "Account.Deposited", []byte(`{"class_version":99}`))
	f.Fuzz(func(t *testing.T, which uint8, topic string, state []byte) {
		m := ms[names[int(which)%len(names)]]
		s := persistence.StoredEvent{OriginatorID: uuid.New(), OriginatorVersion: 1, Topic: topic, State: state}
		for _, err := range []error{
			func() error { _, err := m.ToEvent(s); return err }(),
			func() error { _, err := m.ToSnapshot(s); return err }(),
		} {
			if err != nil && !errors.Is(err, persistence.ErrData) && !errors.Is(err, domain.ErrUnknownTopic) && !errors.Is(err, domain.ErrUpcast) {
				t.Fatalf("unclassified error: %v", err)
			}
		}
	})
}
