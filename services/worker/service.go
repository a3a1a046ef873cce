package worker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/ops"
	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/sched"
	"github.com/hookline/hookline/pkg/templates"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
)

// Version is the hookline version sent in User-Agent.
var Version = "dev"

// Config is the worker's configuration.
type Config struct {
	config.Common
	// MetricsAddr (HOOKLINE_METRICS_ADDR, default ":9090") serves /healthz,
	// /readyz and /metrics; "" serves nothing (used when embedded).
	MetricsAddr string
	// Concurrency (HOOKLINE_WORKER_CONCURRENCY, default 64): webhook requests
	// this process runs at once.
	Concurrency int
	// Lookahead (HOOKLINE_WORKER_LOOKAHEAD, default 4096): tickets this
	// process fetches beyond its free slots, so that a free slot can go to
	// the tenant holding the fewest slots instead of to whichever ticket is
	// next in the queue; 0 fetches only for free slots (first come, first
	// served).
	Lookahead int
	// ShutdownGrace (HOOKLINE_SHUTDOWN_GRACE, default 30s): how long in-flight
	// deliveries may finish after a stop signal before they are handed back.
	ShutdownGrace time.Duration
	// TemplateCacheTTL (HOOKLINE_TEMPLATE_CACHE_TTL, default 5s): how long a
	// template's signing secrets are cached; a rotation reaches deliveries
	// within this time.
	TemplateCacheTTL time.Duration
}

// LoadConfig reads the worker's configuration from the environment.
func LoadConfig(env config.Env) (Config, error) {
	common, err := config.LoadCommon(env)
	errs := []error{err}
	c := Config{Common: common, MetricsAddr: ":9090"}
	if v, ok := lookup(env, "HOOKLINE_METRICS_ADDR"); ok {
		c.MetricsAddr = v
	}
	var e error
	if c.Concurrency, e = config.Int(env, "HOOKLINE_WORKER_CONCURRENCY", 64); e != nil {
		errs = append(errs, e)
	} else if c.Concurrency < 1 || c.Concurrency > 10000 {
		errs = append(errs, fmt.Errorf("HOOKLINE_WORKER_CONCURRENCY must be between 1 and 10000, got %d", c.Concurrency))
	}
	if c.Lookahead, e = config.Int(env, "HOOKLINE_WORKER_LOOKAHEAD", 4096); e != nil {
		errs = append(errs, e)
	} else if c.Lookahead < 0 || c.Lookahead > 100000 {
		errs = append(errs, fmt.Errorf("HOOKLINE_WORKER_LOOKAHEAD must be between 0 and 100000, got %d", c.Lookahead))
	}
	if c.ShutdownGrace, e = config.Duration(env, "HOOKLINE_SHUTDOWN_GRACE", 30*time.Second); e != nil {
		errs = append(errs, e)
	}
	if c.TemplateCacheTTL, e = config.Duration(env, "HOOKLINE_TEMPLATE_CACHE_TTL", 5*time.Second); e != nil {
		errs = append(errs, e)
	}
	return c, errors.Join(errs...)
}

func lookup(env config.Env, key string) (string, bool) {
	v := env(key)
	return v, v != ""
}

// Deps are the connections a worker runs on.
type Deps struct {
	NATS     *nats.Conn
	Redis    redis.UniversalClient
	Registry prometheus.Registerer
	Gatherer prometheus.Gatherer
	Log      *zap.Logger
}

// Run delivers tickets until ctx ends, then drains in-flight deliveries.
func Run(ctx context.Context, cfg Config, d Deps) error {
	log := d.Log.With(zap.String("component", "worker"))
	q, err := queue.Setup(ctx, d.NATS, cfg.Queue)
	if err != nil {
		return fmt.Errorf("set up streams: %w", err)
	}
	cons, err := q.Consumer(ctx)
	if err != nil {
		return err
	}
	// Deliveries run concurrently: their tracker calls share pipelines.
	tr := tracker.New(d.Redis, tracker.WithPrefix(cfg.RedisPrefix), tracker.WithRetention(cfg.Retention), tracker.WithPipelining(2))
	defer tr.Close()
	client := webhook.NewClient(
		webhook.WithUserAgent("hookline/"+Version),
		webhook.WithGuard(webhook.NewGuard(cfg.AllowPrivateNetworks, cfg.AllowedNetworks)),
	)
	store, err := templates.NewStore(ctx, q.JetStream(), cfg.Queue.Replicas)
	if err != nil {
		return err
	}
	m := NewMetrics(d.Registry)
	dl := NewDeliverer(q, tr, client, cfg.Secrets, log, m, WithTemplates(store, cfg.TemplateCacheTTL), WithPagesMaxAge(cfg.Queue.PagesMaxAge))
	pool := NewPool(cons, q, Recover(log)(dl.Handle), cfg.Concurrency, cfg.Lookahead, cfg.ShutdownGrace, cfg.Queue.AckWait, m, log)

	light := sched.New(d.NATS, log)
	if cfg.LightFirst {
		pool.PreferLight(light)
	}

	ncons, err := q.NotifyConsumer(ctx)
	if err != nil {
		return err
	}
	notifier := NewNotifier(ncons, client, cfg.Secrets, 16, cfg.ShutdownGrace, cfg.Queue.AckWait, m, log)

	g, ctx := errgroup.WithContext(ctx)
	if cfg.LightFirst {
		g.Go(func() error { return light.Run(ctx) })
	}
	g.Go(func() error { return pool.Run(ctx) })
	g.Go(func() error { return notifier.Run(ctx) })
	if cfg.MetricsAddr != "" {
		l, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("HOOKLINE_METRICS_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		ops.Register(mux, d.Gatherer, map[string]ops.Check{"nats": config.NATSCheck(d.NATS), "redis": tr.Ping})
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		log.Info("worker metrics listening", zap.String("addr", l.Addr().String()))
		g.Go(func() error { return ops.Serve(ctx, srv, l, 5*time.Second, log) })
	}
	log.Info("worker started", zap.Int("concurrency", cfg.Concurrency))
	err = g.Wait()
	log.Info("worker stopped")
	return err
}
