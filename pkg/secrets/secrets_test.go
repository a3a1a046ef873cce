package secrets

import (
	"errors"
	"strings"
	"testing"
)

func mustKey(t *testing.T) string {
	t.Helper()
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	box, err := ParseKeys(mustKey(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, plain := range []string{"", "s3cr3t", strings.Repeat("x", 5000), "ünïcødé"} {
		sealed, err := box.Seal(plain)
		if err != nil {
			t.Fatal(err)
		}
		if plain != "" && strings.Contains(sealed, plain) {
			t.Fatalf("sealed value contains the plaintext")
		}
		got, err := box.Open(sealed)
		if err != nil {
			t.Fatal(err)
		}
		if got != plain {
			t.Fatalf("Open = %q, want %q", got, plain)
		}
	}
}

func TestSealIsRandomised(t *testing.T) {
	box, _ := ParseKeys(mustKey(t))
	a, _ := box.Seal("same")
	b, _ := box.Seal("same")
	if a == b {
		t.Fatal("two seals of the same value are equal: nonce reuse")
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := mustKey(t), mustKey(t)
	oldBox, _ := ParseKeys(oldKey)
	sealedOld, _ := oldBox.Seal("legacy")

	rotated, err := ParseKeys(newKey + "," + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Open(sealedOld); err != nil || got != "legacy" {
		t.Fatalf("old ciphertext after rotation: %q, %v", got, err)
	}
	sealedNew, _ := rotated.Seal("fresh")
	if _, err := oldBox.Open(sealedNew); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("old box opened a value sealed with the new key: %v", err)
	}
}

func TestOpenRejectsTampering(t *testing.T) {
	box, _ := ParseKeys(mustKey(t))
	sealed, _ := box.Seal("value")
	tampered := sealed[:len(sealed)-2] + "AA"
	if tampered == sealed {
		tampered = sealed[:len(sealed)-2] + "BB"
	}
	for name, in := range map[string]string{
		"tampered":   tampered,
		"no prefix":  "abc",
		"bad base64": "v1:00000000:!!!",
		"unknown id": "v1:ffffffff:AAAA",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := box.Open(in); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("Open(%q) err = %v, want ErrDecrypt", in, err)
			}
		})
	}
}

func TestParseKeysErrors(t *testing.T) {
	for name, in := range map[string]string{
		"empty":      "",
		"not base64": "%%%",
		"short key":  "c2hvcnQ=",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseKeys(in)
			if err == nil {
				t.Fatal("want error")
			}
			if in != "" && strings.Contains(err.Error(), in) {
				t.Fatalf("error %q repeats the key", err)
			}
		})
	}
}
