package persistence

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"github.com/google/uuid"
)

// KeyScope says what one data key of a [DataKeys] protects.
type KeyScope int

const (
	// KeyPerTenant gives each tenant one data key: erasing it makes all
	// the tenant's events and snapshots unreadable.
	KeyPerTenant KeyScope = iota
	// KeyPerAggregate gives each aggregate of each tenant its own data
	// key: erasing it makes one aggregate unreadable (a person's record).
	KeyPerAggregate
)

// Topics of the key records in a key store.
const (
	dataKeyTopic    = "strata.DataKey"
	erasedKeyTopic  = "strata.DataKey.Erased"
	dataKeysFormat  = 2
	dataKeyOverhead = 1 + 16 + 12 + 16
)

// keyNamespace is the namespace of data key IDs.
var keyNamespace = uuid.MustParse("d6a1c0de-5e7b-5c4a-8f3e-9b2d1a0c7e64")

// Lister is implemented by aggregate recorders that can list the
// aggregates they hold, as rotating the wrapped data keys of a key store
// needs.
type Lister interface {
	// Originators yields the IDs of the aggregates the recorder holds.
	Originators(ctx context.Context) iter.Seq2[uuid.UUID, error]
}

// DataKeys encrypts state with data keys (envelope encryption, for
// crypto-shredding): each tenant, or each aggregate, has a random AES-256
// data key, kept in a key store (an aggregate recorder, in the same store
// as the events) wrapped by the master cipher (CIPHER_KEY). Erasing a data
// key makes everything encrypted with it unreadable for good, with errors
// wrapping [ErrErased], while the events stay where they are: the log's
// order, IDs and the other tenants are untouched. The master key can be
// rotated without rewriting events: [DataKeys.Rewrap] wraps the data keys
// again with the current master key.
//
// A ciphertext is a format byte (2), the data key's ID (16 bytes), a
// random 12-byte nonce, and the sealed state with its tag.
//
// Data keys are cached, unwrapped, in the process: a key erased by another
// process is still usable in this one for up to the cache's time to live
// ([DataKeys.SetCacheTTL], one minute by default), after which its state is
// unreadable here too. A DataKeys is safe for concurrent use.
type DataKeys struct {
	master Cipher
	store  AggregateRecorder
	scope  KeyScope
	ttl    time.Duration

	mu    sync.Mutex
	cache map[uuid.UUID]cachedKey
}

type cachedKey struct {
	aead   cipher.AEAD // nil if erased
	loaded time.Time
}

// NewDataKeys returns data keys of scope kept in store, wrapped by master.
func NewDataKeys(master Cipher, store AggregateRecorder, scope KeyScope) *DataKeys {
	return &DataKeys{master: master, store: store, scope: scope, ttl: time.Minute, cache: map[uuid.UUID]cachedKey{}}
}

// SetCacheTTL sets how long an unwrapped data key is used from memory
// before the key store is asked again (default one minute; 0 asks every
// time).
func (k *DataKeys) SetCacheTTL(d time.Duration) { k.ttl = max(d, 0) }

// Scope returns what one data key protects.
func (k *DataKeys) Scope() KeyScope { return k.scope }

// KeyID returns the ID of the data key that protects aggregate id of
// tenant (id is ignored with KeyPerTenant).
func (k *DataKeys) KeyID(tenant string, id uuid.UUID) uuid.UUID {
	if k.scope == KeyPerAggregate {
		return uuid.NewSHA1(keyNamespace, []byte("aggregate\x00"+tenant+"\x00"+id.String()))
	}
	return uuid.NewSHA1(keyNamespace, []byte("tenant\x00"+tenant))
}

// keyContext bounds the key store calls of Encrypt and Decrypt, which the
// mapper makes without a context of its own.
const keyTimeout = 30 * time.Second

// Cipher returns the cipher of tenant's state: it encrypts with the data
// key of the tenant (or of each aggregate) and decrypts any state of the
// key store's keys.
func (k *DataKeys) Cipher(tenant string) Cipher { return tenantKeys{k, tenant} }

type tenantKeys struct {
	k      *DataKeys
	tenant string
}

var _ AggregateCipher = tenantKeys{}

// AggregateCipher is a Cipher whose key depends on the aggregate: the
// mapper encrypts an aggregate's state with EncryptAggregate.
type AggregateCipher interface {
	Cipher
	EncryptAggregate(id uuid.UUID, plaintext []byte) ([]byte, error)
}

func (t tenantKeys) Encrypt(plaintext []byte) ([]byte, error) {
	return t.EncryptAggregate(uuid.Nil, plaintext)
}

func (t tenantKeys) EncryptAggregate(id uuid.UUID, plaintext []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), keyTimeout)
	defer cancel()
	keyID := t.k.KeyID(t.tenant, id)
	aead, err := t.k.key(ctx, keyID, true)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+16+12, dataKeyOverhead+len(plaintext))
	out[0] = dataKeysFormat
	copy(out[1:17], keyID[:])
	if _, err := rand.Read(out[17:29]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[17:29], plaintext, out[:17]), nil
}

func (t tenantKeys) Decrypt(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < dataKeyOverhead || ciphertext[0] != dataKeysFormat {
		if looksEncrypted(ciphertext) {
			// State of the master cipher alone, written before data keys.
			return t.k.master.Decrypt(ciphertext)
		}
		return nil, fmt.Errorf("decrypt: %w: not data-key ciphertext", ErrCorrupt)
	}
	ctx, cancel := context.WithTimeout(context.Background(), keyTimeout)
	defer cancel()
	aead, err := t.k.key(ctx, uuid.UUID(ciphertext[1:17]), false)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, ciphertext[17:29], ciphertext[29:], ciphertext[:17])
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w: %v", ErrCorrupt, err)
	}
	return plain, nil
}

// key returns the data key keyID, from the cache or the key store; with
// create, it makes the key if the store has none.
func (k *DataKeys) key(ctx context.Context, keyID uuid.UUID, create bool) (cipher.AEAD, error) {
	k.mu.Lock()
	c, ok := k.cache[keyID]
	k.mu.Unlock()
	if ok && time.Since(c.loaded) < k.ttl {
		if c.aead == nil {
			return nil, fmt.Errorf("data key %s: %w", keyID, ErrErased)
		}
		return c.aead, nil
	}
	for attempt := 0; attempt < 2; attempt++ {
		recs, err := k.store.SelectEvents(ctx, keyID, EventQuery{Desc: true, Limit: 1})
		if err != nil {
			return nil, fmt.Errorf("data key %s: %w", keyID, err)
		}
		if len(recs) == 1 {
			return k.remember(keyID, recs[0])
		}
		if !create {
			return nil, fmt.Errorf("data key %s: %w: the key store does not have it (another key store, or a CIPHER_KEY of another store)", keyID, ErrWrongKey)
		}
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return nil, err
		}
		wrapped, err := k.master.Encrypt(raw)
		if err != nil {
			return nil, fmt.Errorf("wrap data key %s: %w", keyID, err)
		}
		_, err = k.store.InsertEvents(ctx, []StoredEvent{{OriginatorID: keyID, OriginatorVersion: 1, Topic: dataKeyTopic, State: wrapped}})
		if errors.Is(err, ErrIntegrity) {
			continue // another writer made it first: use theirs
		}
		if err != nil {
			return nil, fmt.Errorf("store data key %s: %w", keyID, err)
		}
	}
	return k.key(ctx, keyID, false)
}

// remember unwraps a key record and caches it.
func (k *DataKeys) remember(keyID uuid.UUID, rec StoredEvent) (cipher.AEAD, error) {
	var aead cipher.AEAD
	if rec.Topic != erasedKeyTopic {
		raw, err := k.master.Decrypt(rec.State)
		if err != nil {
			return nil, fmt.Errorf("unwrap data key %s: %w", keyID, err)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("data key %s: %w: %v", keyID, ErrCorrupt, err)
		}
		if aead, err = cipher.NewGCM(block); err != nil {
			return nil, err
		}
	}
	k.mu.Lock()
	k.cache[keyID] = cachedKey{aead: aead, loaded: time.Now()}
	k.mu.Unlock()
	if aead == nil {
		return nil, fmt.Errorf("data key %s: %w", keyID, ErrErased)
	}
	return aead, nil
}

// Erase erases the data key of aggregate id of tenant (of the whole
// tenant with KeyPerTenant; id is then ignored): its record is replaced by
// a tombstone, so that the state it protected can never be decrypted
// again, and nothing more can be encrypted with it. It needs a key store
// that is a Replacer.
func (k *DataKeys) Erase(ctx context.Context, tenant string, id uuid.UUID) error {
	keyID := k.KeyID(tenant, id)
	r, ok := k.store.(Replacer)
	if !ok {
		return fmt.Errorf("erase data key %s: %w: the key store cannot replace records", keyID, ErrNotSupported)
	}
	if err := r.ReplaceEvents(ctx, []StoredEvent{{OriginatorID: keyID, OriginatorVersion: 1, Topic: erasedKeyTopic, State: []byte{}}}); err != nil {
		return fmt.Errorf("erase data key %s: %w", keyID, err)
	}
	k.mu.Lock()
	k.cache[keyID] = cachedKey{loaded: time.Now()}
	k.mu.Unlock()
	return nil
}

// Rewrap wraps every data key of the key store again with the master
// cipher's current key, which the previous master keys then no longer
// need to read. Events are not rewritten. It returns how many keys it
// rewrapped, and needs a key store that is a Replacer and a Lister.
func (k *DataKeys) Rewrap(ctx context.Context) (int, error) {
	r, ok := k.store.(Replacer)
	l, ok2 := k.store.(Lister)
	if !ok || !ok2 {
		return 0, fmt.Errorf("rewrap data keys: %w: the key store cannot list and replace records", ErrNotSupported)
	}
	n := 0
	for keyID, err := range l.Originators(ctx) {
		if err != nil {
			return n, fmt.Errorf("rewrap data keys: %w", err)
		}
		recs, err := k.store.SelectEvents(ctx, keyID, EventQuery{Desc: true, Limit: 1})
		if err != nil {
			return n, fmt.Errorf("rewrap data key %s: %w", keyID, err)
		}
		if len(recs) == 0 || recs[0].Topic == erasedKeyTopic {
			continue
		}
		raw, err := k.master.Decrypt(recs[0].State)
		if err != nil {
			return n, fmt.Errorf("rewrap data key %s: unwrap: %w", keyID, err)
		}
		wrapped, err := k.master.Encrypt(raw)
		if err != nil {
			return n, fmt.Errorf("rewrap data key %s: %w", keyID, err)
		}
		if err := r.ReplaceEvents(ctx, []StoredEvent{{OriginatorID: keyID, OriginatorVersion: 1, Topic: dataKeyTopic, State: wrapped}}); err != nil {
			return n, fmt.Errorf("rewrap data key %s: %w", keyID, err)
		}
		n++
	}
	return n, nil
}
