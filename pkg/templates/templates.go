// Package templates stores tenants' import templates (where and how their
// uploads are delivered) in a JetStream key-value bucket, replicated like the
// streams, so configuration survives restarts and the loss of a server.
package templates

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Template is a tenant's import template: where and how its uploads are delivered.
type Template struct {
	Code      string    `json:"code"`
	Tenant    string    `json:"tenant"`
	Name      string    `json:"name"`
	Webhook   Webhook   `json:"webhook"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Webhook is a template's webhook destination.
type Webhook struct {
	URL                 string        `json:"url"`
	AuthHeaderName      string        `json:"authHeaderName,omitempty"`
	ChunkSize           int           `json:"chunkSize"`
	RetryCount          int           `json:"retryCount"`
	RetryInterval       time.Duration `json:"retryInterval"`
	Timeout             time.Duration `json:"timeout"`
	MaxInFlight         int           `json:"maxInFlight"`
	SealedSigningSecret string        `json:"signingSecret,omitempty"`
	// RecordFormat shapes each record (api.md §6); empty keeps the file's.
	RecordFormat      json.RawMessage `json:"recordFormat,omitempty"`
	SigningSecretHint string          `json:"signingSecretHint,omitempty"` // last 4 characters, shown masked
	// After a rotation the previous secret still signs, alongside the new
	// one, until PreviousSecretExpiresAt, so receivers can switch at leisure.
	SealedPreviousSecret    string    `json:"previousSigningSecret,omitempty"`
	PreviousSecretExpiresAt time.Time `json:"previousSigningSecretExpiresAt,omitzero"`
	// Endpoint protection (api.md §7).
	RateLimit          *RateLimit    `json:"rateLimit,omitempty"`
	PauseAfterFailures int           `json:"pauseAfterFailures,omitempty"`
	ProbeInterval      time.Duration `json:"probeInterval,omitempty"`
	NotifyURL          string        `json:"notifyUrl,omitempty"`
}

// RateLimit is at most Requests requests in any window of Interval.
type RateLimit struct {
	Requests int           `json:"requests"`
	Interval time.Duration `json:"interval"`
}

// SigningSecrets returns the sealed secrets that sign a request at now: the
// current one and, during a rotation's grace period, the previous one.
func (w Webhook) SigningSecrets(now time.Time) (current, previous string) {
	if w.SealedPreviousSecret != "" && now.Before(w.PreviousSecretExpiresAt) {
		previous = w.SealedPreviousSecret
	}
	return w.SealedSigningSecret, previous
}

// ErrNotFound: no template of that code for the tenant.
var ErrNotFound = errors.New("template not found")

var codePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidCode reports whether s can be a template code (or a tenant id).
func ValidCode(s string) bool { return codePattern.MatchString(s) }

// Store keeps templates in a JetStream key-value bucket: replicated like
// the streams, so configuration survives restarts and the loss of a server.
type Store struct {
	kv jetstream.KeyValue
}

// Bucket is the key-value bucket of templates.
const Bucket = "hookline_templates"

// NewStore creates or binds the templates bucket.
func NewStore(ctx context.Context, js jetstream.JetStream, replicas int) (*Store, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Storage: jetstream.FileStorage, Replicas: replicas, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("templates bucket: %w", err)
	}
	return &Store{kv: kv}, nil
}

func templateKey(tenant, code string) string { return tenant + "." + code }

// Get reads a tenant's template.
func (s *Store) Get(ctx context.Context, tenant, code string) (*Template, error) {
	if !ValidCode(code) {
		return nil, fmt.Errorf("template %q: %w", code, ErrNotFound)
	}
	e, err := s.kv.Get(ctx, templateKey(tenant, code))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("template %q: %w", code, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var t Template
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return nil, fmt.Errorf("template %q: %w", code, err)
	}
	return &t, nil
}

// Put stores a template.
func (s *Store) Put(ctx context.Context, t *Template) error {
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	_, err = s.kv.Put(ctx, templateKey(t.Tenant, t.Code), data)
	return err
}

// Delete removes a template.
func (s *Store) Delete(ctx context.Context, tenant, code string) error {
	if _, err := s.Get(ctx, tenant, code); err != nil {
		return err
	}
	return s.kv.Purge(ctx, templateKey(tenant, code))
}

// List returns a tenant's templates, by code.
func (s *Store) List(ctx context.Context, tenant string) ([]*Template, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, tenant+".*")
	if err != nil {
		return nil, err
	}
	var out []*Template
	for key := range lister.Keys() {
		t, err := s.Get(ctx, tenant, strings.TrimPrefix(key, tenant+"."))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Code < out[j].Code })
	return out, nil
}

// Page returns up to limit of a tenant's templates whose code sorts after
// after, by code, and whether more follow. The bucket's keys are listed
// (codes only); only the page's templates are read.
func (s *Store) Page(ctx context.Context, tenant, after string, limit int) ([]*Template, bool, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, tenant+".*")
	if err != nil {
		return nil, false, err
	}
	var codes []string
	for key := range lister.Keys() {
		if code := strings.TrimPrefix(key, tenant+"."); code > after {
			codes = append(codes, code)
		}
	}
	sort.Strings(codes)
	more := len(codes) > limit
	codes = codes[:min(limit, len(codes))]
	out := make([]*Template, 0, len(codes))
	for _, code := range codes {
		t, err := s.Get(ctx, tenant, code)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, t)
	}
	return out, more, nil
}
