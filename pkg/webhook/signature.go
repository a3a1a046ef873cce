package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks header names (https://www.standardwebhooks.com/).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
)

// SecretPrefix is the prefix of a Standard Webhooks signing secret.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far the webhook-timestamp may be from now for Verify.
const DefaultTolerance = 5 * time.Minute

// secretBytes is the size of the random key NewSecret makes (the spec asks for 24..64).
const secretBytes = 24

// ErrVerification is wrapped by every error of Verify and VerifyAt.
var ErrVerification = errors.New("webhook verification failed")

// NewSecret returns a new random signing secret: "whsec_" followed by the standard
// base64 encoding of 24 random bytes.
func NewSecret() (string, error) {
	var key [secretBytes]byte
	if _, err := rand.Read(key[:]); err != nil {
		return "", fmt.Errorf("generating a signing secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(key[:]), nil
}

// decodeSecret returns the key of a secret "whsec_<base64>" (the prefix is optional).
// Errors never repeat the secret.
func decodeSecret(secret string) ([]byte, error) {
	s := strings.TrimPrefix(secret, SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Tolerate a secret pasted without its base64 padding.
		var err2 error
		if key, err2 = base64.RawStdEncoding.DecodeString(s); err2 != nil {
			return nil, errors.New("signing secret is not valid base64 (expected whsec_<base64>)")
		}
	}
	if len(key) == 0 {
		return nil, errors.New("signing secret is empty")
	}
	return key, nil
}

// Sign returns the Standard Webhooks signature "v1,<base64 HMAC-SHA256>" of the content
// "<id>.<unix seconds of ts>.<body>", keyed with secret ("whsec_<base64>"; the prefix is
// optional). The error (a malformed secret) never contains the secret.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	return "v1," + base64.StdEncoding.EncodeToString(signature(key, id, strconv.FormatInt(ts.Unix(), 10), body)), nil
}

// signature returns the raw HMAC-SHA256 of id.timestamp.body.
func signature(key []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks the Standard Webhooks headers of a received webhook against its body:
// webhook-id, webhook-timestamp within DefaultTolerance (5 minutes) of now, and at least
// one of the space-separated "v1,<base64>" entries of webhook-signature matching the
// body under one of secrets (several secrets allow key rotation). Errors wrap
// ErrVerification.
func Verify(headers http.Header, body []byte, secrets ...string) error {
	return VerifyAt(headers, body, time.Now(), DefaultTolerance, secrets...)
}

// VerifyAt is Verify at the given time, with the given timestamp tolerance
// (tolerance <= 0 means DefaultTolerance).
func VerifyAt(headers http.Header, body []byte, now time.Time, tolerance time.Duration, secrets ...string) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	id := headers.Get(HeaderWebhookID)
	tsHeader := headers.Get(HeaderWebhookTimestamp)
	sigHeader := headers.Get(HeaderWebhookSignature)
	switch {
	case id == "":
		return fmt.Errorf("%w: missing %s header", ErrVerification, HeaderWebhookID)
	case tsHeader == "":
		return fmt.Errorf("%w: missing %s header", ErrVerification, HeaderWebhookTimestamp)
	case sigHeader == "":
		return fmt.Errorf("%w: missing %s header", ErrVerification, HeaderWebhookSignature)
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s header is not a unix timestamp", ErrVerification, HeaderWebhookTimestamp)
	}
	nowSec, tolSec := now.Unix(), int64(tolerance/time.Second)
	switch {
	case ts < nowSec-tolSec:
		return fmt.Errorf("%w: timestamp too old", ErrVerification)
	case ts > nowSec+tolSec:
		return fmt.Errorf("%w: timestamp too new", ErrVerification)
	}
	if len(secrets) == 0 {
		return fmt.Errorf("%w: no secret to verify with", ErrVerification)
	}
	var keys [][]byte
	for _, s := range secrets {
		if key, err := decodeSecret(s); err == nil {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: no valid secret to verify with", ErrVerification)
	}
	var want []byte
	for _, key := range keys {
		mac := signature(key, id, tsHeader, body)
		want = base64.StdEncoding.AppendEncode(want[:0], mac)
		for entry := range strings.FieldsSeq(sigHeader) {
			version, sig, ok := strings.Cut(entry, ",")
			if !ok || version != "v1" {
				continue
			}
			if hmac.Equal([]byte(sig), want) {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no matching signature", ErrVerification)
}
