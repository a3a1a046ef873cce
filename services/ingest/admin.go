package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
)

// The admin API manages tenants and their API keys. It authenticates with
// HOOKLINE_ADMIN_TOKEN; without one it answers 404, as if it did not exist.

// registerAdmin adds the /v1/admin routes to mux.
func (a *API) registerAdmin(mux Mux) {
	route := func(pattern string, h http.HandlerFunc) {
		mux.Handle(pattern, a.metrics.instrument(pattern, a.adminAuth(h)))
	}
	route("POST /v1/admin/tenants", a.createTenant)
	route("GET /v1/admin/tenants", a.listTenants)
	route("GET /v1/admin/tenants/{id}", a.getTenant)
	route("PATCH /v1/admin/tenants/{id}", a.updateTenant)
	route("POST /v1/admin/tenants/{id}/keys", a.createKey)
	route("GET /v1/admin/tenants/{id}/keys", a.listKeys)
	route("DELETE /v1/admin/tenants/{id}/keys/{keyId}", a.revokeKey)
}

func (a *API) adminAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.admin.set || a.tenants == nil {
			writeError(w, a.log, &APIError{Status: http.StatusNotFound, Code: "not_found",
				Message: "no such endpoint: " + r.Method + " " + r.URL.Path + " (the admin API is off: HOOKLINE_ADMIN_TOKEN is not set)"})
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || !a.admin.matches(strings.TrimSpace(token)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hookline-admin"`)
			writeError(w, a.log, &APIError{Status: http.StatusUnauthorized, Code: "unauthenticated",
				Message: "missing or wrong admin token: send Authorization: Bearer <HOOKLINE_ADMIN_TOKEN>"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// adminStoreErr marks an unexpected failure of the tenant store as "unavailable";
// the errors of the request itself pass as they are.
func adminStoreErr(err error) error {
	var fields FieldErrors
	var api *APIError
	if err == nil || errors.Is(err, ErrTenantNotFound) || errors.Is(err, ErrTenantExists) || errors.Is(err, ErrAPIKeyNotFound) ||
		errors.As(err, &fields) || errors.As(err, &api) {
		return err
	}
	return fmt.Errorf("%w: %w", errUnavailable, err)
}

// TenantInput is the body of POST /v1/admin/tenants.
type TenantInput struct {
	ID     string        `json:"id"`
	Name   string        `json:"name"`
	Quotas QuotaSettings `json:"quotas"`
}

// Build validates a tenant input, reporting every bad field.
func (in *TenantInput) Build() (*Tenant, error) {
	var errs FieldErrors
	switch {
	case in.ID == "":
		errs = append(errs, &FieldError{Field: "id", Message: "id is required: 1 to 64 letters, digits, '-' or '_'"})
	case !ValidCode(in.ID):
		errs = append(errs, &FieldError{Field: "id", Message: "id must be 1 to 64 letters, digits, '-' or '_'"})
	}
	if len(in.Name) > 200 {
		errs = append(errs, &FieldError{Field: "name", Message: "name must be at most 200 characters"})
	}
	errs = append(errs, in.Quotas.Validate()...)
	if len(errs) > 0 {
		return nil, errs
	}
	name := in.Name
	if name == "" {
		name = in.ID
	}
	return &Tenant{ID: in.ID, Name: name, Quotas: in.Quotas}, nil
}

type tenantView struct {
	ID              string        `json:"id"`
	Name            string        `json:"name"`
	Quotas          QuotaSettings `json:"quotas"`          // the tenant's own
	EffectiveQuotas Quotas        `json:"effectiveQuotas"` // in force: its own, else the defaults
	CreatedAt       time.Time     `json:"createdAt"`
}

func (a *API) viewTenant(t *Tenant) tenantView {
	return tenantView{ID: t.ID, Name: t.Name, Quotas: t.Quotas, EffectiveQuotas: t.Quotas.Apply(a.auth.defaults), CreatedAt: t.CreatedAt}
}

type keyView struct {
	KeyID     string     `json:"keyId"`
	Tenant    string     `json:"tenant"`
	Key       string     `json:"key,omitempty"` // only in the answer that creates it
	Prefix    string     `json:"prefix"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"`
}

func viewKey(k *APIKey) keyView {
	return keyView{KeyID: k.KeyID, Tenant: k.Tenant, Prefix: k.Prefix, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}

func (a *API) createTenant(w http.ResponseWriter, r *http.Request) {
	var in TenantInput
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, a.log, jsonError(err))
		return
	}
	t, err := in.Build()
	if err != nil {
		writeError(w, a.log, err)
		return
	}
	if a.auth.isStatic(t.ID) {
		writeError(w, a.log, &APIError{Status: http.StatusConflict, Code: "conflict", Field: "id",
			Message: fmt.Sprintf("tenant %s is configured in HOOKLINE_API_KEYS: choose another id, or remove it from there first", t.ID)})
		return
	}
	if err := a.tenants.CreateTenant(r.Context(), t); err != nil {
		writeError(w, a.log, adminStoreErr(err))
		return
	}
	a.log.Info("tenant created", zap.String("tenant", t.ID))
	writeJSON(w, http.StatusCreated, a.viewTenant(t))
}

func (a *API) listTenants(w http.ResponseWriter, r *http.Request) {
	ts, err := a.tenants.ListTenants(r.Context())
	if err != nil {
		writeError(w, a.log, adminStoreErr(err))
		return
	}
	views := make([]tenantView, 0, len(ts))
	for _, t := range ts {
		views = append(views, a.viewTenant(t))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tenants": views})
}

func (a *API) getTenant(w http.ResponseWriter, r *http.Request) {
	t, err := a.tenants.Tenant(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, a.log, adminStoreErr(err))
		return
	}
	writeJSON(w, http.StatusOK, a.viewTenant(t))
}

// TenantPatch is the body of PATCH /v1/admin/tenants/{id}.
type TenantPatch struct {
	Quotas *QuotaChanges `json:"quotas"`
}

func (a *API) updateTenant(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var in TenantPatch
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, a.log, jsonError(err))
		return
	}
	if in.Quotas == nil {
		writeError(w, a.log, badRequest("quotas", `quotas is required: the quotas to change, e.g. {"quotas": {"deliveryShare": 3}} (null returns one to the default)`))
		return
	}
	var before QuotaSettings
	t, err := a.tenants.UpdateTenant(r.Context(), id, func(t *Tenant) error {
		before = t.Quotas
		q := in.Quotas.Apply(t.Quotas)
		if errs := q.Validate(); len(errs) > 0 {
			return errs
		}
		t.Quotas = q
		return nil
	})
	if errors.Is(err, ErrTenantNotFound) && a.auth.isStatic(id) {
		err = &APIError{Status: http.StatusNotFound, Code: "not_found", Field: "tenant",
			Message: fmt.Sprintf("tenant %s is configured in HOOKLINE_API_KEYS, not stored: it has the default quotas (HOOKLINE_QUOTA_*)", id)}
	}
	if err != nil {
		writeError(w, a.log, adminStoreErr(err))
		return
	}
	// New imports on this replica see the new quotas at once; other
	// replicas within their key cache's TTL.
	a.auth.forgetTenant(t.ID)
	a.log.Info("tenant quotas changed", zap.String("tenant", t.ID), zap.Any("before", before), zap.Any("after", t.Quotas))
	writeJSON(w, http.StatusOK, a.viewTenant(t))
}

func (a *API) createKey(w http.ResponseWriter, r *http.Request) {
	key, rec, err := a.tenants.CreateKey(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, a.log, adminStoreErr(err))
		return
	}
	a.log.Info("API key created", zap.String("tenant", rec.Tenant), zap.String("keyId", rec.KeyID))
	v := viewKey(rec)
	v.Key = key
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, v)
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	ks, err := a.tenants.ListKeys(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, a.log, adminStoreErr(err))
		return
	}
	views := make([]keyView, 0, len(ks))
	for _, k := range ks {
		views = append(views, viewKey(k))
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": views})
}

func (a *API) revokeKey(w http.ResponseWriter, r *http.Request) {
	k, err := a.tenants.RevokeKey(r.Context(), r.PathValue("id"), r.PathValue("keyId"))
	if err != nil {
		writeError(w, a.log, adminStoreErr(err))
		return
	}
	a.auth.forget(k.Hash)
	a.log.Info("API key revoked", zap.String("tenant", k.Tenant), zap.String("keyId", k.KeyID))
	w.WriteHeader(http.StatusNoContent)
}

// WithTenants makes the API accept the keys stored in ts (besides those of
// HOOKLINE_API_KEYS) and serve the admin API over ts.
func WithTenants(ts *Tenants) APIOption { return func(a *API) { a.tenants = ts; a.auth.store = ts } }

// WithAdminToken turns the admin API on, authenticated with token.
func WithAdminToken(token string) APIOption { return func(a *API) { a.admin = newAdminToken(token) } }

// WithQuotas enforces per-tenant quotas: defaults for tenants without their
// own and for those of HOOKLINE_API_KEYS; l counts imports in Redis.
func WithQuotas(defaults Quotas, l *QuotaLimiter) APIOption {
	return func(a *API) { a.auth.defaults, a.quota = defaults, l }
}

// WithAuthCacheTTL sets how long a stored key's lookup is cached (default and
// at most 5 s; 0: no cache). A revoked key works on other replicas for at
// most this long.
func WithAuthCacheTTL(d time.Duration) APIOption {
	return func(a *API) { a.auth.ttl = min(max(d, 0), MaxAuthCacheTTL) }
}

// APIOption configures optional parts of the API.
type APIOption func(*API)
