package config

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func baseEnv(extra map[string]string) Env {
	m := map[string]string{
		"NATS_URL":                "nats://127.0.0.1:4222",
		"REDIS_URL":               "redis://127.0.0.1:6379/0",
		"HOOKLINE_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	}
	for k, v := range extra {
		m[k] = v
	}
	return MapEnv(m)
}

// TestLightFirst: on unless HOOKLINE_LIGHT_FIRST says false; a value that
// is not a boolean is refused, naming the variable.
func TestLightFirst(t *testing.T) {
	for _, c := range []struct {
		value string
		want  bool
	}{{"", true}, {"true", true}, {"false", false}, {"0", false}} {
		got, err := LoadCommon(baseEnv(map[string]string{"HOOKLINE_LIGHT_FIRST": c.value}))
		if err != nil {
			t.Fatalf("HOOKLINE_LIGHT_FIRST=%q: %v", c.value, err)
		}
		if got.LightFirst != c.want {
			t.Errorf("HOOKLINE_LIGHT_FIRST=%q: LightFirst = %v, want %v", c.value, got.LightFirst, c.want)
		}
	}
	_, err := LoadCommon(baseEnv(map[string]string{"HOOKLINE_LIGHT_FIRST": "sometimes"}))
	if err == nil || !strings.Contains(err.Error(), "HOOKLINE_LIGHT_FIRST") {
		t.Fatalf("HOOKLINE_LIGHT_FIRST=sometimes: error %v, want one naming the variable", err)
	}
}

// TestStoppedEarly: an error that only says the context ended, once it has,
// is a clean stop; any other error stands.
func TestStoppedEarly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	setup := fmt.Errorf("set up streams: %w", context.Canceled)
	if err := StoppedEarly(ctx, setup); err == nil {
		t.Fatal("a canceled setup before the stop was taken for a clean stop")
	}
	cancel()
	if err := StoppedEarly(ctx, setup); err != nil {
		t.Fatalf("StoppedEarly after the stop = %v, want nil", err)
	}
	other := errors.New("HOOKLINE_ADDR: address in use")
	if err := StoppedEarly(ctx, other); err != other {
		t.Fatalf("StoppedEarly(%v) = %v, want it back", other, err)
	}
}
