// Command ingest serves hookline's HTTP API: templates, imports and uploads.
package main

import (
	"context"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/services/ingest"
)

func main() {
	cfg, err := ingest.LoadConfig(config.OSEnv)
	config.Main("ingest", cfg.Common, err, func(ctx context.Context, rt config.Runtime) error {
		return ingest.Run(ctx, cfg, ingest.Deps{NATS: rt.NATS, Redis: rt.Redis, Registry: rt.Registry, Gatherer: rt.Registry, Log: rt.Log})
	})
}
