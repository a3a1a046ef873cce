package ingest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/queue"
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
	if cfg.Addr != ":8080" || cfg.API.MaxBodyBytes != 32<<20 || cfg.Queue.AckWait != 30*time.Second || cfg.API.PageCompression != queue.CompressS2 {
		t.Fatalf("defaults = %+v", cfg)
	}
	env["HOOKLINE_PAGE_COMPRESSION"] = "none"
	if cfg, err = LoadConfig(config.MapEnv(env)); err != nil || cfg.API.PageCompression != queue.CompressNone {
		t.Fatalf("HOOKLINE_PAGE_COMPRESSION=none: %v, %v", cfg.API.PageCompression, err)
	}
	delete(env, "HOOKLINE_API_KEYS")
	env["HOOKLINE_MAX_BODY_BYTES"] = "12"
	env["HOOKLINE_PAGE_COMPRESSION"] = "zstd"
	_, err = LoadConfig(config.MapEnv(env))
	if err == nil || !strings.Contains(err.Error(), "HOOKLINE_API_KEYS") || !strings.Contains(err.Error(), "HOOKLINE_MAX_BODY_BYTES") ||
		!strings.Contains(err.Error(), `HOOKLINE_PAGE_COMPRESSION must be s2 (the default) or none, got "zstd"`) {
		t.Fatalf("err = %v, want every problem named", err)
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
	_, _, err := in.Build("CODE", "acme", nil, func(s string) (string, error) { return "sealed:" + s, nil }, time.Now())
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

func TestTemplateSigningSecrets(t *testing.T) {
	seal := func(s string) (string, error) { return "sealed:" + s, nil }
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	build := func(body string, old *Template) (*Template, string) {
		t.Helper()
		var in TemplateInput
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatal(err)
		}
		tpl, gen, err := in.Build("CODE", "acme", old, seal, now)
		if err != nil {
			t.Fatal(err)
		}
		return tpl, gen
	}
	const s1 = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	first, gen := build(`{"destination":{"webhook":{"url":"https://example.com/h","signingSecret":"`+s1+`"}}}`, nil)
	if gen != "" || first.Webhook.SealedSigningSecret != "sealed:"+s1 || first.Webhook.SigningSecretHint != "LaSw" || first.Webhook.SealedPreviousSecret != "" {
		t.Fatalf("first = %+v, generated %q", first.Webhook, gen)
	}
	kept, _ := build(`{"destination":{"webhook":{"url":"https://example.com/h2"}}}`, first)
	if kept.Webhook.SealedSigningSecret != "sealed:"+s1 {
		t.Fatal("absent signingSecret dropped the stored one")
	}
	rotated, gen := build(`{"destination":{"webhook":{"url":"https://example.com/h","signingSecret":"generate"}}}`, kept)
	if !strings.HasPrefix(gen, "whsec_") || rotated.Webhook.SealedSigningSecret != "sealed:"+gen {
		t.Fatalf("generated %q, webhook %+v", gen, rotated.Webhook)
	}
	cur, prev := rotated.Webhook.SigningSecrets(now.Add(time.Hour))
	if cur != "sealed:"+gen || prev != "sealed:"+s1 {
		t.Fatalf("during grace: %q, %q", cur, prev)
	}
	if _, prev := rotated.Webhook.SigningSecrets(now.Add(SigningSecretGrace + time.Second)); prev != "" {
		t.Fatal("previous secret still signs after the grace period")
	}
	removed, _ := build(`{"destination":{"webhook":{"url":"https://example.com/h","signingSecret":""}}}`, rotated)
	if cur, prev := removed.Webhook.SigningSecrets(now); cur != "" || prev != "" {
		t.Fatalf(`signingSecret "" left %q, %q`, cur, prev)
	}
}
