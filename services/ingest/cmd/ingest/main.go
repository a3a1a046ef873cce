// Command ingest serves hookline's HTTP API: templates, imports and uploads.
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
	"github.com/hookline/hookline/services/ingest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := ingest.LoadConfig(config.OSEnv)
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

	nc, err := cfg.ConnectNATS("hookline-ingest", log)
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
	return ingest.Run(ctx, cfg, ingest.Deps{NATS: nc, Redis: rdb, Registry: reg, Gatherer: reg, Log: log})
}
