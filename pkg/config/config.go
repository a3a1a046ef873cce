// Package config reads the settings every hookline service shares from the
// environment. Each service embeds Common in its own Config.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/redisconn"
	"github.com/hookline/hookline/pkg/secrets"
	"github.com/hookline/hookline/pkg/webhook"
)

// Env reads a variable; os.Getenv in production, a map in tests.
type Env func(string) string

// OSEnv reads the process environment.
func OSEnv(key string) string { return os.Getenv(key) }

// MapEnv reads from a map.
func MapEnv(m map[string]string) Env { return func(k string) string { return m[k] } }

// Common holds the settings shared by ingest and the workers.
type Common struct {
	NATSURL  string // NATS_URL (required)
	RedisURL string // REDIS_URL (required)
	// RedisDurability: HOOKLINE_REDIS_WAIT_REPLICAS (default 1 for a Redis
	// Cluster or Sentinel, 0 for a single server) and
	// HOOKLINE_REDIS_WAIT_TIMEOUT (default 500ms).
	RedisDurability redisconn.Durability
	// Secrets seals and opens customers' secrets: HOOKLINE_ENCRYPTION_KEYS
	// (base64 32-byte keys, newest first) or HOOKLINE_ENCRYPTION_KEY.
	Secrets *secrets.Box
	// AllowPrivateNetworks (HOOKLINE_ALLOW_PRIVATE_NETWORKS, default false) lets
	// webhooks target loopback, private and link-local addresses.
	AllowPrivateNetworks bool
	// AllowedNetworks (HOOKLINE_ALLOWED_NETWORKS, CIDRs) opens single ranges.
	AllowedNetworks []netip.Prefix
	Queue           queue.Config
	RedisPrefix     string        // HOOKLINE_REDIS_PREFIX, default "hookline:"
	Retention       time.Duration // HOOKLINE_RETENTION: how long a finished upload's state is kept, default 168h
	LogLevel        zapcore.Level // HOOKLINE_LOG_LEVEL: debug|info|warn|error, default info
	LogFormat       string        // HOOKLINE_LOG_FORMAT: json|console, default json
	// LightFirst (HOOKLINE_LIGHT_FIRST, default true): tenants with light
	// work go first, holding back tenants with much work meanwhile
	// (docs/architecture.md, "Light work goes first"). Set it alike on
	// ingest and the workers.
	LightFirst bool
}

// LoadCommon reads the shared settings. Every problem is reported, each naming
// its variable; values of secret variables are never repeated.
func LoadCommon(env Env) (Common, error) {
	var errs []error
	var err error
	c := Common{
		NATSURL:     env("NATS_URL"),
		RedisURL:    env("REDIS_URL"),
		Queue:       queue.DefaultConfig(),
		RedisPrefix: orDefault(env("HOOKLINE_REDIS_PREFIX"), "hookline:"),
		LogFormat:   orDefault(env("HOOKLINE_LOG_FORMAT"), "json"),
	}
	if c.NATSURL == "" {
		errs = append(errs, errors.New("NATS_URL is required (for example nats://127.0.0.1:4222)"))
	}
	if c.RedisURL == "" {
		errs = append(errs, errors.New("REDIS_URL is required (for example redis://127.0.0.1:6379/0)"))
	} else if c.RedisDurability, err = loadRedisDurability(env, c.RedisURL); err != nil {
		errs = append(errs, err)
	}
	keys := env("HOOKLINE_ENCRYPTION_KEYS")
	name := "HOOKLINE_ENCRYPTION_KEYS"
	if keys == "" {
		keys, name = env("HOOKLINE_ENCRYPTION_KEY"), "HOOKLINE_ENCRYPTION_KEY"
	}
	if keys == "" {
		errs = append(errs, errors.New("HOOKLINE_ENCRYPTION_KEY is required: a base64-encoded 32-byte key (make one with: head -c 32 /dev/urandom | base64)"))
	} else if box, err := secrets.ParseKeys(keys); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	} else {
		c.Secrets = box
	}
	if c.AllowPrivateNetworks, err = Bool(env, "HOOKLINE_ALLOW_PRIVATE_NETWORKS", false); err != nil {
		errs = append(errs, err)
	}
	if v := env("HOOKLINE_ALLOWED_NETWORKS"); v != "" {
		if c.AllowedNetworks, err = webhook.ParsePrefixes(v); err != nil {
			errs = append(errs, fmt.Errorf("HOOKLINE_ALLOWED_NETWORKS: %w", err))
		}
	}
	if c.LightFirst, err = Bool(env, "HOOKLINE_LIGHT_FIRST", true); err != nil {
		errs = append(errs, err)
	}
	if c.Retention, err = Duration(env, "HOOKLINE_RETENTION", 7*24*time.Hour); err != nil {
		errs = append(errs, err)
	}
	if c.Queue.Replicas, err = Int(env, "HOOKLINE_STREAM_REPLICAS", c.Queue.Replicas); err != nil {
		errs = append(errs, err)
	}
	if c.Queue.AckWait, err = Duration(env, "HOOKLINE_ACK_WAIT", c.Queue.AckWait); err != nil {
		errs = append(errs, err)
	}
	if c.Queue.PagesMaxAge, err = Duration(env, "HOOKLINE_PAGES_MAX_AGE", c.Queue.PagesMaxAge); err != nil {
		errs = append(errs, err)
	}
	var maxBytes int
	if maxBytes, err = Int(env, "HOOKLINE_PAGES_MAX_BYTES", 0); err != nil || maxBytes < 0 {
		errs = append(errs, fmt.Errorf("HOOKLINE_PAGES_MAX_BYTES must be a number of bytes (0: no limit)"))
	}
	c.Queue.PagesMaxBytes = int64(maxBytes)
	if err := c.Queue.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.LogLevel, err = zapcore.ParseLevel(orDefault(env("HOOKLINE_LOG_LEVEL"), "info")); err != nil {
		errs = append(errs, fmt.Errorf("HOOKLINE_LOG_LEVEL: %w", err))
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		errs = append(errs, fmt.Errorf("HOOKLINE_LOG_FORMAT must be json or console, got %q", c.LogFormat))
	}
	return c, errors.Join(errs...)
}

// Logger builds the service's logger: JSON (or console) lines on stderr, at
// the configured level. Nothing is sampled: every delivery outcome is
// logged, however many of the same happen in a second. Stack traces are
// kept for panics only.
func (c Common) Logger() (*zap.Logger, error) {
	return c.loggerConfig().Build(zap.AddStacktrace(zapcore.DPanicLevel))
}

func (c Common) loggerConfig() zap.Config {
	cfg := zap.NewProductionConfig()
	if c.LogFormat == "console" {
		cfg = zap.NewDevelopmentConfig()
	}
	cfg.Level = zap.NewAtomicLevelAt(c.LogLevel)
	cfg.Sampling = nil
	cfg.DisableStacktrace = true
	return cfg
}

// loadRedisDurability reads how long durable Redis writes wait for replicas.
func loadRedisDurability(env Env, redisURL string) (redisconn.Durability, error) {
	kind, err := redisconn.KindOf(redisURL)
	if err != nil {
		return redisconn.Durability{}, fmt.Errorf("REDIS_URL: %w", err)
	}
	def := 1
	if kind == redisconn.Single {
		def = 0
	}
	var d redisconn.Durability
	var errs []error
	if d.WaitReplicas, err = Int(env, "HOOKLINE_REDIS_WAIT_REPLICAS", def); err != nil || d.WaitReplicas < 0 {
		errs = append(errs, errors.New("HOOKLINE_REDIS_WAIT_REPLICAS must be a number of replicas (0: do not wait)"))
	}
	if d.WaitTimeout, err = Duration(env, "HOOKLINE_REDIS_WAIT_TIMEOUT", 500*time.Millisecond); err != nil {
		errs = append(errs, err)
	} else if d.WaitTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("HOOKLINE_REDIS_WAIT_TIMEOUT must be at least 1ms, got %s", d.WaitTimeout))
	}
	return d, errors.Join(errs...)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Bool reads a boolean variable (true/false/1/0/yes/no).
func Bool(env Env, key string, def bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(env(key))) {
	case "":
		return def, nil
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off":
		return false, nil
	}
	return def, fmt.Errorf("%s must be true or false, got %q", key, env(key))
}

// Int reads an integer variable.
func Int(env Env, key string, def int) (int, error) {
	v := strings.TrimSpace(env(key))
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return def, fmt.Errorf("%s must be a whole number, got %q", key, v)
	}
	return n, nil
}

// Duration reads a duration variable ("30s", "5m", "168h").
func Duration(env Env, key string, def time.Duration) (time.Duration, error) {
	v := strings.TrimSpace(env(key))
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return def, fmt.Errorf("%s must be a duration such as 30s or 5m, got %q", key, v)
	}
	return d, nil
}
