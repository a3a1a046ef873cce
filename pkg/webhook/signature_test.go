package webhook

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks specification's published test vector.
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorPayload   = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vectorHeaders(id, ts, sig string) http.Header {
	h := http.Header{}
	h.Set(HeaderWebhookID, id)
	h.Set(HeaderWebhookTimestamp, ts)
	h.Set(HeaderWebhookSignature, sig)
	return h
}

func TestSignSpecVector(t *testing.T) {
	for _, secret := range []string{vectorSecret, strings.TrimPrefix(vectorSecret, SecretPrefix)} {
		got, err := Sign(secret, vectorID, time.Unix(vectorTimestamp, 0), []byte(vectorPayload))
		if err != nil {
			t.Fatal(err)
		}
		if got != vectorSignature {
			t.Fatalf("Sign(%q) = %s, want the spec's %s", secret, got, vectorSignature)
		}
	}
}

func TestVerifySpecVector(t *testing.T) {
	ts := strconv.Itoa(vectorTimestamp)
	at := time.Unix(vectorTimestamp, 0)
	body := []byte(vectorPayload)
	ok := func(name string, h http.Header, b []byte, now time.Time, secrets ...string) {
		t.Helper()
		if err := VerifyAt(h, b, now, 0, secrets...); err != nil {
			t.Errorf("%s: VerifyAt = %v, want nil", name, err)
		}
	}
	fail := func(name, want string, h http.Header, b []byte, now time.Time, secrets ...string) {
		t.Helper()
		err := VerifyAt(h, b, now, 0, secrets...)
		if !errors.Is(err, ErrVerification) {
			t.Errorf("%s: VerifyAt = %v, want ErrVerification", name, err)
			return
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not contain %q", name, err, want)
		}
		for _, s := range secrets {
			if s != "" && strings.Contains(err.Error(), strings.TrimPrefix(s, SecretPrefix)) {
				t.Errorf("%s: error %q contains the secret", name, err)
			}
		}
	}
	h := vectorHeaders(vectorID, ts, vectorSignature)
	ok("spec vector", h, body, at, vectorSecret)
	ok("secret without prefix", h, body, at, strings.TrimPrefix(vectorSecret, SecretPrefix))
	ok("4m59s later", h, body, at.Add(4*time.Minute+59*time.Second), vectorSecret)
	ok("4m59s earlier", h, body, at.Add(-4*time.Minute-59*time.Second), vectorSecret)

	fail("tampered body", "no matching signature", h, []byte(`{"test": 2432232315}`), at, vectorSecret)
	fail("tampered id", "no matching signature", vectorHeaders("msg_other", ts, vectorSignature), body, at, vectorSecret)
	fail("tampered timestamp", "no matching signature", vectorHeaders(vectorID, strconv.Itoa(vectorTimestamp+1), vectorSignature), body, at, vectorSecret)
	fail("too old", "too old", h, body, at.Add(5*time.Minute+time.Second), vectorSecret)
	fail("too new", "too new", h, body, at.Add(-5*time.Minute-time.Second), vectorSecret)
	fail("wrong secret", "no matching signature", h, body, at, "whsec_"+base64.StdEncoding.EncodeToString([]byte("another secret of 24 b.")))
	fail("no secret", "no secret", h, body, at)
	fail("invalid secret", "no valid secret", h, body, at, "whsec_not base64!!")
	fail("missing id", "missing webhook-id", vectorHeaders("", ts, vectorSignature), body, at, vectorSecret)
	fail("missing timestamp", "missing webhook-timestamp", vectorHeaders(vectorID, "", vectorSignature), body, at, vectorSecret)
	fail("missing signature", "missing webhook-signature", vectorHeaders(vectorID, ts, ""), body, at, vectorSecret)
	fail("bad timestamp", "not a unix timestamp", vectorHeaders(vectorID, "yesterday", vectorSignature), body, at, vectorSecret)
	fail("wrong version", "no matching signature", vectorHeaders(vectorID, ts, "v2,"+strings.TrimPrefix(vectorSignature, "v1,")), body, at, vectorSecret)
	fail("no comma", "no matching signature", vectorHeaders(vectorID, ts, strings.TrimPrefix(vectorSignature, "v1,")), body, at, vectorSecret)

	// Several signatures in the header: any match is enough.
	ok("multiple signatures", vectorHeaders(vectorID, ts, "v1,Zm9vYmFy v1a,xyz "+vectorSignature+" v2,abc"), body, at, vectorSecret)
	fail("multiple wrong signatures", "no matching signature", vectorHeaders(vectorID, ts, "v1,Zm9vYmFy v1,YmFyYmF6"), body, at, vectorSecret)

	// Tolerance.
	if err := VerifyAt(h, body, at.Add(time.Hour), 2*time.Hour, vectorSecret); err != nil {
		t.Errorf("custom tolerance: %v", err)
	}
}

func TestVerifyRotation(t *testing.T) {
	oldSecret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	newSecret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"template":"T"}`)
	now := time.Now()
	sigOld, _ := Sign(oldSecret, "up.1", now, body)
	sigNew, _ := Sign(newSecret, "up.1", now, body)
	ts := strconv.FormatInt(now.Unix(), 10)

	// Receiver knows both secrets during rotation; the sender signs with either.
	if err := Verify(vectorHeaders("up.1", ts, sigOld), body, newSecret, oldSecret); err != nil {
		t.Errorf("old signature, both secrets: %v", err)
	}
	if err := Verify(vectorHeaders("up.1", ts, sigNew), body, newSecret, oldSecret); err != nil {
		t.Errorf("new signature, both secrets: %v", err)
	}
	// Sender signs with both; receiver knows only one.
	both := sigOld + " " + sigNew
	if err := Verify(vectorHeaders("up.1", ts, both), body, newSecret); err != nil {
		t.Errorf("two signatures, new secret: %v", err)
	}
	if err := Verify(vectorHeaders("up.1", ts, both), body, oldSecret); err != nil {
		t.Errorf("two signatures, old secret: %v", err)
	}
	// An unrelated secret fails; an invalid one among valid ones is skipped.
	third, _ := NewSecret()
	if err := Verify(vectorHeaders("up.1", ts, sigOld), body, third); !errors.Is(err, ErrVerification) {
		t.Errorf("unrelated secret: %v", err)
	}
	if err := Verify(vectorHeaders("up.1", ts, sigOld), body, "whsec_%%%", oldSecret); err != nil {
		t.Errorf("invalid secret before a valid one: %v", err)
	}
}

func TestNewSecret(t *testing.T) {
	s1, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	s2, _ := NewSecret()
	if s1 == s2 {
		t.Fatal("two secrets are equal")
	}
	if !strings.HasPrefix(s1, SecretPrefix) {
		t.Fatalf("secret %q lacks the whsec_ prefix", s1)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s1, SecretPrefix))
	if err != nil || len(key) != 24 {
		t.Fatalf("secret key = %d bytes, %v; want 24", len(key), err)
	}
}

func TestSignInvalidSecret(t *testing.T) {
	for _, s := range []string{"whsec_", "", "whsec_!!!not-base64!!!"} {
		_, err := Sign(s, "id", time.Now(), nil)
		if err == nil {
			t.Errorf("Sign(%q) accepted the secret", s)
		} else if s != "" && s != "whsec_" && strings.Contains(err.Error(), strings.TrimPrefix(s, SecretPrefix)) {
			t.Errorf("error %q repeats the secret", err)
		}
	}
	// Unpadded base64 is tolerated.
	if _, err := Sign("whsec_"+base64.RawStdEncoding.EncodeToString([]byte("abcde")), "id", time.Now(), nil); err != nil {
		t.Errorf("unpadded secret: %v", err)
	}
}
