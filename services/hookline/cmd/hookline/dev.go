package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/pkg/secrets"
	"github.com/hookline/hookline/pkg/tracing"
	"github.com/hookline/hookline/services/ingest"
	"github.com/hookline/hookline/services/worker"
)

// DevAPIKey is the API key `hookline dev` accepts when HOOKLINE_API_KEYS is not set.
const DevAPIKey = "hookline-dev-key" // #nosec G101 -- the documented key of the local dev mode only

// devEnv fills in what a laptop does not have: an embedded NATS server, a dev
// API key, an encryption key kept in the data dir, private targets allowed.
func devEnv(dataDir, natsURL, redisURL string) (config.Env, error) {
	keyFile := filepath.Join(dataDir, "encryption.key")
	key, err := os.ReadFile(keyFile) // #nosec G304 -- the dev data dir its user chose
	if errors.Is(err, os.ErrNotExist) {
		k, gerr := secrets.GenerateKey()
		if gerr != nil {
			return nil, gerr
		}
		key = []byte(k)
		err = os.WriteFile(keyFile, key, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("encryption key in %s: %w", keyFile, err)
	}
	defaults := map[string]string{
		"NATS_URL":                        natsURL,
		"REDIS_URL":                       redisURL,
		"HOOKLINE_ENCRYPTION_KEY":         strings.TrimSpace(string(key)),
		"HOOKLINE_API_KEYS":               "dev:" + DevAPIKey,
		"HOOKLINE_ADMIN_TOKEN":            DevAdminToken,
		"HOOKLINE_ALLOW_PRIVATE_NETWORKS": "true",
		"HOOKLINE_ADDR":                   "127.0.0.1:8080",
		"HOOKLINE_LOG_FORMAT":             "console",
		"HOOKLINE_METRICS_ADDR":           "127.0.0.1:9090",
	}
	return func(k string) string {
		if k == "NATS_URL" || k == "REDIS_URL" {
			return defaults[k] // always the ones dev mode chose
		}
		if v := os.Getenv(k); v != "" {
			return v
		}
		return defaults[k]
	}, nil
}

func runDev(args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dataDir := fs.String("data", envOr("HOOKLINE_DATA_DIR", ".hookline"), "directory of the embedded NATS server's store and Redis's append-only file (HOOKLINE_DATA_DIR)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), devUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return dev(ctx, *dataDir)
}

// dev runs dev mode on dataDir until ctx ends.
func dev(ctx context.Context, dataDir string) error {

	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true,
		StoreDir: filepath.Join(dataDir, "jetstream"), NoSigs: true, NoLog: true, MaxPayload: 8 << 20,
	})
	if err != nil {
		return fmt.Errorf("embedded NATS: %w", err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(30 * time.Second) {
		return errors.New("embedded NATS did not start within 30s")
	}

	redisURL, stopRedis, lossy, err := devRedisURL(ctx, filepath.Join(dataDir, "redis"))
	if err != nil {
		return err
	}
	defer stopRedis()
	env, err := devEnv(dataDir, ns.ClientURL(), redisURL)
	if err != nil {
		return err
	}
	icfg, err := ingest.LoadConfig(env)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	icfg.MetricsAddr = "" // the worker serves HOOKLINE_METRICS_ADDR, the API port serves the shared registry too
	wcfg, err := worker.LoadConfig(env)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	for name, addr := range map[string]string{"HOOKLINE_ADDR": icfg.Addr, "HOOKLINE_METRICS_ADDR": wcfg.MetricsAddr} {
		if err := loopbackOnly(addr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	log, err := icfg.Logger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	shutdownTracing, err := tracing.Setup(ctx, "hookline-dev")
	if err != nil {
		return fmt.Errorf("tracing (OTEL_EXPORTER_OTLP_*): %w", err)
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	if lossy != "" {
		log.Warn(lossy + ": using an embedded in-memory Redis instead: uploads accepted now can be lost when `hookline dev` stops (install redis-server, or set REDIS_URL)")
	}

	nc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("hookline-dev"), nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	rdb, err := icfg.ConnectRedis(ctx, nil) // any REDIS_URL: a server, a Redis Cluster or Sentinel
	if err != nil {
		return err
	}
	defer rdb.Close()

	l, err := net.Listen("tcp", icfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (set HOOKLINE_ADDR to use another address): %w", icfg.Addr, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return ingest.Run(gctx, icfg, ingest.Deps{NATS: nc, Redis: rdb, Registry: reg, Gatherer: reg, Log: log, Listener: l,
			Ready: func(addr string) {
				key := DevAPIKey
				if os.Getenv("HOOKLINE_API_KEYS") != "" {
					key = "(one of HOOKLINE_API_KEYS)"
				}
				fmt.Fprintf(os.Stderr, "\nhookline dev is running\n  console:  http://%s/console/\n  API:      http://%s\n  API key:  %s\n  metrics:  http://%s/metrics\n  data dir: %s\nPress Ctrl-C to stop (in-flight deliveries finish first).\n\n", addr, addr, key, addr, dataDir)
			}})
	})
	g.Go(func() error {
		return worker.Run(gctx, wcfg, worker.Deps{NATS: nc, Redis: rdb, Registry: reg, Gatherer: reg, Log: log})
	})
	err = config.StoppedEarly(ctx, g.Wait())
	log.Info("hookline dev stopped", zap.Bool("clean", err == nil))
	return err
}

const devUsage = `Usage: hookline dev [-data DIR]

Runs ingest and a worker in one process on loopback, with an embedded NATS
server and a redis-server child (its append-only file in DIR), so that
accepted uploads survive a stop and a start. Without redis-server on PATH it
falls back to an in-memory Redis and warns that uploads can be lost.

Environment: HOOKLINE_DATA_DIR (default .hookline), HOOKLINE_ADDR (default
127.0.0.1:8080), HOOKLINE_METRICS_ADDR (the worker's metrics, default
127.0.0.1:9090), REDIS_URL (use that Redis instead), HOOKLINE_API_KEYS.

`

// devRedisURL is the Redis dev mode uses: REDIS_URL when set, else a
// redis-server child keeping its append-only file in dir, else (with the
// reason in lossy) an in-memory one.
func devRedisURL(ctx context.Context, dir string) (url string, stop func(), lossy string, err error) {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u, func() {}, "", nil
	}
	path, lerr := exec.LookPath("redis-server")
	if lerr == nil {
		r, serr := startDevRedis(ctx, path, dir)
		if serr == nil {
			return r.URL, r.Stop, "", nil
		}
		lossy = serr.Error()
	} else {
		lossy = "redis-server is not installed"
	}
	mr := miniredis.NewMiniRedis()
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, "", fmt.Errorf("embedded redis: %w", err)
	}
	return "redis://" + mr.Addr(), mr.Close, lossy, nil
}

// loopbackOnly refuses an address that would listen beyond this machine:
// dev mode has a well-known API key and may call private addresses.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("dev mode listens on loopback only, not on %q: use 127.0.0.1:<port>", addr)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
