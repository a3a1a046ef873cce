package ingest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/config"
)

func TestGenerateKey(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		k, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k, "hl_") || len(k) != 46 {
			t.Fatalf("key %q: want hl_ and 43 characters", k)
		}
		raw, err := base64.RawURLEncoding.DecodeString(k[3:])
		if err != nil || len(raw) != 32 {
			t.Fatalf("key %q: not 32 bytes of base64url (%v)", k, err)
		}
		if seen[k] {
			t.Fatalf("key %q generated twice", k)
		}
		seen[k] = true
	}
}

func TestHashKey(t *testing.T) {
	key := "hl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	sum := sha256.Sum256([]byte(key))
	if got := HashKey(key); got != hex.EncodeToString(sum[:]) || !validHash(got) {
		t.Fatalf("HashKey = %s", got)
	}
	if HashKey(key) == HashKey(key+"x") {
		t.Fatal("different keys, same hash")
	}
	if h := keyHint(key); h != "hl_AAAA…" {
		t.Fatalf("keyHint = %q", h)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("a", 63)} {
		if validHash(bad) {
			t.Errorf("validHash(%q) = true", bad)
		}
	}
}

func intp(n int) *int { return &n }

func TestQuotaSettingsApply(t *testing.T) {
	defaults := Quotas{MaxRecords: 100, MaxConcurrentUploads: 5, ImportsPerMinute: 60}
	for _, tc := range []struct {
		name string
		own  QuotaSettings
		want Quotas
	}{
		{"none of its own: share 1", QuotaSettings{}, Quotas{MaxRecords: 100, MaxConcurrentUploads: 5, ImportsPerMinute: 60, DeliveryShare: 1}},
		{"its own records", QuotaSettings{MaxRecords: intp(7)}, Quotas{MaxRecords: 7, MaxConcurrentUploads: 5, ImportsPerMinute: 60, DeliveryShare: 1}},
		{"0 lifts a limit", QuotaSettings{ImportsPerMinute: intp(0)}, Quotas{MaxRecords: 100, MaxConcurrentUploads: 5, DeliveryShare: 1}},
		{"all its own", QuotaSettings{intp(1), intp(2), intp(3), intp(4)}, Quotas{1, 2, 3, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.own.Apply(defaults); got != tc.want {
				t.Fatalf("Apply = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTenantInputBuild(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     TenantInput
		fields string
	}{
		{"ok", TenantInput{ID: "acme", Quotas: QuotaSettings{MaxRecords: intp(0)}}, ""},
		{"no id", TenantInput{}, "id"},
		{"bad id", TenantInput{ID: "a b"}, "id"},
		{"long name", TenantInput{ID: "a", Name: strings.Repeat("n", 201)}, "name"},
		{"negative quotas", TenantInput{ID: "a", Quotas: QuotaSettings{intp(-1), intp(1), intp(-5), nil}}, "quotas.maxRecords,quotas.importsPerMinute"},
		{"share 1", TenantInput{ID: "a", Quotas: QuotaSettings{DeliveryShare: intp(1)}}, ""},
		{"share at most", TenantInput{ID: "a", Quotas: QuotaSettings{DeliveryShare: intp(MaxDeliveryShare)}}, ""},
		{"share 0", TenantInput{ID: "a", Quotas: QuotaSettings{DeliveryShare: intp(0)}}, "quotas.deliveryShare"},
		{"share negative", TenantInput{ID: "a", Quotas: QuotaSettings{DeliveryShare: intp(-3)}}, "quotas.deliveryShare"},
		{"share too large", TenantInput{ID: "a", Quotas: QuotaSettings{DeliveryShare: intp(MaxDeliveryShare + 1)}}, "quotas.deliveryShare"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tn, err := tc.in.Build()
			if tc.fields == "" {
				if err != nil || tn.Name != tc.in.ID {
					t.Fatalf("Build = %+v, %v", tn, err)
				}
				return
			}
			var fe FieldErrors
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v, want field errors", err)
			}
			var names []string
			for _, f := range fe {
				names = append(names, f.Field)
			}
			if strings.Join(names, ",") != tc.fields {
				t.Fatalf("fields = %v, want %s", names, tc.fields)
			}
		})
	}
}

func TestLoadQuotas(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    Quotas
		wantErr []string
	}{
		{"defaults: no limits", nil, Quotas{}, nil},
		{"all set", map[string]string{"HOOKLINE_QUOTA_MAX_RECORDS": "1000", "HOOKLINE_QUOTA_MAX_CONCURRENT_UPLOADS": "5", "HOOKLINE_QUOTA_IMPORTS_PER_MINUTE": " 60 "},
			Quotas{MaxRecords: 1000, MaxConcurrentUploads: 5, ImportsPerMinute: 60}, nil},
		{"negative", map[string]string{"HOOKLINE_QUOTA_MAX_RECORDS": "-1"}, Quotas{}, []string{"HOOKLINE_QUOTA_MAX_RECORDS"}},
		{"not numbers", map[string]string{"HOOKLINE_QUOTA_MAX_CONCURRENT_UPLOADS": "five", "HOOKLINE_QUOTA_IMPORTS_PER_MINUTE": "1.5"}, Quotas{},
			[]string{"HOOKLINE_QUOTA_MAX_CONCURRENT_UPLOADS", "HOOKLINE_QUOTA_IMPORTS_PER_MINUTE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := LoadQuotas(config.MapEnv(tc.env))
			if len(tc.wantErr) == 0 {
				if err != nil || q != tc.want {
					t.Fatalf("LoadQuotas = %+v, %v; want %+v", q, err, tc.want)
				}
				return
			}
			for _, name := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), name) {
					t.Errorf("err = %v, want it to name %s", err, name)
				}
			}
		})
	}
}

func TestLoadConfigTenants(t *testing.T) {
	base := func() map[string]string {
		return map[string]string{
			"NATS_URL": "nats://127.0.0.1:4222", "REDIS_URL": "redis://127.0.0.1:6379",
			"HOOKLINE_ENCRYPTION_KEY": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		}
	}
	token := strings.Repeat("t", 32)
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{"admin token without API keys", map[string]string{"HOOKLINE_ADMIN_TOKEN": token}, "", func(t *testing.T, c Config) {
			if c.AdminToken != token || len(c.APIKeys) != 0 || c.AuthCacheTTL != 5*time.Second {
				t.Fatalf("config = %+v", c)
			}
		}},
		{"both", map[string]string{"HOOKLINE_ADMIN_TOKEN": token, "HOOKLINE_API_KEYS": "acme:0123456789abcdef", "HOOKLINE_AUTH_CACHE_TTL": "0s",
			"HOOKLINE_QUOTA_MAX_RECORDS": "10"}, "", func(t *testing.T, c Config) {
			if c.APIKeys["0123456789abcdef"] != "acme" || c.AuthCacheTTL != 0 || c.Quotas.MaxRecords != 10 {
				t.Fatalf("config = %+v", c)
			}
		}},
		{"neither", nil, "HOOKLINE_ADMIN_TOKEN", nil},
		{"short admin token", map[string]string{"HOOKLINE_ADMIN_TOKEN": "short"}, "HOOKLINE_ADMIN_TOKEN must be at least 32", nil},
		{"admin token is an API key", map[string]string{"HOOKLINE_ADMIN_TOKEN": token, "HOOKLINE_API_KEYS": "acme:" + token}, "must differ", nil},
		{"cache over 5s", map[string]string{"HOOKLINE_API_KEYS": "acme:0123456789abcdef", "HOOKLINE_AUTH_CACHE_TTL": "1m"}, "HOOKLINE_AUTH_CACHE_TTL", nil},
		{"bad quota", map[string]string{"HOOKLINE_API_KEYS": "acme:0123456789abcdef", "HOOKLINE_QUOTA_IMPORTS_PER_MINUTE": "x"}, "HOOKLINE_QUOTA_IMPORTS_PER_MINUTE", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := base()
			for k, v := range tc.vars {
				env[k] = v
			}
			c, err := LoadConfig(config.MapEnv(env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), token) {
					t.Fatalf("error repeats the admin token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

// fakeKeys is a KeyStore in memory that counts lookups.
type fakeKeys struct {
	keys    map[string]*APIKey // by hash
	tenants map[string]*Tenant
	lookups int
	fail    error
}

func (f *fakeKeys) LookupKey(_ context.Context, hash string) (*APIKey, error) {
	f.lookups++
	if f.fail != nil {
		return nil, f.fail
	}
	if k, ok := f.keys[hash]; ok {
		return k, nil
	}
	return nil, ErrAPIKeyNotFound
}

func (f *fakeKeys) Tenant(_ context.Context, id string) (*Tenant, error) {
	if t, ok := f.tenants[id]; ok {
		return t, nil
	}
	return nil, ErrTenantNotFound
}

func TestAuthenticator(t *testing.T) {
	const stored = "hl_storedkeystoredkeystoredkeystoredkeystore"
	store := &fakeKeys{
		keys:    map[string]*APIKey{HashKey(stored): {KeyID: "K1", Tenant: "zeta", Hash: HashKey(stored)}},
		tenants: map[string]*Tenant{"zeta": {ID: "zeta", Quotas: QuotaSettings{MaxRecords: intp(3)}}},
	}
	now := time.Unix(1000, 0)
	a := newAuthenticator(map[string]string{"static-key-0123456789": "acme"})
	a.store, a.defaults, a.ttl, a.now = store, Quotas{MaxRecords: 50, ImportsPerMinute: 9}, 5*time.Second, func() time.Time { return now }
	ctx := context.Background()

	for _, tc := range []struct {
		key    string
		tenant string
		quotas Quotas
		err    error
	}{
		{"static-key-0123456789", "acme", Quotas{MaxRecords: 50, ImportsPerMinute: 9, DeliveryShare: 1}, nil},
		{stored, "zeta", Quotas{MaxRecords: 3, ImportsPerMinute: 9, DeliveryShare: 1}, nil},
		{"", "", Quotas{}, errUnauthenticated},
		{"hl_unknown", "", Quotas{}, errUnauthenticated},
		{strings.Repeat("x", 40), "", Quotas{}, errUnauthenticated}, // not hl_: the store is not asked
	} {
		p, err := a.resolve(ctx, tc.key)
		if !errors.Is(err, tc.err) || p.Tenant != tc.tenant || p.Quotas != tc.quotas {
			t.Errorf("resolve(%q) = %+v, %v; want %s %+v %v", tc.key, p, err, tc.tenant, tc.quotas, tc.err)
		}
	}
	if store.lookups != 2 { // the stored key and hl_unknown
		t.Fatalf("%d store lookups, want 2", store.lookups)
	}

	// Cached: a revoked key keeps working here until the TTL has passed…
	delete(store.keys, HashKey(stored))
	now = now.Add(4 * time.Second)
	if p, err := a.resolve(ctx, stored); err != nil || p.Tenant != "zeta" {
		t.Fatalf("within the TTL: %+v, %v", p, err)
	}
	// …and no longer after it.
	now = now.Add(1 * time.Second)
	if _, err := a.resolve(ctx, stored); !errors.Is(err, errUnauthenticated) {
		t.Fatalf("after the TTL: err = %v, want unauthenticated", err)
	}

	// forget drops it at once (the replica that revoked it).
	store.keys[HashKey(stored)] = &APIKey{KeyID: "K1", Tenant: "zeta", Hash: HashKey(stored)}
	if _, err := a.resolve(ctx, stored); err != nil {
		t.Fatal(err)
	}
	delete(store.keys, HashKey(stored))
	a.forget(HashKey(stored))
	if _, err := a.resolve(ctx, stored); !errors.Is(err, errUnauthenticated) {
		t.Fatalf("after forget: err = %v", err)
	}

	// TTL 0: every request asks the store.
	a.ttl = 0
	store.keys[HashKey(stored)] = &APIKey{KeyID: "K1", Tenant: "zeta", Hash: HashKey(stored)}
	before := store.lookups
	for range 3 {
		if _, err := a.resolve(ctx, stored); err != nil {
			t.Fatal(err)
		}
	}
	if store.lookups-before != 3 {
		t.Fatalf("%d lookups with TTL 0, want 3", store.lookups-before)
	}

	// A store that fails is "unavailable", not "unauthenticated"; static keys still work.
	store.fail = errors.New("nats down")
	if _, err := a.resolve(ctx, stored); !errors.Is(err, errUnavailable) {
		t.Fatalf("store failure: err = %v, want unavailable", err)
	}
	if p, err := a.resolve(ctx, "static-key-0123456789"); err != nil || p.Tenant != "acme" {
		t.Fatalf("static key with the store down: %+v, %v", p, err)
	}
}

func TestAdminToken(t *testing.T) {
	tok := newAdminToken(strings.Repeat("a", 32))
	for presented, want := range map[string]bool{
		strings.Repeat("a", 32): true,
		strings.Repeat("a", 31): false,
		strings.Repeat("a", 33): false,
		"":                      false,
	} {
		if got := tok.matches(presented); got != want {
			t.Errorf("matches(%q) = %v, want %v", presented, got, want)
		}
	}
	if (adminToken{}).matches("") {
		t.Error("an unset admin token matches the empty string")
	}
}
