package e2e

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// A tenant never sees another tenant's templates or uploads.
func TestTenantIsolation(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "MINE", map[string]any{"url": rc.HookURL()})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "MINE", "records": apitest.Records(1)})
	e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second)

	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/templates/MINE"},
		{http.MethodDelete, "/v1/templates/MINE"},
		{http.MethodGet, "/v1/uploads/" + acc.UploadID},
		{http.MethodGet, "/v1/uploads/" + acc.UploadID + "/attempts"},
		{http.MethodGet, "/v1/uploads/" + acc.UploadID + "/failures"},
		{http.MethodPost, "/v1/uploads/" + acc.UploadID + "/retry"},
	} {
		if status, body := e.client.Call(keyB, c.method, c.path, nil); status != http.StatusNotFound {
			t.Errorf("tenant bravo: %s %s = %d %s, want 404", c.method, c.path, status, body)
		}
	}
	// bravo cannot import with acme's template either.
	if status, _ := e.client.Call(keyB, http.MethodPost, "/v1/imports", map[string]any{"template": "MINE", "records": apitest.Records(1)}); status != http.StatusNotFound {
		t.Errorf("import with another tenant's template = %d, want 404", status)
	}
	var list struct{ Uploads []apitest.Upload }
	_ = json.Unmarshal(e.client.MustCall(keyB, http.MethodGet, "/v1/uploads", nil, 200), &list)
	if len(list.Uploads) != 0 {
		t.Errorf("bravo lists %d uploads, want 0", len(list.Uploads))
	}
	var tl struct{ Templates []any }
	_ = json.Unmarshal(e.client.MustCall(keyB, http.MethodGet, "/v1/templates", nil, 200), &tl)
	if len(tl.Templates) != 0 {
		t.Errorf("bravo lists %d templates, want 0", len(tl.Templates))
	}
	// acme still sees its own.
	_ = json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, "/v1/uploads?template=MINE&status=completed", nil, 200), &list)
	if len(list.Uploads) != 1 || list.Uploads[0].UploadID != acc.UploadID {
		t.Errorf("acme lists %+v", list.Uploads)
	}
	for _, key := range []string{"", "wrong-key-000000000"} {
		if status, _ := e.client.Call(key, http.MethodGet, "/v1/templates", nil); status != http.StatusUnauthorized {
			t.Errorf("key %q: status %d, want 401", key, status)
		}
	}
}

// Templates: defaults, replace, list, delete, secrets never echoed.
func TestTemplateLifecycle(t *testing.T) {
	e := newEnv(t)
	data := e.client.MustCall(keyA, http.MethodPut, "/v1/templates/CUSTOMERS", `{"name":"Customers","destination":{"webhook":{"url":"https://api.example.com/hook","signingSecret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}`, http.StatusCreated)
	var got struct {
		Code        string
		Destination struct{ Webhook map[string]any }
	}
	_ = json.Unmarshal(data, &got)
	wh := got.Destination.Webhook
	if wh["chunkSize"] != 100.0 || wh["retryCount"] != 0.0 || wh["retryInterval"] != 0.0 || wh["timeout"] != 30000.0 || wh["maxInFlight"] != 1.0 {
		t.Fatalf("defaults = %v", wh)
	}
	if strings.Contains(string(data), "MfKQ9r8GKYqrTwjUPD8ILPZIo2La") || wh["signingSecret"] != "whsec_…LaSw" {
		t.Fatalf("signing secret shown as %v in %s", wh["signingSecret"], data)
	}
	e.client.MustCall(keyA, http.MethodPut, "/v1/templates/CUSTOMERS", `{"name":"Customers 2","destination":{"webhook":{"url":"https://api.example.com/v2","chunkSize":5}}}`, http.StatusOK)
	data = e.client.MustCall(keyA, http.MethodGet, "/v1/templates/CUSTOMERS", nil, http.StatusOK)
	_ = json.Unmarshal(data, &got)
	if got.Destination.Webhook["chunkSize"] != 5.0 || got.Destination.Webhook["signingSecret"] != "whsec_…LaSw" {
		t.Fatalf("after replace: %s", data)
	}
	var list struct{ Templates []struct{ Code string } }
	_ = json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, "/v1/templates", nil, http.StatusOK), &list)
	if len(list.Templates) != 1 || list.Templates[0].Code != "CUSTOMERS" {
		t.Fatalf("list = %+v", list)
	}
	e.client.MustCall(keyA, http.MethodDelete, "/v1/templates/CUSTOMERS", nil, http.StatusNoContent)
	e.client.MustCall(keyA, http.MethodGet, "/v1/templates/CUSTOMERS", nil, http.StatusNotFound)
}

// Every bad field answers 400 naming it, and nothing is enqueued.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "OK", map[string]any{"url": rc.HookURL(), "authHeaderName": "X-Key"})

	templates := []struct {
		name, body, field string
	}{
		{"no webhook", `{"name":"x","destination":{}}`, "destination.webhook"},
		{"no url", `{"destination":{"webhook":{}}}`, "destination.webhook.url"},
		{"relative url", `{"destination":{"webhook":{"url":"/hook"}}}`, "destination.webhook.url"},
		{"ftp url", `{"destination":{"webhook":{"url":"ftp://example.com/x"}}}`, "destination.webhook.url"},
		{"userinfo", `{"destination":{"webhook":{"url":"https://u:p@example.com/x"}}}`, "destination.webhook.url"},
		{"header token", `{"destination":{"webhook":{"url":"https://example.com","authHeaderName":"X Key"}}}`, "destination.webhook.authHeaderName"},
		{"reserved header", `{"destination":{"webhook":{"url":"https://example.com","authHeaderName":"Content-Type"}}}`, "destination.webhook.authHeaderName"},
		{"webhook- header", `{"destination":{"webhook":{"url":"https://example.com","authHeaderName":"webhook-id"}}}`, "destination.webhook.authHeaderName"},
		{"chunkSize 0", `{"destination":{"webhook":{"url":"https://example.com","chunkSize":0}}}`, "destination.webhook.chunkSize"},
		{"chunkSize big", `{"destination":{"webhook":{"url":"https://example.com","chunkSize":10001}}}`, "destination.webhook.chunkSize"},
		{"retryCount", `{"destination":{"webhook":{"url":"https://example.com","retryCount":101}}}`, "destination.webhook.retryCount"},
		{"retryCount negative", `{"destination":{"webhook":{"url":"https://example.com","retryCount":-1}}}`, "destination.webhook.retryCount"},
		{"retryInterval", `{"destination":{"webhook":{"url":"https://example.com","retryInterval":86400001}}}`, "destination.webhook.retryInterval"},
		{"timeout 0", `{"destination":{"webhook":{"url":"https://example.com","timeout":0}}}`, "destination.webhook.timeout"},
		{"timeout big", `{"destination":{"webhook":{"url":"https://example.com","timeout":120001}}}`, "destination.webhook.timeout"},
		{"maxInFlight", `{"destination":{"webhook":{"url":"https://example.com","maxInFlight":65}}}`, "destination.webhook.maxInFlight"},
		{"signingSecret", `{"destination":{"webhook":{"url":"https://example.com","signingSecret":"plain"}}}`, "destination.webhook.signingSecret"},
		{"wrong type", `{"destination":{"webhook":{"url":"https://example.com","chunkSize":"ten"}}}`, "destination.webhook.chunkSize"},
		{"unknown field", `{"destination":{"webhook":{"url":"https://example.com","chunkSizes":10}}}`, "chunkSizes"},
		{"rateLimit requests 0", `{"destination":{"webhook":{"url":"https://example.com","rateLimit":{"requests":0,"interval":1000}}}}`, "destination.webhook.rateLimit.requests"},
		{"rateLimit no requests", `{"destination":{"webhook":{"url":"https://example.com","rateLimit":{"interval":1000}}}}`, "destination.webhook.rateLimit.requests"},
		{"rateLimit no interval", `{"destination":{"webhook":{"url":"https://example.com","rateLimit":{"requests":1}}}}`, "destination.webhook.rateLimit.interval"},
		{"rateLimit interval big", `{"destination":{"webhook":{"url":"https://example.com","rateLimit":{"requests":1,"interval":86400001}}}}`, "destination.webhook.rateLimit.interval"},
		{"rateLimit unknown", `{"destination":{"webhook":{"url":"https://example.com","rateLimit":{"requests":1,"interval":1,"burst":2}}}}`, "burst"},
		{"pauseAfterFailures", `{"destination":{"webhook":{"url":"https://example.com","pauseAfterFailures":10001}}}`, "destination.webhook.pauseAfterFailures"},
		{"pauseAfterFailures negative", `{"destination":{"webhook":{"url":"https://example.com","pauseAfterFailures":-1}}}`, "destination.webhook.pauseAfterFailures"},
		{"probeInterval", `{"destination":{"webhook":{"url":"https://example.com","probeInterval":-1}}}`, "destination.webhook.probeInterval"},
		{"notifyUrl", `{"destination":{"webhook":{"url":"https://example.com","notifyUrl":"ftp://example.com/x"}}}`, "destination.webhook.notifyUrl"},
	}
	for _, tc := range templates {
		t.Run("template/"+tc.name, func(t *testing.T) {
			status, data := e.client.Call(keyA, http.MethodPut, "/v1/templates/BAD", tc.body)
			var ae apiError
			_ = json.Unmarshal(data, &ae)
			if status != http.StatusBadRequest || ae.Error.Field != tc.field || ae.Error.Code != "invalid_argument" || ae.Error.Message == "" {
				t.Fatalf("= %d %s, want 400 naming %s", status, data, tc.field)
			}
		})
	}
	if status, _ := e.client.Call(keyA, http.MethodPut, "/v1/templates/bad%20code", `{"destination":{"webhook":{"url":"https://example.com"}}}`); status != http.StatusBadRequest {
		t.Errorf("bad template code = %d, want 400", status)
	}

	imports := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"no template", map[string]any{"records": apitest.Records(1)}, 400, "template"},
		{"unknown template", map[string]any{"template": "NOPE", "records": apitest.Records(1)}, 404, "template"},
		{"no records", map[string]any{"template": "OK"}, 400, "records"},
		{"empty records", map[string]any{"template": "OK", "records": []any{}}, 400, "records"},
		{"record not object", map[string]any{"template": "OK", "records": []any{map[string]any{"a": 1}, 5}}, 400, "records[1]"},
		{"auth value with newline", map[string]any{"template": "OK", "records": apitest.Records(1), "authHeaderValue": "a\r\nX-Evil: 1"}, 400, "authHeaderValue"},
		{"auth value too long", map[string]any{"template": "OK", "records": apitest.Records(1), "authHeaderValue": strings.Repeat("a", 4097)}, 400, "authHeaderValue"},
		{"extra too large", map[string]any{"template": "OK", "records": apitest.Records(1), "extra": strings.Repeat("a", 70000)}, 400, "extra"},
		{"unknown field", map[string]any{"template": "OK", "records": apitest.Records(1), "recordz": 1}, 400, "recordz"},
		{"not json", "{not json", 400, ""},
	}
	for _, tc := range imports {
		t.Run("import/"+tc.name, func(t *testing.T) {
			status, data := e.client.Call(keyA, http.MethodPost, "/v1/imports", tc.body)
			var ae apiError
			_ = json.Unmarshal(data, &ae)
			if status != tc.status || ae.Error.Field != tc.field || ae.Error.Message == "" {
				t.Fatalf("= %d %s, want %d naming %q", status, data, tc.status, tc.field)
			}
		})
	}
	files := []struct {
		name, filename, ctype, content string
		fields                         map[string]string
		status                         int
		field, msg                     string
	}{
		{"csv ragged row", "a.csv", "text/csv", "a,b\n1,2\n3\n", map[string]string{"template": "OK"}, 400, "file", "line 3"},
		{"ndjson bad line", "a.ndjson", "", "{\"a\":1}\n{oops\n", map[string]string{"template": "OK"}, 400, "file", "line 2"},
		{"json not array", "a.json", "", `{"a":1}`, map[string]string{"template": "OK"}, 400, "file", "array"},
		{"unknown type", "a.pdf", "application/pdf", "%PDF", map[string]string{"template": "OK"}, 415, "file", ""},
		{"empty csv", "a.csv", "", "a,b\n", map[string]string{"template": "OK"}, 400, "records", "no records"},
		{"no template", "a.csv", "", "a\n1\n", map[string]string{}, 400, "template", ""},
	}
	for _, tc := range files {
		t.Run("file/"+tc.name, func(t *testing.T) {
			status, data := e.multipart(keyA, tc.fields, tc.filename, tc.ctype, tc.content)
			var ae apiError
			_ = json.Unmarshal(data, &ae)
			if status != tc.status || ae.Error.Field != tc.field || !strings.Contains(ae.Error.Message, tc.msg) {
				t.Fatalf("= %d %s, want %d naming %q with %q", status, data, tc.status, tc.field, tc.msg)
			}
		})
	}
	if status, _ := e.client.Call(keyA, http.MethodPost, "/v1/imports", nil); status != http.StatusUnsupportedMediaType {
		t.Errorf("import without content type = %d, want 415", status)
	}

	// Nothing of any rejected import is left behind.
	if n := e.streamMsgs("HOOKLINE_PAGES"); n != 0 {
		t.Errorf("PAGES holds %d messages after rejected imports, want 0", n)
	}
	if n := e.streamMsgs("HOOKLINE_DELIVERIES"); n != 0 {
		t.Errorf("DELIVERIES holds %d tickets after rejected imports, want 0", n)
	}
	var list struct{ Uploads []apitest.Upload }
	_ = json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, "/v1/uploads", nil, 200), &list)
	if len(list.Uploads) != 0 {
		t.Errorf("%d uploads recorded after rejected imports", len(list.Uploads))
	}
	if len(rc.Requests()) != 0 {
		t.Errorf("the receiver got requests for rejected imports")
	}
}

// A page larger than the queue's message limit is refused with a message that
// says to lower chunkSize, and leaves nothing behind.
func TestPageOverMessageLimit(t *testing.T) {
	e := newEnv(t)
	e.client.PutTemplate(keyA, "BIG", map[string]any{"url": "http://127.0.0.1:1/", "chunkSize": 10000})
	rec := map[string]any{"blob": strings.Repeat("x", 60000)}
	recs := make([]any, 200) // 200 × 60 kB = 12 MB in one page, over the 8 MiB limit
	for i := range recs {
		recs[i] = rec
	}
	status, data := e.client.Call(keyA, http.MethodPost, "/v1/imports", map[string]any{"template": "BIG", "records": recs})
	var ae apiError
	_ = json.Unmarshal(data, &ae)
	if status != http.StatusRequestEntityTooLarge || ae.Error.Field != "destination.webhook.chunkSize" || !strings.Contains(ae.Error.Message, "chunkSize") {
		t.Fatalf("= %d %s", status, data)
	}
	if n := e.streamMsgs("HOOKLINE_PAGES"); n != 0 {
		t.Fatalf("PAGES holds %d messages", n)
	}
}

// Both services answer /healthz, /readyz and /metrics.
func TestOperationsEndpoints(t *testing.T) {
	e := newEnv(t)
	w := e.startWorker()
	for _, base := range []string{e.api, "http://" + w.metrics} {
		var body string
		apitest.Eventually(e.t, 10*time.Second, base+"/readyz", func() bool {
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
			return resp.StatusCode == 200
		})
		if !strings.Contains(body, "nats: ok") || !strings.Contains(body, "redis: ok") {
			t.Fatalf("%s/readyz = %q", base, body)
		}
		for _, path := range []string{"/healthz", "/metrics"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s%s = %d", base, path, resp.StatusCode)
			}
			if path == "/metrics" && !strings.Contains(string(b), "hookline_") {
				t.Fatalf("%s/metrics has no hookline metrics", base)
			}
		}
	}
}

// With HOOKLINE_METRICS_ADDR, ingest serves /metrics (and its health) on that
// port, and the API port keeps only /healthz and /readyz.
func TestIngestMetricsOnItsOwnPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metrics := "http://" + l.Addr().String()
	l.Close()
	e := newEnv(t, withVar("HOOKLINE_METRICS_ADDR", l.Addr().String()))
	for url, want := range map[string]int{
		e.api + "/metrics": http.StatusNotFound, e.api + "/healthz": http.StatusOK, e.api + "/readyz": http.StatusOK,
		metrics + "/metrics": http.StatusOK, metrics + "/healthz": http.StatusOK, metrics + "/readyz": http.StatusOK,
	} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", url, resp.StatusCode, want)
		}
		if url == metrics+"/metrics" && !strings.Contains(string(b), "hookline_uploads_accepted_total") {
			t.Errorf("GET %s has no ingest metrics", url)
		}
	}
}

// A client that retries an import with the same Idempotency-Key gets the first
// upload again, never a second copy.
func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "IDEM", map[string]any{"url": rc.HookURL()})
	send := func(key, tenantKey string) (int, []byte, http.Header) {
		req, _ := http.NewRequest(http.MethodPost, e.api+"/v1/imports",
			strings.NewReader(`{"template":"IDEM","records":[{"a":"1"},{"a":"2"}]}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tenantKey)
		req.Header.Set("Idempotency-Key", key)
		resp, err := e.client.HTTP().Do(req) // #nosec G704 -- the hookline API the test started
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, resp.Header
	}
	s1, first, _ := send("import-42", keyA)
	s2, second, h := send("import-42", keyA)
	if s1 != http.StatusAccepted || s2 != http.StatusAccepted || string(first) != string(second) || h.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("first %d %s, retry %d %s (%v)", s1, first, s2, second, h)
	}
	var acc apitest.Accepted
	_ = json.Unmarshal(first, &acc)
	e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second)
	var list struct{ Uploads []apitest.Upload }
	_ = json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, "/v1/uploads", nil, 200), &list)
	if len(list.Uploads) != 1 {
		t.Fatalf("%d uploads after a retried import, want 1", len(list.Uploads))
	}
	if n := len(rc.Requests()); n != 1 {
		t.Fatalf("receiver got %d requests, want 1", n)
	}
	if s, other, _ := send("import-43", keyA); s != http.StatusAccepted || string(other) == string(first) {
		t.Fatalf("a new key gave %d %s", s, other)
	}
	if s, b, _ := send("bad key with spaces", keyA); s != http.StatusBadRequest {
		t.Fatalf("bad key = %d %s", s, b)
	}
	// The same key from another tenant is another import (here: unknown template).
	if s, _, _ := send("import-42", keyB); s != http.StatusNotFound {
		t.Fatalf("another tenant's use of the key = %d, want its own answer (404)", s)
	}
}

// A full PAGES stream pushes back with 503 and keeps nothing of the refused
// import; what was accepted before is still delivered.
func TestFullQueuePushesBack(t *testing.T) {
	e := newEnv(t, withVar("HOOKLINE_PAGES_MAX_BYTES", "200000"))
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "FULL", map[string]any{"url": rc.HookURL(), "chunkSize": 10})
	big := make([]any, 50)
	for i := range big {
		big[i] = map[string]any{"blob": strings.Repeat("y", 1000)}
	}
	first := e.client.ImportJSON(keyA, map[string]any{"template": "FULL", "records": big}) // ~50 kB: fits
	pagesBefore := e.streamMsgs("HOOKLINE_PAGES")
	huge := make([]any, 300) // ~300 kB, random so that compression does not shrink it: over the limit
	for i := range huge {
		var blob strings.Builder
		for blob.Len() < 1000 {
			blob.WriteString(rand.Text())
		}
		huge[i] = map[string]any{"blob": blob.String()}
	}
	status, data := e.client.Call(keyA, http.MethodPost, "/v1/imports", map[string]any{"template": "FULL", "records": huge})
	var ae apiError
	_ = json.Unmarshal(data, &ae)
	if status != http.StatusServiceUnavailable || ae.Error.Code != "queue_full" {
		t.Fatalf("import into a full queue = %d %s, want 503 queue_full", status, data)
	}
	if n := e.streamMsgs("HOOKLINE_PAGES"); n != pagesBefore {
		t.Fatalf("PAGES holds %d messages, want the %d of the accepted import", n, pagesBefore)
	}
	e.startWorker()
	if u := e.client.WaitFinished(keyA, first.UploadID, 20*time.Second); u.Status != "completed" || u.DeliveredPages != 5 {
		t.Fatalf("accepted upload = %+v", u)
	}
	var list struct{ Uploads []apitest.Upload }
	_ = json.Unmarshal(e.client.MustCall(keyA, http.MethodGet, "/v1/uploads", nil, 200), &list)
	if len(list.Uploads) != 1 {
		t.Fatalf("%d uploads recorded, want 1", len(list.Uploads))
	}
}
