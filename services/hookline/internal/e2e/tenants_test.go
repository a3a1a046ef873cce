package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookline/hookline/pkg/config"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
	"github.com/hookline/hookline/services/ingest"
)

const testAdminToken = "admin-token-of-the-tests-0123456789abcdef"

func withAdmin() envOption { return withVar("HOOKLINE_ADMIN_TOKEN", testAdminToken) }

type tenantView struct {
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	Quotas          map[string]int `json:"quotas"`
	EffectiveQuotas map[string]int `json:"effectiveQuotas"`
}

type keyView struct {
	KeyID     string     `json:"keyId"`
	Tenant    string     `json:"tenant"`
	Key       string     `json:"key"`
	Prefix    string     `json:"prefix"`
	RevokedAt *time.Time `json:"revokedAt"`
}

// newTenant creates a stored tenant with quotas (nil: the defaults) and an
// API key for it, and returns the key.
func (e *env) newTenant(id string, quotas map[string]int) string {
	e.t.Helper()
	body := map[string]any{"id": id, "name": "Tenant " + id}
	if quotas != nil {
		body["quotas"] = quotas
	}
	e.client.MustCall(testAdminToken, http.MethodPost, "/v1/admin/tenants", body, http.StatusCreated)
	var k keyView
	if err := json.Unmarshal(e.client.MustCall(testAdminToken, http.MethodPost, "/v1/admin/tenants/"+id+"/keys", nil, http.StatusCreated), &k); err != nil {
		e.t.Fatal(err)
	}
	return k.Key
}

func (e *env) uploadCount(key string) int {
	e.t.Helper()
	var list struct{ Uploads []apitest.Upload }
	if err := json.Unmarshal(e.client.MustCall(key, http.MethodGet, "/v1/uploads", nil, http.StatusOK), &list); err != nil {
		e.t.Fatal(err)
	}
	return len(list.Uploads)
}

// startReplica runs a second ingest process against the same NATS and Redis
// and returns its base URL.
func (e *env) startReplica() string {
	t := e.t
	t.Helper()
	cfg, err := ingest.LoadConfig(config.MapEnv(e.vars))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	reg := prometheus.NewRegistry()
	go func() {
		done <- ingest.Run(ctx, cfg, ingest.Deps{NATS: e.nc, Redis: e.rdb, Registry: reg, Gatherer: reg,
			Log: e.logger("ingest-2"), Listener: l})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest replica: %v", err)
		}
	})
	base := "http://" + l.Addr().String()
	apitest.Eventually(e.t, 10*time.Second, "replica ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// statusAt calls another replica with a tenant key.
func (e *env) statusAt(base, key, method, path string) int {
	e.t.Helper()
	req, err := http.NewRequest(method, base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	status, _ := e.client.Do(req)
	return status
}

func decodeError(t *testing.T, data []byte) apiError {
	t.Helper()
	var ae apiError
	if err := json.Unmarshal(data, &ae); err != nil {
		t.Fatalf("not an error body: %s", data)
	}
	return ae
}

// The admin API end to end: a tenant, a key that imports, a listing without
// key material, a revocation that locks the key out on every replica.
func TestAdminTenantsAndKeys(t *testing.T) {
	e := newEnv(t, withAdmin())
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)

	data := e.client.MustCall(testAdminToken, http.MethodPost, "/v1/admin/tenants",
		`{"id":"zeta","name":"Zeta Corp","quotas":{"maxRecords":1000}}`, http.StatusCreated)
	var tv tenantView
	_ = json.Unmarshal(data, &tv)
	if tv.ID != "zeta" || tv.Name != "Zeta Corp" || tv.Quotas["maxRecords"] != 1000 || tv.EffectiveQuotas["maxRecords"] != 1000 ||
		tv.EffectiveQuotas["maxConcurrentUploads"] != 0 || tv.EffectiveQuotas["deliveryShare"] != 1 {
		t.Fatalf("created tenant = %s", data)
	}
	for _, tc := range []struct {
		name, body string
		status     int
		field      string
	}{
		{"again", `{"id":"zeta"}`, http.StatusConflict, "id"},
		{"a HOOKLINE_API_KEYS tenant", `{"id":"acme"}`, http.StatusConflict, "id"},
		{"no id", `{"name":"x"}`, http.StatusBadRequest, "id"},
		{"bad id", `{"id":"no spaces"}`, http.StatusBadRequest, "id"},
		{"negative quota", `{"id":"q","quotas":{"maxConcurrentUploads":-1}}`, http.StatusBadRequest, "quotas.maxConcurrentUploads"},
		{"unknown quota", `{"id":"q","quotas":{"maxRecs":1}}`, http.StatusBadRequest, "maxRecs"},
		{"delivery share 0", `{"id":"q","quotas":{"deliveryShare":0}}`, http.StatusBadRequest, "quotas.deliveryShare"},
		{"delivery share over 100", `{"id":"q","quotas":{"deliveryShare":101}}`, http.StatusBadRequest, "quotas.deliveryShare"},
		{"delivery share not whole", `{"id":"q","quotas":{"deliveryShare":1.5}}`, http.StatusBadRequest, "quotas.deliveryShare"},
		{"not JSON", `{`, http.StatusBadRequest, ""},
	} {
		t.Run("create/"+tc.name, func(t *testing.T) {
			status, data := e.client.Call(testAdminToken, http.MethodPost, "/v1/admin/tenants", tc.body)
			if ae := decodeError(t, data); status != tc.status || ae.Error.Field != tc.field || ae.Error.Message == "" {
				t.Fatalf("= %d %s, want %d naming %q", status, data, tc.status, tc.field)
			}
		})
	}
	var list struct{ Tenants []tenantView }
	_ = json.Unmarshal(e.client.MustCall(testAdminToken, http.MethodGet, "/v1/admin/tenants", nil, http.StatusOK), &list)
	if len(list.Tenants) != 1 || list.Tenants[0].ID != "zeta" {
		t.Fatalf("tenants = %+v", list.Tenants)
	}
	e.client.MustCall(testAdminToken, http.MethodGet, "/v1/admin/tenants/zeta", nil, http.StatusOK)
	status, data := e.client.Call(testAdminToken, http.MethodGet, "/v1/admin/tenants/nobody", nil)
	if ae := decodeError(t, data); status != http.StatusNotFound || ae.Error.Field != "tenant" {
		t.Fatalf("unknown tenant = %d %s", status, data)
	}
	if status, _ := e.client.Call(testAdminToken, http.MethodPost, "/v1/admin/tenants/nobody/keys", nil); status != http.StatusNotFound {
		t.Fatalf("key for an unknown tenant = %d, want 404", status)
	}

	// A key, shown once.
	var k keyView
	_ = json.Unmarshal(e.client.MustCall(testAdminToken, http.MethodPost, "/v1/admin/tenants/zeta/keys", nil, http.StatusCreated), &k)
	if !strings.HasPrefix(k.Key, "hl_") || len(k.Key) < 40 || k.KeyID == "" || k.Tenant != "zeta" || k.Prefix != k.Key[:7]+"…" {
		t.Fatalf("created key = %+v", k)
	}
	other := e.newTenantKey("zeta")

	// It works: a template, an import, delivered.
	e.client.PutTemplate(k.Key, "ZT", map[string]any{"url": rc.HookURL()})
	acc := e.client.ImportJSON(k.Key, map[string]any{"template": "ZT", "records": apitest.Records(3)})
	if u := e.client.WaitFinished(k.Key, acc.UploadID, 20*time.Second); u.Status != "completed" {
		t.Fatalf("upload = %+v", u)
	}

	// Listing shows no key material: no key, no hash.
	data = e.client.MustCall(testAdminToken, http.MethodGet, "/v1/admin/tenants/zeta/keys", nil, http.StatusOK)
	var keys struct{ Keys []keyView }
	_ = json.Unmarshal(data, &keys)
	if len(keys.Keys) != 2 || strings.Contains(string(data), k.Key[7:]) || strings.Contains(string(data), other[7:]) ||
		strings.Contains(string(data), `"hash"`) || strings.Contains(string(data), `"key"`) {
		t.Fatalf("key list = %s", data)
	}
	// Nor does anything else the store holds.
	for _, key := range []string{k.Key, other} {
		if strings.Contains(e.bucketDump(ingest.TenantsBucket), key) {
			t.Fatalf("the tenants bucket holds a key in clear")
		}
	}

	// A second replica caches the key before it is revoked.
	replica := e.startReplica()
	if s := e.statusAt(replica, k.Key, http.MethodGet, "/v1/templates"); s != http.StatusOK {
		t.Fatalf("replica with the key = %d", s)
	}

	e.client.MustCall(testAdminToken, http.MethodDelete, "/v1/admin/tenants/zeta/keys/"+k.KeyID, nil, http.StatusNoContent)
	revoked := time.Now()
	// At once on the replica that revoked it…
	if status, data := e.client.Call(k.Key, http.MethodGet, "/v1/templates", nil); status != http.StatusUnauthorized {
		t.Fatalf("revoked key = %d %s, want 401", status, data)
	}
	// …and within the cache TTL (5 s) on the other.
	apitest.Eventually(e.t, 10*time.Second, "revoked key refused by the replica", func() bool {
		return e.statusAt(replica, k.Key, http.MethodGet, "/v1/templates") == http.StatusUnauthorized
	})
	if d := time.Since(revoked); d > ingest.MaxAuthCacheTTL+time.Second {
		t.Fatalf("the replica accepted the revoked key for %s", d)
	}
	// The other key still works; the revoked one is listed as revoked.
	e.client.MustCall(other, http.MethodGet, "/v1/templates", nil, http.StatusOK)
	_ = json.Unmarshal(e.client.MustCall(testAdminToken, http.MethodGet, "/v1/admin/tenants/zeta/keys", nil, http.StatusOK), &keys)
	for _, kv := range keys.Keys {
		if (kv.KeyID == k.KeyID) != (kv.RevokedAt != nil) {
			t.Fatalf("keys after revocation = %+v", keys.Keys)
		}
	}
	e.client.MustCall(testAdminToken, http.MethodDelete, "/v1/admin/tenants/zeta/keys/"+k.KeyID, nil, http.StatusNoContent) // again: still 204
	status, data = e.client.Call(testAdminToken, http.MethodDelete, "/v1/admin/tenants/zeta/keys/NOSUCHKEY", nil)
	if ae := decodeError(t, data); status != http.StatusNotFound || ae.Error.Field != "keyId" {
		t.Fatalf("revoke unknown key = %d %s", status, data)
	}
	// A key id of another tenant is not found under this one.
	e.client.MustCall(testAdminToken, http.MethodPost, "/v1/admin/tenants", `{"id":"omega"}`, http.StatusCreated)
	if status, _ := e.client.Call(testAdminToken, http.MethodDelete, "/v1/admin/tenants/omega/keys/"+keys.Keys[1].KeyID, nil); status != http.StatusNotFound {
		t.Fatalf("revoke zeta's key under omega = %d, want 404", status)
	}
	e.client.MustCall(other, http.MethodGet, "/v1/templates", nil, http.StatusOK)
	// HOOKLINE_API_KEYS tenants keep working beside the stored ones.
	e.client.MustCall(keyA, http.MethodGet, "/v1/templates", nil, http.StatusOK)
}

func (e *env) newTenantKey(tenant string) string {
	e.t.Helper()
	var k keyView
	if err := json.Unmarshal(e.client.MustCall(testAdminToken, http.MethodPost, "/v1/admin/tenants/"+tenant+"/keys", nil, http.StatusCreated), &k); err != nil {
		e.t.Fatal(err)
	}
	return k.Key
}

// bucketDump returns every value of a key-value bucket, concatenated.
func (e *env) bucketDump(bucket string) string {
	e.t.Helper()
	js, err := jetstream.New(e.nc)
	if err != nil {
		e.t.Fatal(err)
	}
	kv, err := js.KeyValue(context.Background(), bucket)
	if err != nil {
		e.t.Fatal(err)
	}
	lister, err := kv.ListKeys(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for key := range lister.Keys() {
		entry, err := kv.Get(context.Background(), key)
		if err != nil {
			continue
		}
		b.WriteString(key + "=" + string(entry.Value()) + "\n")
	}
	return b.String()
}

// Admin routes take the admin token only; tenant routes never take it.
func TestAdminAuth(t *testing.T) {
	e := newEnv(t, withAdmin())
	stored := e.newTenant("zeta", nil)
	routes := []struct{ method, path string }{
		{http.MethodPost, "/v1/admin/tenants"},
		{http.MethodGet, "/v1/admin/tenants"},
		{http.MethodGet, "/v1/admin/tenants/zeta"},
		{http.MethodPatch, "/v1/admin/tenants/zeta"},
		{http.MethodPost, "/v1/admin/tenants/zeta/keys"},
		{http.MethodGet, "/v1/admin/tenants/zeta/keys"},
		{http.MethodDelete, "/v1/admin/tenants/zeta/keys/SOMEKEY"},
	}
	for _, cred := range []struct{ name, header string }{
		{"no token", ""},
		{"wrong token", "Bearer " + strings.Repeat("x", len(testAdminToken))},
		{"token with one character more", "Bearer " + testAdminToken + "x"},
		{"token without Bearer", testAdminToken},
		{"HOOKLINE_API_KEYS tenant key", "Bearer " + keyA},
		{"stored tenant key", "Bearer " + stored},
	} {
		for _, r := range routes {
			t.Run(cred.name+"/"+r.method+" "+r.path, func(t *testing.T) {
				req, _ := http.NewRequest(r.method, e.api+r.path, strings.NewReader(`{"id":"intruder"}`))
				req.Header.Set("Content-Type", "application/json")
				if cred.header != "" {
					req.Header.Set("Authorization", cred.header)
				}
				status, data := e.client.Do(req)
				if ae := decodeError(t, data); status != http.StatusUnauthorized || ae.Error.Code != "unauthenticated" {
					t.Fatalf("= %d %s, want 401", status, data)
				}
			})
		}
	}
	for _, r := range []struct{ method, path string }{
		{http.MethodGet, "/v1/templates"},
		{http.MethodPut, "/v1/templates/X"},
		{http.MethodPost, "/v1/imports"},
		{http.MethodGet, "/v1/uploads"},
	} {
		if status, data := e.client.Call(testAdminToken, r.method, r.path, nil); status != http.StatusUnauthorized {
			t.Errorf("admin token on %s %s = %d %s, want 401", r.method, r.path, status, data)
		}
	}
	// Nothing was created by the refused calls.
	var list struct{ Tenants []tenantView }
	_ = json.Unmarshal(e.client.MustCall(testAdminToken, http.MethodGet, "/v1/admin/tenants", nil, http.StatusOK), &list)
	if len(list.Tenants) != 1 {
		t.Fatalf("tenants = %+v", list.Tenants)
	}
}

// Without HOOKLINE_ADMIN_TOKEN the admin API does not exist.
func TestAdminAPIOff(t *testing.T) {
	e := newEnv(t)
	for _, key := range []string{"", keyA, testAdminToken} {
		status, data := e.client.Call(key, http.MethodGet, "/v1/admin/tenants", nil)
		if ae := decodeError(t, data); status != http.StatusNotFound || ae.Error.Code != "not_found" {
			t.Fatalf("admin API without a token (key %q) = %d %s, want 404", key, status, data)
		}
	}
}

// A stored-key tenant and a HOOKLINE_API_KEYS tenant never see each other's
// templates or uploads.
func TestStoredTenantIsolation(t *testing.T) {
	e := newEnv(t, withAdmin())
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	keyZ := e.newTenant("zeta", nil)
	type owned struct {
		name, key, template, upload string
	}
	var tenants []owned
	for _, o := range []owned{{name: "acme", key: keyA, template: "ACME_T"}, {name: "zeta", key: keyZ, template: "ZETA_T"}} {
		e.client.PutTemplate(o.key, o.template, map[string]any{"url": rc.HookURL()})
		o.upload = e.client.ImportJSON(o.key, map[string]any{"template": o.template, "records": apitest.Records(2)}).UploadID
		tenants = append(tenants, o)
	}
	for _, o := range tenants {
		e.client.WaitFinished(o.key, o.upload, 20*time.Second)
	}
	for i, owner := range tenants {
		intruder := tenants[1-i]
		t.Run(intruder.name+" on "+owner.name, func(t *testing.T) {
			for _, c := range []struct {
				method, path string
				body         any
			}{
				{http.MethodGet, "/v1/templates/" + owner.template, nil},
				{http.MethodDelete, "/v1/templates/" + owner.template, nil},
				{http.MethodGet, "/v1/uploads/" + owner.upload, nil},
				{http.MethodGet, "/v1/uploads/" + owner.upload + "/attempts", nil},
				{http.MethodGet, "/v1/uploads/" + owner.upload + "/failures", nil},
				{http.MethodPost, "/v1/uploads/" + owner.upload + "/retry", nil},
				{http.MethodPost, "/v1/imports", map[string]any{"template": owner.template, "records": apitest.Records(1)}},
			} {
				if status, body := e.client.Call(intruder.key, c.method, c.path, c.body); status != http.StatusNotFound {
					t.Errorf("%s %s = %d %s, want 404", c.method, c.path, status, body)
				}
			}
			if status, data := e.multipart(intruder.key, map[string]string{"template": owner.template}, "a.csv", "text/csv", "a\n1\n"); status != http.StatusNotFound {
				t.Errorf("multipart import with %s's template = %d %s, want 404", owner.name, status, data)
			}
			if n := e.uploadCount(intruder.key); n != 1 {
				t.Errorf("%s lists %d uploads, want its own 1", intruder.name, n)
			}
		})
	}
	// The owners still have everything.
	for _, o := range tenants {
		e.client.MustCall(o.key, http.MethodGet, "/v1/templates/"+o.template, nil, http.StatusOK)
		e.client.MustCall(o.key, http.MethodGet, "/v1/uploads/"+o.upload+"/failures", nil, http.StatusOK)
	}
}

// wantQuota checks a 429 that names the limit and its value.
func wantQuota(t *testing.T, status int, data []byte, field, message string) {
	t.Helper()
	ae := decodeError(t, data)
	if status != http.StatusTooManyRequests || ae.Error.Code != "quota_exceeded" || ae.Error.Field != field || ae.Error.Message != message {
		t.Fatalf("= %d %s, want 429 quota_exceeded on %s: %q", status, data, field, message)
	}
}

// Records per import and imports per minute, with tenants' own quotas and
// the defaults; a refused import leaves nothing behind.
func TestQuotas(t *testing.T) {
	e := newEnv(t, withAdmin(), withVar("HOOKLINE_QUOTA_MAX_RECORDS", "4"))
	rc := apitest.NewReceiver(t, nil)
	own := e.newTenant("own", map[string]int{"maxRecords": 3, "importsPerMinute": 2})
	unlimited := e.newTenant("unlimited", map[string]int{"maxRecords": 0})
	defaults := e.newTenant("defaults", nil)
	for _, key := range []string{keyA, own, unlimited, defaults} {
		e.client.PutTemplate(key, "Q", map[string]any{"url": rc.HookURL(), "chunkSize": 2})
	}

	t.Run("records", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			key     string
			records int
			message string // "": accepted
		}{
			{"own limit, at it", own, 3, ""},
			{"own limit, over it", own, 4, "tenant own may import at most 3 records at once"},
			{"default for a stored tenant", defaults, 5, "tenant defaults may import at most 4 records at once"},
			{"default for a HOOKLINE_API_KEYS tenant", keyA, 5, "tenant acme may import at most 4 records at once"},
			{"own 0 lifts the default", unlimited, 9, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pages, uploads := e.streamMsgs("HOOKLINE_PAGES"), e.uploadCount(tc.key)
				status, data := e.client.Call(tc.key, http.MethodPost, "/v1/imports", map[string]any{"template": "Q", "records": apitest.Records(tc.records)})
				if tc.message == "" {
					if status != http.StatusAccepted {
						t.Fatalf("= %d %s, want 202", status, data)
					}
					return
				}
				wantQuota(t, status, data, "quotas.maxRecords", tc.message)
				if n := e.streamMsgs("HOOKLINE_PAGES"); n != pages {
					t.Errorf("PAGES holds %d messages, %d before the refused import", n, pages)
				}
				if n := e.uploadCount(tc.key); n != uploads {
					t.Errorf("%d uploads after a refused import, %d before", n, uploads)
				}
			})
		}
	})

	t.Run("records while a CSV streams", func(t *testing.T) {
		pages, uploads := e.streamMsgs("HOOKLINE_PAGES"), e.uploadCount(defaults)
		const rows = 200_000 // ~6 MB: far more than is read before the refusal
		var written atomic.Int64
		pr, pw := io.Pipe()
		mw := multipart.NewWriter(pw)
		go func() {
			err := func() error {
				if err := mw.WriteField("template", "Q"); err != nil {
					return err
				}
				part, err := mw.CreateFormFile("file", "big.csv")
				if err != nil {
					return err
				}
				if _, err := io.WriteString(part, "name,email\n"); err != nil {
					return err
				}
				for i := range rows {
					if _, err := fmt.Fprintf(part, "user%d,user%d@example.com\n", i, i); err != nil {
						return err
					}
					written.Add(1)
				}
				return mw.Close()
			}()
			pw.CloseWithError(err)
		}()
		req, _ := http.NewRequest(http.MethodPost, e.api+"/v1/imports", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+defaults)
		status, data := e.client.Do(req)
		pr.Close()
		wantQuota(t, status, data, "quotas.maxRecords", "tenant defaults may import at most 4 records at once")
		if n := written.Load(); n >= rows {
			t.Errorf("the client wrote all %d rows: the import was not stopped while streaming", n)
		} else {
			t.Logf("the client wrote %d of %d rows before the refusal", n, rows)
		}
		if n := e.streamMsgs("HOOKLINE_PAGES"); n != pages {
			t.Errorf("PAGES holds %d messages, %d before: the pages of the refused import were kept", n, pages)
		}
		if n := e.uploadCount(defaults); n != uploads {
			t.Errorf("%d uploads after a refused import, %d before", n, uploads)
		}
	})

	t.Run("imports per minute", func(t *testing.T) {
		// "own" has had one accepted import (and one refused, which does not count).
		// An import refused for bad input does not count either.
		if status, _ := e.client.Call(own, http.MethodPost, "/v1/imports", map[string]any{"template": "NOPE", "records": apitest.Records(1)}); status != http.StatusNotFound {
			t.Fatalf("import with an unknown template = %d", status)
		}
		e.client.ImportJSON(own, map[string]any{"template": "Q", "records": apitest.Records(1)})
		pages := e.streamMsgs("HOOKLINE_PAGES")
		req, _ := http.NewRequest(http.MethodPost, e.api+"/v1/imports", strings.NewReader(`{"template":"Q","records":[{"a":"1"}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+own)
		resp, err := e.client.HTTP().Do(req) // #nosec G704 -- the hookline API the test started
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantQuota(t, resp.StatusCode, data, "quotas.importsPerMinute", "tenant own may start at most 2 imports per minute")
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
			t.Errorf("Retry-After = %q, want 1 to 60 seconds", resp.Header.Get("Retry-After"))
		}
		if n := e.streamMsgs("HOOKLINE_PAGES"); n != pages {
			t.Errorf("PAGES holds %d messages, %d before the refused import", n, pages)
		}
		// Other tenants are not held back.
		e.client.ImportJSON(unlimited, map[string]any{"template": "Q", "records": apitest.Records(1)})
		e.client.ImportJSON(keyA, map[string]any{"template": "Q", "records": apitest.Records(1)})
	})
}

// Uploads delivering at once: the next import waits until one finishes.
func TestQuotaConcurrentUploads(t *testing.T) {
	e := newEnv(t, withAdmin(), withVar("HOOKLINE_QUOTA_MAX_CONCURRENT_UPLOADS", "1"))
	rc := apitest.NewReceiver(t, nil)
	keyZ := e.newTenant("zeta", map[string]int{"maxConcurrentUploads": 2})
	e.client.PutTemplate(keyZ, "C", map[string]any{"url": rc.HookURL()})
	e.client.PutTemplate(keyA, "C", map[string]any{"url": rc.HookURL()}) // acme: the default of 1

	// No worker yet: accepted uploads stay delivering.
	first := e.client.ImportJSON(keyZ, map[string]any{"template": "C", "records": apitest.Records(2)})
	e.client.ImportJSON(keyZ, map[string]any{"template": "C", "records": apitest.Records(2)})
	pages := e.streamMsgs("HOOKLINE_PAGES")
	req, _ := http.NewRequest(http.MethodPost, e.api+"/v1/imports", strings.NewReader(`{"template":"C","records":[{"a":"1"}]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+keyZ)
	status, data := e.client.Do(req)
	wantQuota(t, status, data, "quotas.maxConcurrentUploads", "tenant zeta may have at most 2 uploads delivering at once")
	if n := e.streamMsgs("HOOKLINE_PAGES"); n != pages {
		t.Fatalf("PAGES holds %d messages, %d before the refused import", n, pages)
	}
	if n := e.uploadCount(keyZ); n != 2 {
		t.Fatalf("%d uploads, want the 2 accepted", n)
	}
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "C", "records": apitest.Records(1)})
	status, data = e.client.Call(keyA, http.MethodPost, "/v1/imports", map[string]any{"template": "C", "records": apitest.Records(1)})
	wantQuota(t, status, data, "quotas.maxConcurrentUploads", "tenant acme may have at most 1 upload delivering at once")

	// Once uploads finish, their slots are free.
	e.startWorker()
	e.client.WaitFinished(keyZ, first.UploadID, 20*time.Second)
	e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second)
	e.client.ImportJSON(keyZ, map[string]any{"template": "C", "records": apitest.Records(1)})
	e.client.ImportJSON(keyA, map[string]any{"template": "C", "records": apitest.Records(1)})
}
