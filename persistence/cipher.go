package persistence

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
)

// Cipher encrypts and decrypts stored state, so that the state of an
// application is encrypted at rest and on the wire.
type Cipher interface {
	Encrypt(plaintext []byte) ([]byte, error)
	// Decrypt returns an error wrapping ErrWrongKey or ErrCorrupt for
	// ciphertext it cannot decrypt, never a panic.
	Decrypt(ciphertext []byte) ([]byte, error)
}

// AESCipher encrypts with AES in GCM mode, which also authenticates: bytes
// changed in the database fail to decrypt instead of decoding to something
// else.
//
// Each ciphertext is laid out as a format byte (1), a key ID (the first 4
// bytes of the key's SHA-256), a random 12-byte nonce, and the sealed
// plaintext with its 16-byte tag. The key ID lets Decrypt tell a wrong key
// from corrupt bytes, and lets an AESCipher hold previous keys for
// rotation.
type AESCipher struct {
	current keyed
	byID    map[[4]byte]cipher.AEAD
}

type keyed struct {
	id   [4]byte
	aead cipher.AEAD
}

const (
	aesFormat   = 1
	aesHeader   = 1 + 4 + 12 // format, key ID, nonce
	aesOverhead = aesHeader + 16
)

// NewAESCipher returns a cipher that encrypts with key (16, 24 or 32
// bytes: AES-128, -192 or -256) and decrypts with key or any of the
// previous keys.
func NewAESCipher(key []byte, previous ...[]byte) (*AESCipher, error) {
	c := &AESCipher{byID: map[[4]byte]cipher.AEAD{}}
	for i, k := range append([][]byte{key}, previous...) {
		switch len(k) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("%w: AES key is %d bytes, want 16, 24 or 32", ErrConfig, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
		sum := sha256.Sum256(k)
		id := [4]byte(sum[:4])
		if i == 0 {
			c.current = keyed{id: id, aead: aead}
		}
		if _, dup := c.byID[id]; !dup {
			c.byID[id] = aead
		}
	}
	return c, nil
}

// NewAESCipherFromString is NewAESCipher for base64-encoded keys, the form
// of the CIPHER_KEY environment variable.
func NewAESCipherFromString(key string, previous ...string) (*AESCipher, error) {
	var keys [][]byte
	for _, s := range append([]string{key}, previous...) {
		k, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%w: cipher key is not base64: %v", ErrConfig, err)
		}
		keys = append(keys, k)
	}
	return NewAESCipher(keys[0], keys[1:]...)
}

// CreateKey returns a new random AES key of n bytes (16, 24 or 32),
// base64-encoded for an environment variable such as CIPHER_KEY.
func CreateKey(n int) (string, error) {
	switch n {
	case 16, 24, 32:
	default:
		return "", fmt.Errorf("%w: AES key size %d, want 16, 24 or 32", ErrConfig, n)
	}
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

// Encrypt seals plaintext with the current key and a random nonce.
func (c *AESCipher) Encrypt(plaintext []byte) ([]byte, error) {
	out := make([]byte, 1+4+12, aesOverhead+len(plaintext))
	out[0] = aesFormat
	copy(out[1:5], c.current.id[:])
	if _, err := rand.Read(out[5:17]); err != nil {
		return nil, err
	}
	return c.current.aead.Seal(out, out[5:17], plaintext, out[:5]), nil
}

// sealInPlace encrypts buf[aesHeader:] where it lies, writing the header
// before it and the tag after it, so that the mapper can compress into
// the buffer it encrypts; buf's capacity should leave room for the tag.
func (c *AESCipher) sealInPlace(buf []byte) ([]byte, error) {
	buf[0] = aesFormat
	copy(buf[1:5], c.current.id[:])
	if _, err := rand.Read(buf[5:aesHeader]); err != nil {
		return nil, err
	}
	return c.current.aead.Seal(buf[:aesHeader], buf[5:aesHeader], buf[aesHeader:], buf[:5]), nil
}

// Decrypt opens ciphertext made by Encrypt with the current or a previous
// key.
func (c *AESCipher) Decrypt(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < aesOverhead {
		return nil, fmt.Errorf("decrypt: %w: %d bytes is shorter than the %d bytes of an empty AES-GCM message", ErrCorrupt, len(ciphertext), aesOverhead)
	}
	if ciphertext[0] != aesFormat {
		return nil, fmt.Errorf("decrypt: %w: unknown format %d", ErrCorrupt, ciphertext[0])
	}
	aead := c.byID[[4]byte(ciphertext[1:5])]
	if aead == nil {
		return nil, fmt.Errorf("decrypt: %w (key ID %x)", ErrWrongKey, ciphertext[1:5])
	}
	plain, err := aead.Open(nil, ciphertext[5:17], ciphertext[17:], ciphertext[:5])
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w: %v", ErrCorrupt, err)
	}
	return plain, nil
}
