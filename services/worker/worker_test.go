package worker

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/config"
)

func TestRetryDelay(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		interval, retryAfter time.Duration
		want                 time.Duration
	}{
		{"interval only", time.Second, 0, time.Second},
		{"retry-after longer", time.Second, 5 * time.Second, 5 * time.Second},
		{"interval longer", 10 * time.Second, 5 * time.Second, 10 * time.Second},
		{"retry-after capped at 1h", 0, 3 * time.Hour, time.Hour},
		{"interval above the cap still applies", 2 * time.Hour, 3 * time.Hour, 2 * time.Hour},
		{"no wait", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RetryDelay(tc.interval, tc.retryAfter); got != tc.want {
				t.Fatalf("RetryDelay(%s, %s) = %s, want %s", tc.interval, tc.retryAfter, got, tc.want)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	base := map[string]string{
		"NATS_URL": "nats://127.0.0.1:4222", "REDIS_URL": "redis://127.0.0.1:6379",
		"HOOKLINE_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
	}
	cfg, err := LoadConfig(config.MapEnv(base))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MetricsAddr != ":9090" || cfg.Concurrency != 64 || cfg.ShutdownGrace != 30*time.Second || cfg.AllowPrivateNetworks {
		t.Fatalf("defaults = %+v", cfg)
	}
	for _, tc := range []struct {
		name, key, value, wantErr string
	}{
		{"missing nats", "NATS_URL", "", "NATS_URL is required"},
		{"missing redis", "REDIS_URL", "", "REDIS_URL is required"},
		{"missing key", "HOOKLINE_ENCRYPTION_KEY", "", "HOOKLINE_ENCRYPTION_KEY is required"},
		{"short key", "HOOKLINE_ENCRYPTION_KEY", "c2hvcnQ=", "HOOKLINE_ENCRYPTION_KEY"},
		{"bad concurrency", "HOOKLINE_WORKER_CONCURRENCY", "0", "HOOKLINE_WORKER_CONCURRENCY"},
		{"bad bool", "HOOKLINE_ALLOW_PRIVATE_NETWORKS", "maybe", "HOOKLINE_ALLOW_PRIVATE_NETWORKS"},
		{"bad cidr", "HOOKLINE_ALLOWED_NETWORKS", "10.0.0.0/33", "HOOKLINE_ALLOWED_NETWORKS"},
		{"bad duration", "HOOKLINE_ACK_WAIT", "soon", "HOOKLINE_ACK_WAIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			env[tc.key] = tc.value
			_, err := LoadConfig(config.MapEnv(env))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
			}
			if tc.key == "HOOKLINE_ENCRYPTION_KEY" && tc.value != "" && strings.Contains(err.Error(), tc.value) {
				t.Fatalf("error repeats the key: %v", err)
			}
		})
	}
}

// The queue outcome is chosen from the error kind in one place.
func TestErrorKinds(t *testing.T) {
	var retry *RetryError
	err := error(&RetryError{After: time.Second, Err: errors.New("status 500")})
	if !errors.As(err, &retry) || retry.After != time.Second {
		t.Fatal("RetryError not recognised")
	}
	var dead *DeadError
	if !errors.As(errors.Join(context.Canceled, &DeadError{Reason: "x"}), &dead) {
		t.Fatal("DeadError not recognised through a join")
	}
}
