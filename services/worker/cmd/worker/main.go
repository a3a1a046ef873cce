// Command worker delivers hookline's pages to the customers' webhooks. Run as
// many as the load needs against one NATS and one Redis.
package main

import (
	"context"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/services/worker"
)

func main() {
	cfg, err := worker.LoadConfig(config.OSEnv)
	config.Main("worker", cfg.Common, err, func(ctx context.Context, rt config.Runtime) error {
		return worker.Run(ctx, cfg, worker.Deps{NATS: rt.NATS, Redis: rt.Redis, Registry: rt.Registry, Gatherer: rt.Registry, Log: rt.Log})
	})
}
