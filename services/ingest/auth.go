package ingest

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// principal is who a request's API key stands for.
type principal struct {
	Tenant string
	Quotas Quotas
}

type principalKey struct{}

// quotasOf returns the quotas of the request's tenant (none when the request
// was not authenticated by a tenant key).
func quotasOf(ctx context.Context) (string, Quotas) {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p.Tenant, p.Quotas
}

// errUnauthenticated: no key, or a key that is unknown or revoked.
var errUnauthenticated = errors.New("missing or unknown API key")

// KeyStore is what authentication needs of the tenant store.
type KeyStore interface {
	LookupKey(ctx context.Context, hash string) (*APIKey, error)
	Tenant(ctx context.Context, id string) (*Tenant, error)
}

// MaxAuthCacheTTL bounds how long a revoked key may keep working on a replica
// that did not revoke it.
const MaxAuthCacheTTL = 5 * time.Second

// authenticator resolves API keys: the static ones of HOOKLINE_API_KEYS
// first, then the stored ones, whose lookups are cached for ttl.
type authenticator struct {
	static   map[[32]byte]string // sha256(key) → tenant
	store    KeyStore            // nil: static keys only
	defaults Quotas
	ttl      time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	p       principal
	expires time.Time
}

// maxCached bounds the cache; when full it starts again empty.
const maxCached = 10000

func newAuthenticator(keys map[string]string) *authenticator {
	a := &authenticator{static: map[[32]byte]string{}, ttl: MaxAuthCacheTTL, now: time.Now, cache: map[[32]byte]cached{}}
	for k, tenant := range keys {
		a.static[sha256.Sum256([]byte(k))] = tenant
	}
	return a
}

// isStatic reports whether tenant is one of HOOKLINE_API_KEYS.
func (a *authenticator) isStatic(tenant string) bool {
	for _, t := range a.static {
		if t == tenant {
			return true
		}
	}
	return false
}

// resolve returns the principal of key, errUnauthenticated when there is
// none, or an unavailable error when the store cannot tell.
func (a *authenticator) resolve(ctx context.Context, key string) (principal, error) {
	if key == "" {
		return principal{}, errUnauthenticated
	}
	sum := sha256.Sum256([]byte(key))
	if tenant, ok := a.static[sum]; ok {
		return principal{Tenant: tenant, Quotas: QuotaSettings{}.Apply(a.defaults)}, nil
	}
	if a.store == nil || !strings.HasPrefix(key, KeyPrefix) {
		return principal{}, errUnauthenticated
	}
	now := a.now()
	if a.ttl > 0 {
		a.mu.Lock()
		c, ok := a.cache[sum]
		a.mu.Unlock()
		if ok && now.Before(c.expires) {
			return c.p, nil
		}
	}
	rec, err := a.store.LookupKey(ctx, hex.EncodeToString(sum[:]))
	if errors.Is(err, ErrAPIKeyNotFound) {
		return principal{}, errUnauthenticated
	}
	if err != nil {
		return principal{}, fmt.Errorf("%w: look up API key: %w", errUnavailable, err)
	}
	t, err := a.store.Tenant(ctx, rec.Tenant)
	if errors.Is(err, ErrTenantNotFound) {
		return principal{}, errUnauthenticated
	}
	if err != nil {
		return principal{}, fmt.Errorf("%w: look up tenant: %w", errUnavailable, err)
	}
	p := principal{Tenant: t.ID, Quotas: t.Quotas.Apply(a.defaults)}
	if a.ttl > 0 {
		a.mu.Lock()
		if len(a.cache) >= maxCached {
			clear(a.cache)
		}
		a.cache[sum] = cached{p: p, expires: now.Add(a.ttl)}
		a.mu.Unlock()
	}
	return p, nil
}

// forget drops a revoked key from this replica's cache at once (other
// replicas drop it within their TTL).
func (a *authenticator) forget(hash string) {
	var sum [32]byte
	if b, err := hex.DecodeString(hash); err == nil && len(b) == len(sum) {
		copy(sum[:], b)
		a.mu.Lock()
		delete(a.cache, sum)
		a.mu.Unlock()
	}
}

// forgetTenant drops the cached keys of a tenant whose quotas changed, so
// that this replica applies the new ones from the next request on (other
// replicas within their TTL).
func (a *authenticator) forgetTenant(tenant string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for sum, c := range a.cache {
		if c.p.Tenant == tenant {
			delete(a.cache, sum)
		}
	}
}

// adminToken checks the admin API's bearer token in constant time.
type adminToken struct {
	sum [32]byte
	set bool
}

func newAdminToken(token string) adminToken {
	if token == "" {
		return adminToken{}
	}
	return adminToken{sum: sha256.Sum256([]byte(token)), set: true}
}

func (t adminToken) matches(presented string) bool {
	got := sha256.Sum256([]byte(presented))
	return t.set && subtle.ConstantTimeCompare(got[:], t.sum[:]) == 1
}
