// Command worker delivers hookline's pages to the customers' webhooks. Run as
// many as the load needs against one NATS and one Redis.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/services/worker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := worker.LoadConfig(config.OSEnv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log, err := cfg.Logger()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	nc, err := cfg.ConnectNATS("hookline-worker", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	rdb, err := cfg.ConnectRedis(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return worker.Run(ctx, cfg, worker.Deps{NATS: nc, Redis: rdb, Registry: reg, Gatherer: reg, Log: log})
}
