// Package redisconn opens hookline's Redis client for a REDIS_URL naming a
// single server, a Redis Cluster or a Sentinel-managed master, and makes the
// writes marked Durable wait until a replica holds them.
package redisconn

import (
	"context"
	"net/url"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// Kind is the deployment REDIS_URL names.
type Kind string

// Redis deployments.
const (
	Single   Kind = "single"   // one server: redis://host:port/db
	Cluster  Kind = "cluster"  // Redis Cluster: redis://host:port?addr=host2:port&addr=...
	Sentinel Kind = "sentinel" // Sentinel: redis://sentinel:26379/db?master_name=mymaster&addr=...
)

// KindOf tells which deployment a REDIS_URL names: master_name= is
// Sentinel (the address and addr= parameters are the sentinels), addr=
// parameters without it are the seed nodes of a Redis Cluster, anything
// else is a single server.
func KindOf(raw string) (Kind, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		return Sentinel, nil
	case q.Has("addr"):
		return Cluster, nil
	}
	return Single, nil
}

// Durability of writes: in a deployment with replicas, Redis acknowledges a
// write before any replica has it, and a master that dies at that moment
// takes the write with it. The tracker marks the writes whose loss would
// lose an accepted page (an upload's record before its 202, a page's final
// state) with Durable; for those the client sends WAIT on the same
// connection, in the same round trip, and answers once WaitReplicas
// replicas hold the write or WaitTimeout passes.

// Durability says how durable writes wait for replicas.
type Durability struct {
	WaitReplicas int           // replicas to wait for; 0 sends no WAIT
	WaitTimeout  time.Duration // how long to wait for them
}

// Open opens a client for a REDIS_URL of any kind and adds WAIT to the
// durable writes when d.WaitReplicas > 0. shortfall, when not nil, is
// called for each durable write that fewer replicas acknowledged in time
// (the master has no replica at the moment: degraded, not an error).
func Open(raw string, d Durability, shortfall func()) (redis.UniversalClient, error) {
	kind, err := KindOf(raw)
	if err != nil {
		return nil, err
	}
	addHook := func(c *redis.Client) {
		if d.WaitReplicas > 0 {
			c.AddHook(&waitHook{client: c, replicas: d.WaitReplicas, timeout: d.WaitTimeout, shortfall: shortfall})
		}
	}
	switch kind {
	case Cluster:
		opt, err := redis.ParseClusterURL(raw)
		if err != nil {
			return nil, err
		}
		c := redis.NewClusterClient(opt)
		c.OnNewNode(addHook) // each node's own client: WAIT goes to the master that took the write
		return c, nil
	case Sentinel:
		opt, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, err
		}
		c := redis.NewFailoverClient(opt)
		addHook(c)
		return c, nil
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	c := redis.NewClient(opt)
	addHook(c)
	return c, nil
}

type durableKey struct{}

// Durable marks ctx: the Redis writes made with it wait for replicas (see
// Durability).
func Durable(ctx context.Context) context.Context { return context.WithValue(ctx, durableKey{}, true) }

// IsDurable reports whether ctx is marked Durable.
func IsDurable(ctx context.Context) bool { b, _ := ctx.Value(durableKey{}).(bool); return b }

// clientCmds are the commands go-redis sends by itself, with the caller's
// context, to set up a connection or learn a cluster's layout: they are
// not the caller's writes.
var clientCmds = map[string]bool{"hello": true, "auth": true, "select": true, "client": true, "readonly": true,
	"ping": true, "cluster": true, "command": true, "info": true, "wait": true}

func ownCmd(cmd redis.Cmder) bool { return !clientCmds[cmd.Name()] }

// waitHook appends WAIT to the durable commands sent to one server. WAIT
// covers the writes made on its own connection, so a lone command is sent
// as a pipeline with it.
type waitHook struct {
	client    *redis.Client
	replicas  int
	timeout   time.Duration
	shortfall func()
}

func (h *waitHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *waitHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !IsDurable(ctx) || !ownCmd(cmd) {
			return next(ctx, cmd)
		}
		_, _ = h.client.Pipelined(ctx, func(p redis.Pipeliner) error { return p.Process(ctx, cmd) })
		return cmd.Err()
	}
}

func (h *waitHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !IsDurable(ctx) || !slices.ContainsFunc(cmds, ownCmd) {
			return next(ctx, cmds)
		}
		wait := redis.NewIntCmd(ctx, "wait", h.replicas, h.timeout.Milliseconds())
		err := next(ctx, append(cmds[:len(cmds):len(cmds)], wait))
		if n, werr := wait.Result(); werr == nil && n < int64(h.replicas) {
			if h.shortfall != nil {
				h.shortfall()
			}
		}
		return err
	}
}
