package ingest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/ops"
	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/records"
	"github.com/hookline/hookline/pkg/sched"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
	"github.com/hookline/hookline/services/ingest/importer"
)

// Config is the ingest service's configuration.
type Config struct {
	config.Common
	Addr string // HOOKLINE_ADDR, default ":8080"
	// MetricsAddr (HOOKLINE_METRICS_ADDR), when set, serves /metrics,
	// /healthz and /readyz, and /metrics leaves the API port; unset, the
	// API port serves all three.
	MetricsAddr string
	APIKeys     map[string]string // HOOKLINE_API_KEYS "tenant:key,tenant:key" → key → tenant
	API         APIConfig         // HOOKLINE_MAX_BODY_BYTES, HOOKLINE_MAX_FILE_BYTES, HOOKLINE_MAX_RECORDS, HOOKLINE_MAX_UNZIP_BYTES, HOOKLINE_TEMP_DIR, HOOKLINE_PAGE_COMPRESSION
	// AdminToken (HOOKLINE_ADMIN_TOKEN, 32 characters or more) turns on the
	// admin API of tenants and keys; unset, it answers 404.
	AdminToken string
	// AuthCacheTTL (HOOKLINE_AUTH_CACHE_TTL, default and at most 5s, 0: off)
	// is how long a stored key's lookup is cached: a revoked key works on the
	// other replicas for at most this long.
	AuthCacheTTL time.Duration
	// Quotas are the default quotas (HOOKLINE_QUOTA_*), for the tenants of
	// HOOKLINE_API_KEYS and stored tenants without their own.
	Quotas Quotas
}

// MinAdminToken is the shortest HOOKLINE_ADMIN_TOKEN accepted.
const MinAdminToken = 32

// LoadConfig reads the ingest configuration from the environment.
func LoadConfig(env config.Env) (Config, error) {
	common, err := config.LoadCommon(env)
	errs := []error{err}
	c := Config{Common: common, Addr: ":8080", API: APIConfig{MaxBodyBytes: 32 << 20, MaxFileBytes: 10 << 30}}
	if v := env("HOOKLINE_ADDR"); v != "" {
		c.Addr = v
	}
	c.MetricsAddr = env("HOOKLINE_METRICS_ADDR")
	c.AdminToken = env("HOOKLINE_ADMIN_TOKEN")
	if c.AdminToken != "" && len(c.AdminToken) < MinAdminToken {
		errs = append(errs, fmt.Errorf("HOOKLINE_ADMIN_TOKEN must be at least %d characters (make one with: head -c 32 /dev/urandom | base64)", MinAdminToken))
	}
	if c.AdminToken == "" || env("HOOKLINE_API_KEYS") != "" { // with an admin token, tenants may all be stored ones
		if c.APIKeys, err = ParseAPIKeys(env("HOOKLINE_API_KEYS")); err != nil {
			if env("HOOKLINE_API_KEYS") == "" {
				err = fmt.Errorf("%w; or set HOOKLINE_ADMIN_TOKEN and create tenants with the admin API", err)
			}
			errs = append(errs, err)
		}
	}
	if _, clash := c.APIKeys[c.AdminToken]; clash && c.AdminToken != "" {
		errs = append(errs, errors.New("HOOKLINE_ADMIN_TOKEN must differ from every key of HOOKLINE_API_KEYS"))
	}
	if c.AuthCacheTTL, err = config.Duration(env, "HOOKLINE_AUTH_CACHE_TTL", MaxAuthCacheTTL); err != nil || c.AuthCacheTTL > MaxAuthCacheTTL {
		errs = append(errs, fmt.Errorf("HOOKLINE_AUTH_CACHE_TTL must be a duration from 0s to %s", MaxAuthCacheTTL))
	}
	if c.Quotas, err = LoadQuotas(env); err != nil {
		errs = append(errs, err)
	}
	var n int
	if n, err = config.Int(env, "HOOKLINE_MAX_BODY_BYTES", int(c.API.MaxBodyBytes)); err != nil || n < 1024 {
		errs = append(errs, fmt.Errorf("HOOKLINE_MAX_BODY_BYTES must be a number of bytes of at least 1024"))
	}
	c.API.MaxBodyBytes = int64(n)
	if n, err = config.Int(env, "HOOKLINE_MAX_FILE_BYTES", int(c.API.MaxFileBytes)); err != nil || n < 0 {
		errs = append(errs, fmt.Errorf("HOOKLINE_MAX_FILE_BYTES must be a number of bytes (0: no limit)"))
	}
	c.API.MaxFileBytes = int64(n)
	if c.API.MaxRecords, err = config.Int(env, "HOOKLINE_MAX_RECORDS", 0); err != nil || c.API.MaxRecords < 0 {
		errs = append(errs, fmt.Errorf("HOOKLINE_MAX_RECORDS must be a whole number (0: no limit)"))
	}
	if n, err = config.Int(env, "HOOKLINE_MAX_UNZIP_BYTES", records.DefaultMaxUnzipBytes); err != nil || n < 1 {
		errs = append(errs, fmt.Errorf("HOOKLINE_MAX_UNZIP_BYTES must be a number of bytes of at least 1"))
	}
	c.API.MaxUnzipBytes = int64(n)
	c.API.TempDir = env("HOOKLINE_TEMP_DIR")
	if v := env("HOOKLINE_PAGE_COMPRESSION"); v != "" {
		if c.API.PageCompression, err = queue.ParseCompression(v); err != nil {
			errs = append(errs, fmt.Errorf("HOOKLINE_PAGE_COMPRESSION must be s2 (the default) or none, got %q", v))
		}
	}
	return c, errors.Join(errs...)
}

// ParseAPIKeys reads "tenant:key,tenant:key". Errors name the entry's
// position and tenant, never the key.
func ParseAPIKeys(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("HOOKLINE_API_KEYS is required: tenant:key pairs separated by commas, for example acme:<a key of 16 or more characters>")
	}
	keys := map[string]string{}
	for i, entry := range strings.Split(s, ",") {
		tenant, key, ok := strings.Cut(strings.TrimSpace(entry), ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("HOOKLINE_API_KEYS entry %d must be tenant:key", i+1)
		case !ValidCode(tenant):
			return nil, fmt.Errorf("HOOKLINE_API_KEYS entry %d: tenant %q must be 1 to 64 letters, digits, '-' or '_'", i+1, tenant)
		case len(key) < 16:
			return nil, fmt.Errorf("HOOKLINE_API_KEYS entry %d (tenant %s): the key must be at least 16 characters", i+1, tenant)
		}
		if _, dup := keys[key]; dup {
			return nil, fmt.Errorf("HOOKLINE_API_KEYS entry %d (tenant %s): the key is used twice", i+1, tenant)
		}
		keys[key] = tenant
	}
	return keys, nil
}

// Deps are the connections the service runs on.
type Deps struct {
	NATS     *nats.Conn
	Redis    redis.UniversalClient
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
	Log      *zap.Logger
	// Listener, when set, is used instead of listening on Config.Addr.
	Listener net.Listener
	// Ready, when set, is called with the API's address once it listens.
	Ready func(addr string)
}

// Version is the hookline version sent in User-Agent (test requests).
var Version = "dev"

// Run serves the API until ctx ends, then lets running requests finish.
func Run(ctx context.Context, cfg Config, d Deps) error {
	log := d.Log.With(zap.String("component", "ingest"))
	q, err := queue.Setup(ctx, d.NATS, cfg.Queue, jetstream.WithPublishAsyncTimeout(30*time.Second))
	if err != nil {
		return fmt.Errorf("set up streams: %w", err)
	}
	templates, err := NewTemplates(ctx, q.JetStream(), cfg.Queue.Replicas)
	if err != nil {
		return err
	}
	tenants, err := NewTenants(ctx, q.JetStream(), cfg.Queue.Replicas)
	if err != nil {
		return err
	}
	tr := tracker.New(d.Redis, tracker.WithPrefix(cfg.RedisPrefix), tracker.WithRetention(cfg.Retention))
	light := sched.New(d.NATS, log)
	limiter := NewQuotaLimiter(d.Redis, tr, cfg.Retention, d.Registry, log)
	opts := []APIOption{WithTenants(tenants), WithAdminToken(cfg.AdminToken), WithAuthCacheTTL(cfg.AuthCacheTTL), WithQuotas(cfg.Quotas, limiter), WithTemplateEvents(q),
		WithSender(webhook.NewClient(webhook.WithUserAgent("hookline/"+Version),
			webhook.WithGuard(webhook.NewGuard(cfg.AllowPrivateNetworks, cfg.AllowedNetworks))))}
	if cfg.LightFirst {
		opts = append(opts, WithLight(light))
	}
	api := NewAPI(cfg.API, cfg.APIKeys, templates, tr, q, cfg.Secrets, NewMetrics(d.Registry), log, opts...)
	d.Registry.MustRegister(newPausedCollector(tr))
	d.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hookline_pages_stream_max_bytes",
		Help: "The PAGES stream's byte limit (HOOKLINE_PAGES_MAX_BYTES; 0: none of its own)."},
		func() float64 { return float64(cfg.Queue.PagesMaxBytes) }))
	checks := map[string]ops.Check{"nats": config.NATSCheck(d.NATS), "redis": tr.Ping}
	mux := http.NewServeMux()
	api.Register(mux)
	RegisterConsole(mux)
	opsMux := mux
	if cfg.MetricsAddr != "" {
		opsMux = http.NewServeMux()
		ops.RegisterHealth(mux, checks)
	}
	ops.Register(opsMux, d.Gatherer, checks)

	l := d.Listener
	if l == nil {
		if l, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("HOOKLINE_ADDR: %w", err)
		}
	}
	g, ctx := errgroup.WithContext(ctx)
	if cfg.MetricsAddr != "" {
		ml, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			_ = l.Close()
			return fmt.Errorf("HOOKLINE_METRICS_ADDR: %w", err)
		}
		msrv := &http.Server{Handler: opsMux, ReadHeaderTimeout: 5 * time.Second}
		log.Info("ingest metrics listening", zap.String("addr", ml.Addr().String()))
		g.Go(func() error { return ops.Serve(ctx, msrv, ml, 5*time.Second, log) })
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	log.Info("ingest listening", zap.String("addr", l.Addr().String()))
	if d.Ready != nil {
		d.Ready(l.Addr().String())
	}
	if cfg.LightFirst {
		g.Go(func() error { return light.Run(ctx) })
	}
	g.Go(func() error { return importer.NewJanitor(tr, q, time.Minute, importer.AbandonedAfter, log).Run(ctx) })
	g.Go(func() error { return ops.Serve(ctx, srv, l, 60*time.Second, log) })
	return g.Wait()
}
