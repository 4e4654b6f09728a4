package persistence

import (
	"errors"
	"fmt"
	"time"

	"github.com/strata-go/strata/domain"
)

// Mapper converts domain events and snapshots to stored events and back.
// On the way in, it transcodes the value, then compresses it (if it has a
// compressor), then encrypts it (if it has a cipher); on the way out it
// does the reverse, upcasting state recorded by an older class version.
//
// A Mapper is safe for concurrent use.
type Mapper struct {
	types      *domain.Registry
	transcoder Transcoder
	compressor Compressor
	cipher     Cipher
}

// MapperOption configures a Mapper.
type MapperOption func(*Mapper)

// WithTranscoder sets the transcoder (default: a [JSONTranscoder] with the
// built-in transcodings).
func WithTranscoder(t Transcoder) MapperOption { return func(m *Mapper) { m.transcoder = t } }

// WithCompressor compresses stored state.
func WithCompressor(c Compressor) MapperOption { return func(m *Mapper) { m.compressor = c } }

// WithCipher encrypts stored state.
func WithCipher(c Cipher) MapperOption { return func(m *Mapper) { m.cipher = c } }

// NewMapper returns a mapper for the types in the registry.
func NewMapper(types *domain.Registry, opts ...MapperOption) *Mapper {
	m := &Mapper{types: types}
	for _, o := range opts {
		o(m)
	}
	if m.transcoder == nil {
		m.transcoder = new(JSONTranscoder)
	}
	return m
}

// Types returns the mapper's type registry.
func (m *Mapper) Types() *domain.Registry { return m.types }

// Transcoder returns the mapper's transcoder.
func (m *Mapper) Transcoder() Transcoder { return m.transcoder }

// storedState is what the transcoder encodes: the user's value in Data,
// with the metadata that the recorder's columns do not hold.
type storedState struct {
	Timestamp    time.Time  `json:"timestamp"`
	CreatedOn    *time.Time `json:"created_on,omitempty"`
	ClassVersion int        `json:"class_version"`
	Data         any        `json:"data"`
}

// ToStored converts a domain event to a stored event.
func (m *Mapper) ToStored(e domain.Event) (StoredEvent, error) {
	info, err := m.types.Lookup(e.Data)
	if err != nil {
		return StoredEvent{}, fmt.Errorf("encode event %s version %d: %w", e.OriginatorID, e.OriginatorVersion, err)
	}
	state, err := m.encode(storedState{Timestamp: e.Timestamp, ClassVersion: info.ClassVersion(), Data: e.Data})
	if err != nil {
		return StoredEvent{}, fmt.Errorf("encode event %s version %d (%s): %w", e.OriginatorID, e.OriginatorVersion, info.Topic(), err)
	}
	return StoredEvent{OriginatorID: e.OriginatorID, OriginatorVersion: e.OriginatorVersion, Topic: info.Topic(), State: state}, nil
}

// ToEvent converts a stored event to a domain event. A wrong cipher key,
// corrupt bytes and an unknown topic are errors that say which (wrapping
// [ErrWrongKey], [ErrCorrupt] or [domain.ErrUnknownTopic]).
func (m *Mapper) ToEvent(s StoredEvent) (domain.Event, error) {
	info, err := m.types.Resolve(s.Topic)
	if err != nil {
		return domain.Event{}, fmt.Errorf("decode event %s version %d: %w", s.OriginatorID, s.OriginatorVersion, err)
	}
	st, data, err := m.decode(s.State, info)
	if err != nil {
		return domain.Event{}, fmt.Errorf("decode event %s version %d (%s): %w", s.OriginatorID, s.OriginatorVersion, s.Topic, err)
	}
	return domain.Event{OriginatorID: s.OriginatorID, OriginatorVersion: s.OriginatorVersion, Timestamp: st.Timestamp, Data: data}, nil
}

// SnapshotToStored converts a snapshot to a stored event whose topic is the
// aggregate type's topic.
func (m *Mapper) SnapshotToStored(s domain.Snapshot) (StoredEvent, error) {
	info, err := m.types.Lookup(s.State)
	if err != nil {
		return StoredEvent{}, fmt.Errorf("encode snapshot of %s version %d: %w", s.OriginatorID, s.OriginatorVersion, err)
	}
	if ok, reason := info.Snapshottable(); !ok {
		if !info.IsAggregate() {
			reason = info.Topic() + " is not an aggregate type"
		}
		return StoredEvent{}, fmt.Errorf("encode snapshot of %s version %d: %w: %s", s.OriginatorID, s.OriginatorVersion, ErrProgramming, reason)
	}
	created := s.CreatedOn
	state, err := m.encode(storedState{Timestamp: s.Timestamp, CreatedOn: &created, ClassVersion: info.ClassVersion(), Data: s.State})
	if err != nil {
		return StoredEvent{}, fmt.Errorf("encode snapshot of %s version %d (%s): %w", s.OriginatorID, s.OriginatorVersion, info.Topic(), err)
	}
	return StoredEvent{OriginatorID: s.OriginatorID, OriginatorVersion: s.OriginatorVersion, Topic: info.Topic(), State: state}, nil
}

// ToSnapshot converts a stored snapshot back. State recorded by an older
// class version of the aggregate type is upcast; if that is impossible the
// error wraps [domain.ErrUpcast].
func (m *Mapper) ToSnapshot(s StoredEvent) (domain.Snapshot, error) {
	info, err := m.types.Resolve(s.Topic)
	if err != nil {
		return domain.Snapshot{}, fmt.Errorf("decode snapshot of %s version %d: %w", s.OriginatorID, s.OriginatorVersion, err)
	}
	if !info.IsAggregate() {
		return domain.Snapshot{}, fmt.Errorf("decode snapshot of %s version %d: %w: %s is not an aggregate type", s.OriginatorID, s.OriginatorVersion, ErrData, s.Topic)
	}
	st, data, err := m.decode(s.State, info)
	if err != nil {
		return domain.Snapshot{}, fmt.Errorf("decode snapshot of %s version %d (%s): %w", s.OriginatorID, s.OriginatorVersion, s.Topic, err)
	}
	snap := domain.Snapshot{OriginatorID: s.OriginatorID, OriginatorVersion: s.OriginatorVersion, Timestamp: st.Timestamp, State: data.(domain.Root)}
	if st.CreatedOn != nil {
		snap.CreatedOn = *st.CreatedOn
	}
	return snap, nil
}

func (m *Mapper) encode(st storedState) ([]byte, error) {
	b, err := m.transcoder.Marshal(st)
	if err != nil {
		return nil, err
	}
	if m.compressor != nil {
		if b, err = m.compressor.Compress(b); err != nil {
			return nil, fmt.Errorf("compress: %w", err)
		}
	}
	if m.cipher != nil {
		if b, err = m.cipher.Encrypt(b); err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
	}
	return b, nil
}

// decode reverses encode and returns the decoded value of info's type,
// upcasting it first if it was recorded by an older class version.
func (m *Mapper) decode(b []byte, info *domain.TypeInfo) (storedState, any, error) {
	var err error
	if m.cipher != nil {
		if b, err = m.cipher.Decrypt(b); err != nil {
			return storedState{}, nil, err
		}
	}
	if m.compressor != nil {
		if b, err = m.compressor.Decompress(b); err != nil {
			return storedState{}, nil, err
		}
	}
	version := 1
	if info.ClassVersion() > 1 {
		var hdr struct {
			ClassVersion int `json:"class_version"`
		}
		if err := m.transcoder.Unmarshal(b, &hdr); err != nil {
			return storedState{}, nil, corrupt(err)
		}
		version = hdr.ClassVersion
	}
	ptr := info.New()
	st := storedState{Data: ptr}
	if version >= info.ClassVersion() {
		if err := m.transcoder.Unmarshal(b, &st); err != nil {
			return storedState{}, nil, corrupt(err)
		}
		if st.ClassVersion > info.ClassVersion() {
			return storedState{}, nil, fmt.Errorf("%w: %s: stored class version %d is newer than the registered version %d",
				domain.ErrUpcast, info.Topic(), st.ClassVersion, info.ClassVersion())
		}
		return st, info.Value(ptr), nil
	}
	var state map[string]any
	st.Data = &state
	if err := m.transcoder.Unmarshal(b, &st); err != nil {
		return storedState{}, nil, corrupt(err)
	}
	if state == nil {
		state = map[string]any{}
	}
	if err := info.Upcast(state, version); err != nil {
		return storedState{}, nil, err
	}
	upcast, err := m.transcoder.Marshal(state)
	if err != nil {
		return storedState{}, nil, fmt.Errorf("%w: %s: encode upcast state: %w", domain.ErrUpcast, info.Topic(), err)
	}
	if err := m.transcoder.Unmarshal(upcast, ptr); err != nil {
		return storedState{}, nil, fmt.Errorf("%w: %s: upcast state does not fit the type: %w", domain.ErrUpcast, info.Topic(), err)
	}
	st.ClassVersion = info.ClassVersion()
	return st, info.Value(ptr), nil
}

func corrupt(err error) error {
	if errors.Is(err, ErrPersistence) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}
