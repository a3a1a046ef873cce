package ingest

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

	"github.com/hookline/hookline/pkg/webhook"
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
	SigningSecretHint   string        `json:"signingSecretHint,omitempty"` // last 4 characters, shown masked
}

// Limits and defaults of a template's webhook (api.md §3).
const (
	DefaultChunkSize   = 100
	MaxChunkSize       = 10000
	MaxRetryCount      = 100
	MaxRetryInterval   = 24 * time.Hour
	DefaultTimeout     = 30 * time.Second
	MaxTimeout         = 120 * time.Second
	DefaultMaxInFlight = 1
	MaxInFlight        = 64
)

// ErrTemplateNotFound: no template of that code for the tenant.
var ErrTemplateNotFound = errors.New("template not found")

var codePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidCode reports whether s can be a template code (or a tenant id).
func ValidCode(s string) bool { return codePattern.MatchString(s) }

// TemplateInput is the body of PUT /v1/templates/{code}. Pointers tell an
// absent field (take the default) from a zero one (an error where zero is
// out of range).
type TemplateInput struct {
	Name        string `json:"name"`
	Destination struct {
		Webhook *WebhookInput `json:"webhook"`
	} `json:"destination"`
}

// WebhookInput is the "destination.webhook" object of a template.
type WebhookInput struct {
	URL            string  `json:"url"`
	AuthHeaderName string  `json:"authHeaderName"`
	ChunkSize      *int    `json:"chunkSize"`
	RetryCount     *int    `json:"retryCount"`
	RetryInterval  *int64  `json:"retryInterval"`
	Timeout        *int64  `json:"timeout"`
	MaxInFlight    *int    `json:"maxInFlight"`
	SigningSecret  *string `json:"signingSecret"`
}

// ValidateHeaderName checks an auth header name: an HTTP token that hookline
// does not set itself. "" (no auth header) is valid.
func ValidateHeaderName(name string) error {
	if name == "" {
		return nil
	}
	if len(name) > 256 {
		return errors.New("authHeaderName must be at most 256 characters")
	}
	return webhook.ValidateAuthHeaderName(name)
}

// FieldError is a bad field of a request.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// FieldErrors are every bad field of a request, in the order found.
type FieldErrors []*FieldError

func (e FieldErrors) Error() string {
	msgs := make([]string, len(e))
	for i, fe := range e {
		msgs[i] = fe.Error()
	}
	return strings.Join(msgs, "; ")
}

// Build validates a template input and fills the defaults. secretSealed is
// the sealed signing secret to keep when the input does not mention one.
func (in *TemplateInput) Build(code, tenant string, seal func(string) (string, error), keepSecret, keepHint string) (*Template, error) {
	var errs FieldErrors
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Message: fmt.Sprintf(format, a...)})
	}
	if !ValidCode(code) {
		bad("code", "template code must be 1 to 64 letters, digits, '-' or '_'")
	}
	if len(in.Name) > 200 {
		bad("name", "name must be at most 200 characters")
	}
	wh := in.Destination.Webhook
	if wh == nil {
		bad("destination.webhook", "destination.webhook is required")
		return nil, errs
	}
	const f = "destination.webhook."
	t := &Template{Code: code, Tenant: tenant, Name: in.Name, Webhook: Webhook{
		URL: wh.URL, AuthHeaderName: wh.AuthHeaderName, ChunkSize: DefaultChunkSize,
		Timeout: DefaultTimeout, MaxInFlight: DefaultMaxInFlight,
		SealedSigningSecret: keepSecret, SigningSecretHint: keepHint,
	}}
	if wh.URL == "" {
		bad(f+"url", "url is required")
	} else if len(wh.URL) > 2048 {
		bad(f+"url", "url must be at most 2048 characters")
	} else if err := webhook.ValidateURL(wh.URL); err != nil {
		bad(f+"url", "%v", err)
	}
	if err := ValidateHeaderName(wh.AuthHeaderName); err != nil {
		bad(f+"authHeaderName", "%v", err)
	}
	if wh.ChunkSize != nil {
		if *wh.ChunkSize < 1 || *wh.ChunkSize > MaxChunkSize {
			bad(f+"chunkSize", "chunkSize must be between 1 and %d", MaxChunkSize)
		}
		t.Webhook.ChunkSize = *wh.ChunkSize
	}
	if wh.RetryCount != nil {
		if *wh.RetryCount < 0 || *wh.RetryCount > MaxRetryCount {
			bad(f+"retryCount", "retryCount must be between 0 and %d", MaxRetryCount)
		}
		t.Webhook.RetryCount = *wh.RetryCount
	}
	if wh.RetryInterval != nil {
		if *wh.RetryInterval < 0 || *wh.RetryInterval > MaxRetryInterval.Milliseconds() {
			bad(f+"retryInterval", "retryInterval must be between 0 and %d milliseconds", MaxRetryInterval.Milliseconds())
		}
		t.Webhook.RetryInterval = time.Duration(*wh.RetryInterval) * time.Millisecond
	}
	if wh.Timeout != nil {
		if *wh.Timeout < 1 || *wh.Timeout > MaxTimeout.Milliseconds() {
			bad(f+"timeout", "timeout must be between 1 and %d milliseconds", MaxTimeout.Milliseconds())
		}
		t.Webhook.Timeout = time.Duration(*wh.Timeout) * time.Millisecond
	}
	if wh.MaxInFlight != nil {
		if *wh.MaxInFlight < 1 || *wh.MaxInFlight > MaxInFlight {
			bad(f+"maxInFlight", "maxInFlight must be between 1 and %d", MaxInFlight)
		}
		t.Webhook.MaxInFlight = *wh.MaxInFlight
	}
	if wh.SigningSecret != nil {
		switch s := *wh.SigningSecret; {
		case s == "":
			t.Webhook.SealedSigningSecret, t.Webhook.SigningSecretHint = "", ""
		case !strings.HasPrefix(s, "whsec_") || len(s) < 6+16:
			bad(f+"signingSecret", "signingSecret must look like whsec_<base64>, at least 16 characters after the prefix")
		default:
			sealed, err := seal(s)
			if err != nil {
				return nil, err
			}
			t.Webhook.SealedSigningSecret, t.Webhook.SigningSecretHint = sealed, s[len(s)-4:]
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// Templates stores templates in a JetStream key-value bucket: replicated like
// the streams, so configuration survives restarts and the loss of a server.
type Templates struct {
	kv jetstream.KeyValue
}

// TemplatesBucket is the key-value bucket of templates.
const TemplatesBucket = "hookline_templates"

// NewTemplates creates or binds the templates bucket.
func NewTemplates(ctx context.Context, js jetstream.JetStream, replicas int) (*Templates, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: TemplatesBucket, Storage: jetstream.FileStorage, Replicas: replicas, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("templates bucket: %w", err)
	}
	return &Templates{kv: kv}, nil
}

func templateKey(tenant, code string) string { return tenant + "." + code }

// Get reads a tenant's template.
func (s *Templates) Get(ctx context.Context, tenant, code string) (*Template, error) {
	if !ValidCode(code) {
		return nil, fmt.Errorf("template %q: %w", code, ErrTemplateNotFound)
	}
	e, err := s.kv.Get(ctx, templateKey(tenant, code))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("template %q: %w", code, ErrTemplateNotFound)
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
func (s *Templates) Put(ctx context.Context, t *Template) error {
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	_, err = s.kv.Put(ctx, templateKey(t.Tenant, t.Code), data)
	return err
}

// Delete removes a template.
func (s *Templates) Delete(ctx context.Context, tenant, code string) error {
	if _, err := s.Get(ctx, tenant, code); err != nil {
		return err
	}
	return s.kv.Purge(ctx, templateKey(tenant, code))
}

// List returns a tenant's templates, by code.
func (s *Templates) List(ctx context.Context, tenant string) ([]*Template, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, tenant+".*")
	if err != nil {
		return nil, err
	}
	var out []*Template
	for key := range lister.Keys() {
		t, err := s.Get(ctx, tenant, strings.TrimPrefix(key, tenant+"."))
		if errors.Is(err, ErrTemplateNotFound) {
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
