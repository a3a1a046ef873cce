package config

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/tracing"
)

// Runtime is what a service's run function gets from Main: its connections,
// logger and metrics registry.
type Runtime struct {
	NATS     *nats.Conn
	Redis    redis.UniversalClient
	Registry *prometheus.Registry
	Log      *zap.Logger
}

// Main is the body of a service's main: given the result of loading its
// configuration, it builds the logger, connects to NATS and Redis, stops on
// SIGINT/SIGTERM and runs run. An error that stops it is logged in the
// configured format (JSON unless HOOKLINE_LOG_FORMAT is console), and the
// process exits with status 1.
func Main(name string, common Common, loadErr error, run func(ctx context.Context, rt Runtime) error) {
	log, err := common.Logger()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: logger: %v\n", name, err)
		os.Exit(1)
	}
	log = log.With(zap.String("service", name))
	if loadErr != nil {
		log.Error("configuration is not valid", zap.Error(loadErr))
		_ = log.Sync()
		os.Exit(1)
	}
	if err := serve(name, common, log, run); err != nil {
		log.Error("stopped by an error", zap.Error(err))
		_ = log.Sync()
		os.Exit(1)
	}
	_ = log.Sync()
}

func serve(name string, c Common, log *zap.Logger, run func(ctx context.Context, rt Runtime) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	shutdownTracing, err := tracing.Setup(ctx, "hookline-"+name)
	if err != nil {
		return fmt.Errorf("tracing (OTEL_EXPORTER_OTLP_*): %w", err)
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	nc, err := c.ConnectNATS("hookline-"+name, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	unreplicated := UnreplicatedWrites()
	rdb, err := c.ConnectRedis(ctx, unreplicated.Inc)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), unreplicated)
	return StoppedEarly(ctx, run(ctx, Runtime{NATS: nc, Redis: rdb, Registry: reg, Log: log}))
}

// StoppedEarly is err, or nil when err only says that ctx ended (a stop
// while the service was still starting up is a clean stop too).
func StoppedEarly(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// UnreplicatedWrites is the counter of durable Redis writes that no replica
// acknowledged in time (ConnectRedis's shortfall).
func UnreplicatedWrites() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "hookline_redis_unreplicated_writes_total",
		Help: "Durable Redis writes (upload records, pages' final states) that no replica acknowledged within HOOKLINE_REDIS_WAIT_TIMEOUT."})
}
