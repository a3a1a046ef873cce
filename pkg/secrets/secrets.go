// Package secrets encrypts the values hookline keeps for customers (auth header
// values, signing secrets) with AES-256-GCM under a key id, so that a key can be
// rotated: new values are sealed with the newest key, old ciphertexts still open.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// ErrDecrypt is returned when a sealed value cannot be opened: unknown key id,
// malformed text, or tampered ciphertext.
var ErrDecrypt = errors.New("secrets: cannot decrypt")

const prefix = "v1"

type key struct {
	id   string
	aead cipher.AEAD
}

// Box seals and opens secrets. It is safe for concurrent use.
type Box struct {
	keys []key // newest first
}

// NewBox builds a Box from raw 32-byte keys, newest first.
func NewBox(raw ...[]byte) (*Box, error) {
	if len(raw) == 0 {
		return nil, errors.New("secrets: at least one key is required")
	}
	b := &Box{}
	for i, k := range raw {
		if len(k) != 32 {
			return nil, fmt.Errorf("secrets: key %d is %d bytes, must be 32", i+1, len(k))
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d: %w", i+1, err)
		}
		sum := sha256.Sum256(k)
		b.keys = append(b.keys, key{id: hex.EncodeToString(sum[:4]), aead: aead})
	}
	return b, nil
}

// ParseKeys builds a Box from a comma-separated list of base64 (standard or URL
// alphabet, padded or not) 32-byte keys, newest first, as in
// HOOKLINE_ENCRYPTION_KEYS. Errors name the key's position, never its value.
func ParseKeys(s string) (*Box, error) {
	var raw [][]byte
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, err := decodeBase64(part)
		if err != nil {
			return nil, fmt.Errorf("secrets: key %d is not valid base64", i+1)
		}
		raw = append(raw, k)
	}
	return NewBox(raw...)
}

// GenerateKey returns a new random key, base64 encoded, for HOOKLINE_ENCRYPTION_KEY.
func GenerateKey() (string, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(k), nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("invalid base64")
}

// Seal encrypts plaintext with the newest key. The result reads
// "v1:<key id>:<base64 nonce|ciphertext>". An empty plaintext seals to "".
func (b *Box) Seal(plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	k := b.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := k.aead.Seal(nonce, nonce, []byte(plaintext), []byte(k.id))
	return prefix + ":" + k.id + ":" + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// Open decrypts a value sealed by any of the Box's keys. "" opens to "".
func (b *Box) Open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	parts := strings.SplitN(sealed, ":", 3)
	if len(parts) != 3 || parts[0] != prefix {
		return "", fmt.Errorf("%w: malformed value", ErrDecrypt)
	}
	raw, err := base64.RawStdEncoding.DecodeString(parts[2])
	if err != nil {
		return "", fmt.Errorf("%w: malformed value", ErrDecrypt)
	}
	for _, k := range b.keys {
		if k.id != parts[1] {
			continue
		}
		ns := k.aead.NonceSize()
		if len(raw) < ns {
			return "", fmt.Errorf("%w: malformed value", ErrDecrypt)
		}
		plain, err := k.aead.Open(nil, raw[:ns], raw[ns:], []byte(k.id))
		if err != nil {
			return "", fmt.Errorf("%w: authentication failed", ErrDecrypt)
		}
		return string(plain), nil
	}
	return "", fmt.Errorf("%w: unknown key id %s", ErrDecrypt, parts[1])
}
