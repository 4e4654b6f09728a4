package persistence

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

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

// WithCipher returns a mapper like m that encrypts with c instead, as a
// tenant's view of an application with data keys needs.
func (m *Mapper) WithCipher(c Cipher) *Mapper {
	cp := *m
	cp.cipher = c
	return &cp
}

// Cipher returns the mapper's cipher, or nil.
func (m *Mapper) Cipher() Cipher { return m.cipher }

// WithTypes returns a mapper like m (the same transcoder, compressor and
// cipher) for the types of another registry.
func (m *Mapper) WithTypes(types *domain.Registry) *Mapper {
	c := *m
	c.types = types
	return &c
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
	state, err := m.encode(e.OriginatorID, storedState{Timestamp: e.Timestamp, ClassVersion: info.ClassVersion(), Data: e.Data})
	if err != nil {
		return StoredEvent{}, fmt.Errorf("encode event %s version %d (%s): %w", e.OriginatorID, e.OriginatorVersion, info.Topic(), err)
	}
	return StoredEvent{OriginatorID: e.OriginatorID, OriginatorVersion: e.OriginatorVersion, Topic: info.Topic(), State: state}, nil
}

// ToEvent converts a stored event to a domain event. A wrong cipher key,
// corrupt bytes and an unknown topic are errors that say which (wrapping
// [ErrWrongKey], [ErrCorrupt] or [domain.ErrUnknownTopic]).
func (m *Mapper) ToEvent(s StoredEvent) (domain.Event, error) {
	if s.OriginatorID == uuid.Nil {
		// Recorders give a notification whose stored ID they cannot read
		// the nil UUID, which no aggregate can have.
		return domain.Event{}, fmt.Errorf("decode event version %d (%s): %w: the stored originator ID is missing or damaged", s.OriginatorVersion, s.Topic, ErrCorrupt)
	}
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
	state, err := m.encode(s.OriginatorID, storedState{Timestamp: s.Timestamp, CreatedOn: &created, ClassVersion: info.ClassVersion(), Data: s.State})
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

func (m *Mapper) encode(id uuid.UUID, st storedState) ([]byte, error) {
	b, err := m.transcoder.Marshal(st)
	if err != nil {
		return nil, err
	}
	aes, _ := m.cipher.(*AESCipher)
	if z, ok := m.compressor.(*ZlibCompressor); ok && aes != nil {
		// Compress into the buffer that is encrypted in place: one
		// allocation for the state instead of one per step.
		out := make([]byte, aesHeader, aesOverhead+compressBound(len(b)))
		if out, err = z.appendCompress(out, b); err != nil {
			return nil, fmt.Errorf("compress: %w", err)
		}
		if out, err = aes.sealInPlace(out); err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
		return out, nil
	}
	if m.compressor != nil {
		if b, err = m.compressor.Compress(b); err != nil {
			return nil, fmt.Errorf("compress: %w", err)
		}
	}
	if m.cipher != nil {
		if ac, ok := m.cipher.(AggregateCipher); ok {
			b, err = ac.EncryptAggregate(id, b)
		} else {
			b, err = m.cipher.Encrypt(b)
		}
		if err != nil {
			return nil, fmt.Errorf("encrypt: %w", err)
		}
	}
	return b, nil
}

// CheckState returns the error that decoding stored state would give at
// its first steps, decrypting and decompressing, or nil if the mapper's
// cipher and compressor can undo them. It is cheap (no transcoding), and
// lets a writer check that its configuration reads what a store already
// holds before adding to it.
func (m *Mapper) CheckState(state []byte) error {
	b, err := m.unseal(state)
	if err == nil {
		if _, json := m.transcoder.(*JSONTranscoder); json && !looksJSON(b) {
			err = m.misread(state, b, fmt.Errorf("%w: the state is not JSON", ErrCorrupt))
		}
	}
	return err
}

// unseal decrypts and decompresses stored state as the mapper is
// configured to. Its errors say which setting is missing or wrong when
// the bytes show it: encrypted state and no CIPHER_KEY, compressed state
// and no COMPRESSOR_TOPIC, and the reverse.
func (m *Mapper) unseal(b []byte) ([]byte, error) {
	if m.cipher != nil {
		plain, err := m.cipher.Decrypt(b)
		switch {
		case errors.Is(err, ErrWrongKey):
			return nil, fmt.Errorf("%w: CIPHER_KEY is not the key (nor one of the previous keys) the state was encrypted with", err)
		case err != nil && !looksEncrypted(b) && (looksCompressed(b) || looksJSON(b)):
			return nil, fmt.Errorf("decrypt: %w: the stored state is not encrypted: it was written without CIPHER_KEY", ErrCorrupt)
		case err != nil:
			return nil, err
		}
		b = plain
	}
	if m.compressor != nil {
		plain, err := m.compressor.Decompress(b)
		if err != nil {
			if looksJSON(b) {
				return nil, fmt.Errorf("decompress: %w: the stored state is not compressed: it was written without COMPRESSOR_TOPIC", ErrCorrupt)
			}
			return nil, err
		}
		b = plain
	}
	return b, nil
}

// misread explains a failure to transcode b, which unseal made of state,
// when the bytes show that the mapper lacks a cipher or a compressor that
// the writer had. Only a failure is explained: a transcoder of the
// mapper's own may well write bytes that look like either.
func (m *Mapper) misread(state, b []byte, err error) error {
	switch {
	case m.cipher == nil && looksEncrypted(state):
		return fmt.Errorf("decode: %w: the stored state is encrypted (AES-GCM, key ID %x) but CIPHER_KEY is not set", ErrWrongKey, state[1:5])
	case m.compressor == nil && looksCompressed(b):
		return fmt.Errorf("decode: %w: the stored state is compressed (zlib) but COMPRESSOR_TOPIC is not set", ErrCorrupt)
	}
	return corrupt(err)
}

// looksEncrypted reports whether b has the layout of an AESCipher
// ciphertext. A JSON state cannot start with its format byte.
func looksEncrypted(b []byte) bool { return len(b) >= aesOverhead && b[0] == aesFormat }

// looksCompressed reports whether b starts with a zlib header (RFC 1950:
// deflate, and a header checksum).
func looksCompressed(b []byte) bool {
	return len(b) >= 2 && b[0]&0x0f == 8 && (uint16(b[0])<<8|uint16(b[1]))%31 == 0
}

// looksJSON reports whether b starts as the JSON transcoder's states do.
func looksJSON(b []byte) bool { return len(b) > 0 && b[0] == '{' }

// decode reverses encode and returns the decoded value of info's type,
// upcasting it first if it was recorded by an older class version.
func (m *Mapper) decode(state []byte, info *domain.TypeInfo) (storedState, any, error) {
	b, err := m.unseal(state)
	if err != nil {
		return storedState{}, nil, err
	}
	version := 1
	if info.ClassVersion() > 1 {
		var hdr struct {
			ClassVersion int `json:"class_version"`
		}
		if err := m.transcoder.Unmarshal(b, &hdr); err != nil {
			return storedState{}, nil, m.misread(state, b, err)
		}
		version = hdr.ClassVersion
	}
	ptr := info.New()
	st := storedState{Data: ptr}
	if version >= info.ClassVersion() {
		if err := m.transcoder.Unmarshal(b, &st); err != nil {
			return storedState{}, nil, m.misread(state, b, err)
		}
		if st.ClassVersion > info.ClassVersion() {
			return storedState{}, nil, fmt.Errorf("%w: %s: stored class version %d is newer than the registered version %d",
				domain.ErrUpcast, info.Topic(), st.ClassVersion, info.ClassVersion())
		}
		return st, info.Value(ptr), nil
	}
	var upcastState map[string]any
	st.Data = &upcastState
	if err := m.transcoder.Unmarshal(b, &st); err != nil {
		return storedState{}, nil, m.misread(state, b, err)
	}
	if upcastState == nil {
		upcastState = map[string]any{}
	}
	if err := info.Upcast(upcastState, version); err != nil {
		return storedState{}, nil, err
	}
	upcast, err := m.transcoder.Marshal(upcastState)
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
