package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/config"
)

func TestParseAPIKeys(t *testing.T) {
	keys, err := ParseAPIKeys("acme:0123456789abcdef, bravo:fedcba9876543210")
	if err != nil {
		t.Fatal(err)
	}
	if keys["0123456789abcdef"] != "acme" || keys["fedcba9876543210"] != "bravo" {
		t.Fatalf("keys = %v", keys)
	}
	for _, in := range []string{"", "acme", "acme:short", "bad tenant:0123456789abcdef", "a:0123456789abcdef,b:0123456789abcdef"} {
		_, err := ParseAPIKeys(in)
		if err == nil || !strings.Contains(err.Error(), "HOOKLINE_API_KEYS") {
			t.Errorf("ParseAPIKeys(%q) err = %v", in, err)
		}
		if err != nil && strings.Contains(err.Error(), "0123456789abcdef") {
			t.Errorf("error repeats a key: %v", err)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	env := map[string]string{
		"NATS_URL": "nats://127.0.0.1:4222", "REDIS_URL": "redis://127.0.0.1:6379",
		"HOOKLINE_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"HOOKLINE_API_KEYS":       "acme:0123456789abcdef",
	}
	cfg, err := LoadConfig(config.MapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != ":8080" || cfg.API.MaxBodyBytes != 32<<20 || cfg.Queue.AckWait != 30*time.Second {
		t.Fatalf("defaults = %+v", cfg)
	}
	delete(env, "HOOKLINE_API_KEYS")
	env["HOOKLINE_MAX_BODY_BYTES"] = "12"
	_, err = LoadConfig(config.MapEnv(env))
	if err == nil || !strings.Contains(err.Error(), "HOOKLINE_API_KEYS") || !strings.Contains(err.Error(), "HOOKLINE_MAX_BODY_BYTES") {
		t.Fatalf("err = %v, want both problems named", err)
	}
}

func TestValidateHeaderName(t *testing.T) {
	for name, ok := range map[string]bool{
		"":                    true,
		"X-API-KEY":           true,
		"Authorization":       true,
		"X API":               false,
		"X-Key\r\nEvil":       false,
		"Host":                false,
		"content-length":      false,
		"Transfer-Encoding":   false,
		"Connection":          false,
		"Webhook-Signature":   false,
		"webhook-id":          false,
		"Proxy-Authorization": false,
	} {
		if err := ValidateHeaderName(name); (err == nil) != ok {
			t.Errorf("ValidateHeaderName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func TestTemplateBuildCollectsEveryBadField(t *testing.T) {
	var in TemplateInput
	if err := json.Unmarshal([]byte(`{"destination":{"webhook":{"url":"nope","chunkSize":0,"maxInFlight":0}}}`), &in); err != nil {
		t.Fatal(err)
	}
	_, err := in.Build("CODE", "acme", func(s string) (string, error) { return "sealed:" + s, nil }, "", "")
	var fields FieldErrors
	if !errors.As(err, &fields) {
		t.Fatalf("err = %v", err)
	}
	var names []string
	for _, f := range fields {
		names = append(names, f.Field)
	}
	want := "destination.webhook.url,destination.webhook.chunkSize,destination.webhook.maxInFlight"
	if strings.Join(names, ",") != want {
		t.Fatalf("fields = %v, want %s", names, want)
	}
}

func TestTemplateBuildSealsSecret(t *testing.T) {
	var in TemplateInput
	_ = json.Unmarshal([]byte(`{"destination":{"webhook":{"url":"https://example.com/h","signingSecret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}`), &in)
	tpl, err := in.Build("CODE", "acme", func(s string) (string, error) { return "sealed", nil }, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if tpl.Webhook.SealedSigningSecret != "sealed" || tpl.Webhook.SigningSecretHint != "LaSw" {
		t.Fatalf("webhook = %+v", tpl.Webhook)
	}
	// Absent keeps the old secret, "" removes it.
	_ = json.Unmarshal([]byte(`{"destination":{"webhook":{"url":"https://example.com/h"}}}`), &in)
	in.Destination.Webhook.SigningSecret = nil
	tpl, _ = in.Build("CODE", "acme", nil, "old", "hint")
	if tpl.Webhook.SealedSigningSecret != "old" {
		t.Fatal("absent signingSecret dropped the stored one")
	}
	empty := ""
	in.Destination.Webhook.SigningSecret = &empty
	tpl, _ = in.Build("CODE", "acme", nil, "old", "hint")
	if tpl.Webhook.SealedSigningSecret != "" {
		t.Fatal(`signingSecret "" did not remove the secret`)
	}
}
