package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookline/hookline/pkg/records"
	"github.com/hookline/hookline/pkg/templates"
	"github.com/hookline/hookline/pkg/tracker"
	"github.com/hookline/hookline/pkg/webhook"
)

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
	// Endpoint protection (api.md §7).
	MaxRateRequests      = 1_000_000
	MaxRateInterval      = 24 * time.Hour
	MaxPauseAfter        = 10000
	DefaultProbeInterval = time.Minute
	MaxProbeInterval     = 24 * time.Hour
)

// The template store and its types live in pkg/templates: the workers read
// signing secrets from it too.
type (
	// Template is a tenant's import template.
	Template = templates.Template
	// Webhook is a template's webhook destination.
	Webhook = templates.Webhook
	// Templates is the template store.
	Templates = templates.Store
)

// ErrTemplateNotFound: no template of that code for the tenant.
var ErrTemplateNotFound = templates.ErrNotFound

// ValidCode reports whether s can be a template code (or a tenant id).
func ValidCode(s string) bool { return templates.ValidCode(s) }

// NewTemplates creates or binds the templates bucket.
func NewTemplates(ctx context.Context, js jetstream.JetStream, replicas int) (*Templates, error) {
	return templates.NewStore(ctx, js, replicas)
}

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
	URL            string          `json:"url"`
	AuthHeaderName string          `json:"authHeaderName"`
	ChunkSize      *int            `json:"chunkSize"`
	RetryCount     *int            `json:"retryCount"`
	RetryInterval  *int64          `json:"retryInterval"`
	Timeout        *int64          `json:"timeout"`
	MaxInFlight    *int            `json:"maxInFlight"`
	SigningSecret  *string         `json:"signingSecret"`
	RecordFormat   json.RawMessage `json:"recordFormat"`
	RateLimit      *struct {
		Requests *int   `json:"requests"`
		Interval *int64 `json:"interval"`
	} `json:"rateLimit"`
	PauseAfterFailures *int    `json:"pauseAfterFailures"`
	ProbeInterval      *int64  `json:"probeInterval"`
	NotifyURL          *string `json:"notifyUrl"`
}

// Snapshot is the destination an upload keeps of its template's webhook,
// with the auth header value sealed.
func Snapshot(wh Webhook, sealedAuth string) tracker.Destination {
	d := tracker.Destination{
		URL: wh.URL, AuthHeaderName: wh.AuthHeaderName, SealedAuthHeaderValue: sealedAuth,
		SealedSigningSecret: wh.SealedSigningSecret, ChunkSize: wh.ChunkSize, RetryCount: wh.RetryCount,
		RetryIntervalMs: wh.RetryInterval.Milliseconds(), TimeoutMs: wh.Timeout.Milliseconds(), MaxInFlight: wh.MaxInFlight,
		PauseAfterFailures: wh.PauseAfterFailures, ProbeIntervalMs: wh.ProbeInterval.Milliseconds(), NotifyURL: wh.NotifyURL,
	}
	if rl := wh.RateLimit; rl != nil {
		d.RateLimitRequests, d.RateLimitIntervalMs = rl.Requests, rl.Interval.Milliseconds()
	}
	return d
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

// SigningSecretGrace is how long a replaced signing secret keeps signing
// alongside the new one.
const SigningSecretGrace = 24 * time.Hour

// GenerateSecret is the signingSecret value that asks hookline to generate one.
const GenerateSecret = "generate"

// Build validates a template input and fills the defaults. old is the
// template it replaces (nil for a new one): an absent signingSecret keeps
// old's secrets, a new one rotates (old's current secret keeps signing for
// SigningSecretGrace), "" removes them. When the input asks for a generated
// secret, its value is returned once as generated.
func (in *TemplateInput) Build(code, tenant string, old *Template, seal func(string) (string, error), now time.Time) (_ *Template, generated string, _ error) {
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
		return nil, "", errs
	}
	const f = "destination.webhook."
	t := &Template{Code: code, Tenant: tenant, Name: in.Name, Webhook: Webhook{
		URL: wh.URL, AuthHeaderName: wh.AuthHeaderName, ChunkSize: DefaultChunkSize,
		Timeout: DefaultTimeout, MaxInFlight: DefaultMaxInFlight,
	}}
	if old != nil {
		t.Webhook.SealedSigningSecret, t.Webhook.SigningSecretHint = old.Webhook.SealedSigningSecret, old.Webhook.SigningSecretHint
		t.Webhook.SealedPreviousSecret, t.Webhook.PreviousSecretExpiresAt = old.Webhook.SealedPreviousSecret, old.Webhook.PreviousSecretExpiresAt
	}
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
	if rl := wh.RateLimit; rl != nil {
		lim := &templates.RateLimit{}
		switch {
		case rl.Requests == nil:
			bad(f+"rateLimit.requests", "rateLimit.requests is required")
		case *rl.Requests < 1 || *rl.Requests > MaxRateRequests:
			bad(f+"rateLimit.requests", "rateLimit.requests must be between 1 and %d", MaxRateRequests)
		default:
			lim.Requests = *rl.Requests
		}
		switch {
		case rl.Interval == nil:
			bad(f+"rateLimit.interval", "rateLimit.interval is required (milliseconds)")
		case *rl.Interval < 1 || *rl.Interval > MaxRateInterval.Milliseconds():
			bad(f+"rateLimit.interval", "rateLimit.interval must be between 1 and %d milliseconds", MaxRateInterval.Milliseconds())
		default:
			lim.Interval = time.Duration(*rl.Interval) * time.Millisecond
		}
		t.Webhook.RateLimit = lim
	}
	if n := wh.PauseAfterFailures; n != nil {
		if *n < 0 || *n > MaxPauseAfter {
			bad(f+"pauseAfterFailures", "pauseAfterFailures must be between 0 and %d", MaxPauseAfter)
		}
		t.Webhook.PauseAfterFailures = *n
	}
	t.Webhook.ProbeInterval = DefaultProbeInterval
	if p := wh.ProbeInterval; p != nil {
		if *p < 0 || *p > MaxProbeInterval.Milliseconds() {
			bad(f+"probeInterval", "probeInterval must be between 0 and %d milliseconds (0: no probes)", MaxProbeInterval.Milliseconds())
		}
		t.Webhook.ProbeInterval = time.Duration(*p) * time.Millisecond
	}
	if u := wh.NotifyURL; u != nil && *u != "" {
		if len(*u) > 2048 {
			bad(f+"notifyUrl", "notifyUrl must be at most 2048 characters")
		} else if err := webhook.ValidateURL(*u); err != nil {
			bad(f+"notifyUrl", "notifyUrl: %v", err)
		}
		t.Webhook.NotifyURL = *u
	}
	if rf := bytes.TrimSpace(wh.RecordFormat); len(rf) > 0 && string(rf) != "null" {
		if _, err := records.CompilePlan(rf); err != nil {
			var pe *records.PlanError
			field := f + "recordFormat"
			if errors.As(err, &pe) && pe.Path != "" {
				field += "." + pe.Path
			}
			bad(field, "%v", err)
		} else {
			var c bytes.Buffer
			_ = json.Compact(&c, rf)
			t.Webhook.RecordFormat = c.Bytes()
		}
	}
	if wh.SigningSecret != nil {
		secret := *wh.SigningSecret
		switch {
		case secret == "":
			t.Webhook.SealedSigningSecret, t.Webhook.SigningSecretHint = "", ""
			t.Webhook.SealedPreviousSecret, t.Webhook.PreviousSecretExpiresAt = "", time.Time{}
		case secret == GenerateSecret:
			var err error
			if secret, err = webhook.NewSecret(); err != nil {
				return nil, "", err
			}
			generated = secret
		case !strings.HasPrefix(secret, "whsec_") || len(secret) < 6+16:
			bad(f+"signingSecret", `signingSecret must look like whsec_<base64>, at least 16 characters after the prefix, or be "generate"`)
			secret = ""
		}
		if secret != "" {
			sealed, err := seal(secret)
			if err != nil {
				return nil, "", err
			}
			if t.Webhook.SealedSigningSecret != "" {
				t.Webhook.SealedPreviousSecret = t.Webhook.SealedSigningSecret
				t.Webhook.PreviousSecretExpiresAt = now.Add(SigningSecretGrace)
			}
			t.Webhook.SealedSigningSecret, t.Webhook.SigningSecretHint = sealed, secret[len(secret)-4:]
		}
	}
	if len(errs) > 0 {
		return nil, "", errs
	}
	return t, generated, nil
}
