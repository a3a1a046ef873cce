package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/hookline/hookline/pkg/webhook"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// testAnswer is the answer of POST /v1/templates/{code}/test.
type testAnswer struct {
	Delivered    bool   `json:"delivered"`
	StatusCode   int    `json:"statusCode"`
	DurationMs   int64  `json:"durationMs"`
	ResponseBody string `json:"responseBody"`
	Error        string `json:"error"`
}

func (e *env) testWebhook(code string, body any) testAnswer {
	e.t.Helper()
	var a testAnswer
	if err := json.Unmarshal(e.client.MustCall(keyA, http.MethodPost, "/v1/templates/"+code+"/test", body, http.StatusOK), &a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

// A test request goes out at once, exactly as a page of a one-page upload
// test_<id>: auth header, signature, body; it creates no upload.
func TestTestWebhook(t *testing.T) {
	const signing = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	e := newEnv(t)
	ok := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ apitest.Request, _ int) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("thanks"))
	})
	e.client.PutTemplate(keyA, "T_OK", map[string]any{"url": ok.HookURL(), "authHeaderName": "X-Auth", "signingSecret": signing})
	a := e.testWebhook("T_OK", map[string]any{"authHeaderValue": "secret-value"})
	if !a.Delivered || a.StatusCode != 200 || a.ResponseBody != "thanks" || a.Error != "" {
		t.Fatalf("test answered %+v", a)
	}
	reqs := ok.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	p := r.Page
	if !strings.HasPrefix(p.UploadID, "test_") || r.ID != p.UploadID+".1" || p.Page != 1 || p.TotalPages != 1 || p.PageSize != 1 ||
		p.TotalRecords != 1 || p.Template != "T_OK" || len(p.Data) != 1 || string(p.Data[0]) != `{"example":"record"}` || string(p.Extra) != `""` {
		t.Fatalf("test request = %s (webhook-id %s)", r.Body, r.ID)
	}
	if r.Header.Get("X-Auth") != "secret-value" || !strings.HasPrefix(r.Header.Get("User-Agent"), "hookline/") {
		t.Fatalf("headers = %v", r.Header)
	}
	if err := webhook.Verify(r.Header, r.Body, signing); err != nil {
		t.Fatalf("signature: %v", err)
	}
	e.testWebhook("T_OK", map[string]any{"records": []map[string]any{{"name": "Ada"}, {"name": "Grace"}}})
	if p := ok.Requests()[1].Page; len(p.Data) != 2 || p.PageSize != 2 || string(p.Data[1]) != `{"name":"Grace"}` {
		t.Fatalf("test with records sent %s", ok.Requests()[1].Body)
	}
	if ups := e.client.ListUploads(keyA); len(ups) != 0 {
		t.Fatalf("a test created uploads: %+v", ups)
	}
	// Bad input answers 400 naming the field.
	status, data := e.client.Call(keyA, http.MethodPost, "/v1/templates/T_OK/test", map[string]any{"records": []any{"text"}})
	if status != http.StatusBadRequest || !strings.Contains(string(data), `"records[0]"`) {
		t.Fatalf("a record that is not an object = %d %s", status, data)
	}
	if status, _ := e.client.Call(keyA, http.MethodPost, "/v1/templates/NOPE/test", nil); status != http.StatusNotFound {
		t.Fatalf("test of no template = %d", status)
	}

	failing := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ apitest.Request, _ int) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("boom"))
	})
	e.client.PutTemplate(keyA, "T_500", map[string]any{"url": failing.HookURL()})
	if a := e.testWebhook("T_500", nil); a.Delivered || a.StatusCode != 500 || a.ResponseBody != "boom" || !strings.Contains(a.Error, "status 500") {
		t.Fatalf("test of a failing endpoint answered %+v", a)
	}

	release := make(chan struct{})
	slow := apitest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ apitest.Request, _ int) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	e.client.PutTemplate(keyA, "T_SLOW", map[string]any{"url": slow.HookURL(), "timeout": 200})
	if a := e.testWebhook("T_SLOW", nil); a.Delivered || a.StatusCode != 0 || !strings.Contains(a.Error, "timeout") {
		t.Fatalf("test of an endpoint slower than the timeout answered %+v", a)
	}

	// The test counts against the rate limit: with room for one request a
	// minute, the second waits (429 with Retry-After).
	e.client.PutTemplate(keyA, "T_LIMIT", map[string]any{"url": ok.HookURL(), "rateLimit": map[string]any{"requests": 1, "interval": 60000}})
	e.testWebhook("T_LIMIT", nil)
	req, _ := http.NewRequest(http.MethodPost, e.api+"/v1/templates/T_LIMIT/test", nil)
	req.Header.Set("Authorization", "Bearer "+keyA)
	resp, err := e.client.HTTP().Do(req) // #nosec G704 -- the hookline API the test started
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second test within the limit = %d (Retry-After %q), want 429", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// A paused template can still be tested.
	e.client.MustCall(keyA, http.MethodPost, "/v1/templates/T_OK/pause", nil, http.StatusOK)
	if a := e.testWebhook("T_OK", nil); !a.Delivered {
		t.Fatalf("test of a paused template answered %+v", a)
	}
}

// The SSRF guard refuses a test request as it refuses pages: here the guard
// refuses loopback (private networks not allowed), and the receiver on
// loopback is never reached.
func TestTestWebhookRefusedAddress(t *testing.T) {
	e := newEnv(t, withVar("HOOKLINE_ALLOW_PRIVATE_NETWORKS", "false"))
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "T_SSRF", map[string]any{"url": rc.HookURL()})
	a := e.testWebhook("T_SSRF", nil)
	if a.Delivered || a.StatusCode != 0 || !strings.Contains(a.Error, "loopback") {
		t.Fatalf("test of a loopback address answered %+v, want refused by the guard", a)
	}
	if n := rc.Count(); n != 0 {
		t.Fatalf("the receiver got %d requests", n)
	}
}
