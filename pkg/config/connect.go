package config

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/hookline/hookline/pkg/redisconn"
)

// ConnectNATS connects to NATS_URL and keeps reconnecting for as long as the
// process lives: a NATS restart or a leader change is ridden out, not fatal.
func (c Common) ConnectNATS(name string, log *zap.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(c.NATSURL,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(false),
		// While disconnected, publishes fail at once instead of waiting in a
		// buffer: an import answers 503 right away, and no page of a refused
		// import reaches the server after its purge.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", zap.Error(err))
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", zap.String("server", nc.ConnectedUrlRedacted()))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS_URL: %w", err)
	}
	return nc, nil
}

// ConnectRedis opens a client for REDIS_URL (a single server, a Redis
// Cluster or Sentinel: see redisconn.KindOf) and checks that it answers.
// shortfall counts the durable writes that no replica acknowledged in time.
func (c Common) ConnectRedis(ctx context.Context, shortfall func()) (redis.UniversalClient, error) {
	rdb, err := redisconn.Open(c.RedisURL, c.RedisDurability, shortfall)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("connect to REDIS_URL: %w", err)
	}
	return rdb, nil
}

// NATSCheck is a readiness check for a NATS connection.
func NATSCheck(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if !nc.IsConnected() {
			return fmt.Errorf("nats: %s", nc.Status())
		}
		return nil
	}
}
