package config

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Runtime is what a service's run function gets from Main: its connections,
// logger and metrics registry.
type Runtime struct {
	NATS     *nats.Conn
	Redis    *redis.Client
	Registry *prometheus.Registry
	Log      *zap.Logger
}

// Main is the body of a service's main: given the result of loading its
// configuration, it builds the logger, connects to NATS and Redis, stops on
// SIGINT/SIGTERM and runs run. It exits the process with a message on error.
func Main(name string, common Common, loadErr error, run func(ctx context.Context, rt Runtime) error) {
	if loadErr != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration:\n%v\n", name, loadErr)
		os.Exit(1)
	}
	if err := serve(name, common, run); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

func serve(name string, c Common, run func(ctx context.Context, rt Runtime) error) error {
	log, err := c.Logger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := c.ConnectNATS("hookline-"+name, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	rdb, err := c.ConnectRedis(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return run(ctx, Runtime{NATS: nc, Redis: rdb, Registry: reg, Log: log})
}
