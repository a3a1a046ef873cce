package worker

import (
	"context"
	"sync"
	"time"

	"github.com/hookline/hookline/pkg/templates"
)

// TemplateSource gives an upload's template as it is now: its signing
// secrets are the current ones, so a rotation reaches uploads already under way.
type TemplateSource interface {
	Get(ctx context.Context, tenant, code string) (*templates.Template, error)
}

// templateCache keeps templates for a few seconds, so a busy upload costs
// one store read per TTL, not one per page.
type templateCache struct {
	src     TemplateSource
	ttl     time.Duration
	mu      sync.Mutex
	entries map[string]cachedTemplate
}

type cachedTemplate struct {
	t   *templates.Template
	err error // only ErrNotFound is cached
	at  time.Time
}

func newTemplateCache(src TemplateSource, ttl time.Duration) *templateCache {
	return &templateCache{src: src, ttl: ttl, entries: map[string]cachedTemplate{}}
}

func (c *templateCache) Get(ctx context.Context, tenant, code string) (*templates.Template, error) {
	key := tenant + "." + code
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return e.t, e.err
	}
	t, err := c.src.Get(ctx, tenant, code)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	c.mu.Lock()
	if len(c.entries) > 10000 { // bounded: drop everything rather than grow
		c.entries = map[string]cachedTemplate{}
	}
	c.entries[key] = cachedTemplate{t: t, err: err, at: now}
	c.mu.Unlock()
	return t, err
}
