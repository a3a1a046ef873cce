package ingest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
)

// Tenant is a customer of a multi-tenant deployment: its templates and uploads
// are its own, its API keys are stored apart (as hashes).
type Tenant struct {
	ID        string        `json:"id"`
	Name      string        `json:"name"`
	Quotas    QuotaSettings `json:"quotas"`
	CreatedAt time.Time     `json:"createdAt"`
}

// QuotaSettings are a tenant's own quotas. A nil field takes the default of
// the deployment (HOOKLINE_QUOTA_*); 0 means no limit. DeliveryShare is a
// weight, not a limit: nil means 1, like every tenant without one.
type QuotaSettings struct {
	MaxRecords           *int `json:"maxRecords,omitempty"`
	MaxConcurrentUploads *int `json:"maxConcurrentUploads,omitempty"`
	ImportsPerMinute     *int `json:"importsPerMinute,omitempty"`
	DeliveryShare        *int `json:"deliveryShare,omitempty"`
}

// MaxDeliveryShare bounds quotas.deliveryShare (1 to MaxDeliveryShare).
const MaxDeliveryShare = 100

// Apply returns the quotas in force: the tenant's own, the defaults for the rest.
func (s QuotaSettings) Apply(defaults Quotas) Quotas {
	q := defaults
	if s.MaxRecords != nil {
		q.MaxRecords = *s.MaxRecords
	}
	if s.MaxConcurrentUploads != nil {
		q.MaxConcurrentUploads = *s.MaxConcurrentUploads
	}
	if s.ImportsPerMinute != nil {
		q.ImportsPerMinute = *s.ImportsPerMinute
	}
	if s.DeliveryShare != nil {
		q.DeliveryShare = *s.DeliveryShare
	}
	q.DeliveryShare = max(q.DeliveryShare, 1)
	return q
}

// Validate reports every negative quota and a delivery share out of its
// range, naming the field.
func (s QuotaSettings) Validate() FieldErrors {
	var errs FieldErrors
	for _, f := range []struct {
		name string
		v    *int
	}{
		{"maxRecords", s.MaxRecords},
		{"maxConcurrentUploads", s.MaxConcurrentUploads},
		{"importsPerMinute", s.ImportsPerMinute},
	} {
		if f.v != nil && *f.v < 0 {
			errs = append(errs, &FieldError{Field: "quotas." + f.name, Message: "quotas." + f.name + " must be 0 (no limit) or more"})
		}
	}
	if v := s.DeliveryShare; v != nil && (*v < 1 || *v > MaxDeliveryShare) {
		errs = append(errs, &FieldError{Field: "quotas.deliveryShare",
			Message: fmt.Sprintf("quotas.deliveryShare must be a whole number from 1 to %d: the tenant's weight when workers share their delivery slots (default 1)", MaxDeliveryShare)})
	}
	return errs
}

// QuotaChanges are the quotas a PATCH /v1/admin/tenants/{id} names. A quota
// it names takes the given value, or the deployment's default when the value
// is null; the quotas it leaves out keep theirs.
type QuotaChanges struct {
	MaxRecords           QuotaChange `json:"maxRecords"`
	MaxConcurrentUploads QuotaChange `json:"maxConcurrentUploads"`
	ImportsPerMinute     QuotaChange `json:"importsPerMinute"`
	DeliveryShare        QuotaChange `json:"deliveryShare"`
}

// QuotaChange is one quota of QuotaChanges: Set when the request names it,
// Value nil when it names it with null (back to the default).
type QuotaChange struct {
	Set   bool
	Value *int
}

// UnmarshalJSON is called for every quota the request names, null included.
func (c *QuotaChange) UnmarshalJSON(b []byte) error {
	c.Set, c.Value = true, nil
	if string(b) == "null" {
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return err // a *json.UnmarshalTypeError: the decoder names the field
	}
	c.Value = &n
	return nil
}

// Apply returns s with the changes made.
func (c QuotaChanges) Apply(s QuotaSettings) QuotaSettings {
	for _, f := range []struct {
		c   QuotaChange
		dst **int
	}{
		{c.MaxRecords, &s.MaxRecords},
		{c.MaxConcurrentUploads, &s.MaxConcurrentUploads},
		{c.ImportsPerMinute, &s.ImportsPerMinute},
		{c.DeliveryShare, &s.DeliveryShare},
	} {
		if f.c.Set {
			*f.dst = f.c.Value
		}
	}
	return s
}

// APIKey is the stored record of a tenant's API key. The key itself is never
// stored: only its SHA-256, which is also the record's key in the bucket.
type APIKey struct {
	KeyID     string     `json:"keyId"`
	Tenant    string     `json:"tenant"`
	Hash      string     `json:"hash"`   // hex(sha256(key))
	Prefix    string     `json:"prefix"` // "hl_abcd…": enough to recognise a key, never enough to use it
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

// Errors of the tenant store.
var (
	ErrTenantNotFound = errors.New("tenant not found")
	ErrTenantExists   = errors.New("tenant already exists")
	ErrAPIKeyNotFound = errors.New("API key not found")
)

// KeyPrefix starts every API key hookline generates.
const KeyPrefix = "hl_"

// GenerateKey returns a new API key: "hl_" and 32 random bytes in unpadded
// base64url (46 characters in all).
func GenerateKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// HashKey is the hex SHA-256 of an API key: how a key is stored and looked up.
// The keys are 256-bit random values, so a fast unsalted hash is enough: there
// is nothing to guess from it.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// keyHint is what the API shows of a key after creating it.
func keyHint(key string) string {
	const n = len(KeyPrefix) + 4
	if len(key) < n {
		return key
	}
	return key[:n] + "…"
}

// Tenants stores tenants and their API keys in a JetStream key-value bucket,
// replicated like the streams. Entries:
//
//	tenants.<id>               Tenant
//	keys.<hex sha256 of key>   APIKey: one get authenticates a key
//	tenantkeys.<id>.<keyId>    APIKey: lists a tenant's keys, finds the hash to revoke
type Tenants struct {
	kv  jetstream.KeyValue
	now func() time.Time
}

// TenantsBucket is the key-value bucket of tenants and API keys.
const TenantsBucket = "hookline_tenants"

// NewTenants creates or binds the tenants bucket.
func NewTenants(ctx context.Context, js jetstream.JetStream, replicas int) (*Tenants, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: TenantsBucket, Storage: jetstream.FileStorage, Replicas: replicas, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("tenants bucket: %w", err)
	}
	return &Tenants{kv: kv, now: func() time.Time { return time.Now().UTC() }}, nil
}

func tenantEntry(id string) string               { return "tenants." + id }
func keyEntry(hash string) string                { return "keys." + hash }
func tenantKeyEntry(tenant, keyID string) string { return "tenantkeys." + tenant + "." + keyID }

// validKeyID: ULIDs, or anything else safe as a bucket key.
func validKeyID(s string) bool { return ValidCode(s) }

func validHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// CreateTenant stores a new tenant; ErrTenantExists if the id is taken.
func (s *Tenants) CreateTenant(ctx context.Context, t *Tenant) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.now()
	}
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	_, err = s.kv.Create(ctx, tenantEntry(t.ID), data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("tenant %s: %w", t.ID, ErrTenantExists)
	}
	return err
}

// Tenant reads a tenant.
func (s *Tenants) Tenant(ctx context.Context, id string) (*Tenant, error) {
	if !ValidCode(id) {
		return nil, fmt.Errorf("tenant %q: %w", id, ErrTenantNotFound)
	}
	var t Tenant
	if err := s.get(ctx, tenantEntry(id), &t); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("tenant %s: %w", id, ErrTenantNotFound)
		}
		return nil, err
	}
	return &t, nil
}

// ListTenants returns every tenant, by id.
func (s *Tenants) ListTenants(ctx context.Context) ([]*Tenant, error) {
	ids, err := s.keys(ctx, "tenants.*")
	if err != nil {
		return nil, err
	}
	out := []*Tenant{}
	for _, k := range ids {
		t, err := s.Tenant(ctx, strings.TrimPrefix(k, "tenants."))
		if errors.Is(err, ErrTenantNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// maxUpdateTries bounds how often UpdateTenant reads again after another
// writer changed the tenant between its read and its write.
const maxUpdateTries = 10

// UpdateTenant changes a stored tenant atomically: it reads the tenant, lets
// change modify it, and writes it back only if nobody wrote it in between
// (else it reads and changes it again). When change returns an error nothing
// is written. It returns the tenant as stored.
func (s *Tenants) UpdateTenant(ctx context.Context, id string, change func(*Tenant) error) (*Tenant, error) {
	if !ValidCode(id) {
		return nil, fmt.Errorf("tenant %q: %w", id, ErrTenantNotFound)
	}
	for range maxUpdateTries {
		e, err := s.kv.Get(ctx, tenantEntry(id))
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, fmt.Errorf("tenant %s: %w", id, ErrTenantNotFound)
		}
		if err != nil {
			return nil, err
		}
		var t Tenant
		if err := json.Unmarshal(e.Value(), &t); err != nil {
			return nil, fmt.Errorf("%s: %w", tenantEntry(id), err)
		}
		if err := change(&t); err != nil {
			return nil, err
		}
		data, err := json.Marshal(&t)
		if err != nil {
			return nil, err
		}
		_, err = s.kv.Update(ctx, tenantEntry(id), data, e.Revision())
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &t, nil
	}
	return nil, fmt.Errorf("tenant %s: changed by others %d times while being updated", id, maxUpdateTries)
}

// CreateKey makes a new API key for a tenant and stores its hash. The key is
// returned once, here, and never stored.
func (s *Tenants) CreateKey(ctx context.Context, tenant string) (key string, rec *APIKey, err error) {
	if _, err := s.Tenant(ctx, tenant); err != nil {
		return "", nil, err
	}
	if key, err = GenerateKey(); err != nil {
		return "", nil, err
	}
	rec = &APIKey{KeyID: ulid.Make().String(), Tenant: tenant, Hash: HashKey(key), Prefix: keyHint(key), CreatedAt: s.now()}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", nil, err
	}
	// The tenant's index first: a key that works is always listed, so it can be revoked.
	if _, err := s.kv.Create(ctx, tenantKeyEntry(tenant, rec.KeyID), data); err != nil {
		return "", nil, err
	}
	if _, err := s.kv.Create(ctx, keyEntry(rec.Hash), data); err != nil {
		_ = s.kv.Purge(context.WithoutCancel(ctx), tenantKeyEntry(tenant, rec.KeyID))
		return "", nil, err
	}
	return key, rec, nil
}

// LookupKey finds a live key by the hex SHA-256 of the key: one get.
func (s *Tenants) LookupKey(ctx context.Context, hash string) (*APIKey, error) {
	if !validHash(hash) {
		return nil, ErrAPIKeyNotFound
	}
	var k APIKey
	if err := s.get(ctx, keyEntry(hash), &k); err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, ErrAPIKeyNotFound
		}
		return nil, err
	}
	if k.RevokedAt != nil {
		return nil, ErrAPIKeyNotFound
	}
	return &k, nil
}

// ListKeys returns a tenant's keys (revoked ones too), oldest first. They
// carry no key material.
func (s *Tenants) ListKeys(ctx context.Context, tenant string) ([]*APIKey, error) {
	if _, err := s.Tenant(ctx, tenant); err != nil {
		return nil, err
	}
	names, err := s.keys(ctx, "tenantkeys."+tenant+".*")
	if err != nil {
		return nil, err
	}
	out := []*APIKey{}
	for _, n := range names {
		var k APIKey
		err := s.get(ctx, n, &k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, &k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].KeyID < out[j].KeyID })
	return out, nil
}

// RevokeKey makes a key stop working: its lookup entry is removed, and its
// listing entry keeps the time of revocation. Revoking a revoked key again
// succeeds. It returns the revoked key's record.
func (s *Tenants) RevokeKey(ctx context.Context, tenant, keyID string) (*APIKey, error) {
	if _, err := s.Tenant(ctx, tenant); err != nil {
		return nil, err
	}
	if !validKeyID(keyID) {
		return nil, fmt.Errorf("key %q: %w", keyID, ErrAPIKeyNotFound)
	}
	var k APIKey
	e, err := s.kv.Get(ctx, tenantKeyEntry(tenant, keyID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("key %s of tenant %s: %w", keyID, tenant, ErrAPIKeyNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(e.Value(), &k); err != nil {
		return nil, fmt.Errorf("key %s: %w", keyID, err)
	}
	// Lookup entry first: from here on the key authenticates nothing.
	if err := s.kv.Purge(ctx, keyEntry(k.Hash)); err != nil {
		return nil, err
	}
	if k.RevokedAt == nil {
		now := s.now()
		k.RevokedAt = &now
		data, err := json.Marshal(&k)
		if err != nil {
			return nil, err
		}
		if _, err := s.kv.Put(ctx, tenantKeyEntry(tenant, keyID), data); err != nil {
			return nil, err
		}
	}
	return &k, nil
}

func (s *Tenants) get(ctx context.Context, key string, v any) error {
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	return nil
}

func (s *Tenants) keys(ctx context.Context, filter string) ([]string, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range lister.Keys() {
		out = append(out, k)
	}
	return out, nil
}
