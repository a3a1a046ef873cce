package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/webhook"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// Signed webhooks verify with webhook.Verify, and no secret (auth header
// value, signing secret) appears in logs, metrics, API answers or Redis.
func TestSecretsStaySecret(t *testing.T) {
	const (
		authValue = "auth-value-4f9c2e7a1b"
		signing   = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	)
	e := newEnv(t, withVar("HOOKLINE_LOG_LEVEL", "debug"))
	w := e.startWorker()
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError) // one failed attempt, so errors are logged too
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	templateAnswer := string(e.client.MustCall(keyA, http.MethodPut, "/v1/templates/SIG", map[string]any{
		"destination": map[string]any{"webhook": map[string]any{"url": rc.HookURL(), "authHeaderName": "X-Auth", "signingSecret": signing, "retryCount": 1}},
	}, http.StatusCreated))
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "SIG", "records": apitest.Records(2), "authHeaderValue": authValue})
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "completed" {
		t.Fatalf("upload = %+v", u)
	}

	for _, r := range rc.Requests() {
		if r.Header.Get("X-Auth") != authValue {
			t.Fatalf("auth header = %q", r.Header.Get("X-Auth"))
		}
		if err := webhook.Verify(r.Header, r.Body, signing); err != nil {
			t.Fatalf("signature does not verify: %v (headers %v)", err, r.Header)
		}
		if err := webhook.Verify(r.Header, r.Body, "whsec_"+strings.Repeat("A", 32)); err == nil {
			t.Fatal("signature verifies with another secret")
		}
	}

	places := map[string]string{"template answer": templateAnswer, "logs": e.logs.String()}
	for _, path := range []string{"/v1/templates/SIG", "/v1/templates", "/v1/uploads/" + acc.UploadID,
		"/v1/uploads/" + acc.UploadID + "/attempts", "/v1/uploads/" + acc.UploadID + "/failures", "/v1/uploads"} {
		places["GET "+path] = string(e.client.MustCall(keyA, http.MethodGet, path, nil, http.StatusOK))
	}
	for name, base := range map[string]string{"ingest metrics": e.api, "worker metrics": "http://" + w.metrics} {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		places[name] = string(b)
	}
	var redisDump strings.Builder
	ctx := context.Background()
	keys, err := e.rdb.Keys(ctx, e.vars["HOOKLINE_REDIS_PREFIX"]+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("redis keys: %v %v", keys, err)
	}
	for _, k := range keys {
		typ, err := e.rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var vals any
		switch typ {
		case "hash":
			vals, err = e.rdb.HGetAll(ctx, k).Result()
		case "list":
			vals, err = e.rdb.LRange(ctx, k, 0, -1).Result()
		case "set":
			vals, err = e.rdb.SMembers(ctx, k).Result()
		case "zset":
			vals, err = e.rdb.ZRange(ctx, k, 0, -1).Result()
		default:
			vals, err = e.rdb.Get(ctx, k).Result()
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&redisDump, "%s %v\n", k, vals)
	}
	places["redis"] = redisDump.String()
	if !strings.Contains(places["redis"], "X-Auth") || !strings.Contains(places["logs"], acc.UploadID) {
		t.Fatal("the log capture holds nothing of the upload: the check below would prove nothing")
	}
	for name, text := range places {
		for _, secret := range []string{authValue, signing, strings.TrimPrefix(signing, "whsec_")} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains a secret in clear text", name)
			}
		}
	}
}

// Rotating a template's signing secret signs with both secrets for the grace
// period, uploads already under way included.
func TestSigningSecretRotation(t *testing.T) {
	e := newEnv(t, withVar("HOOKLINE_TEMPLATE_CACHE_TTL", "0s"))
	release := make(chan struct{})
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		if r.Page.Page == 2 {
			<-release // hold page 2 until the secret is rotated
		}
		w.WriteHeader(http.StatusOK)
	})
	const old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	e.client.MustCall(keyA, http.MethodPut, "/v1/templates/ROT", map[string]any{"destination": map[string]any{"webhook": map[string]any{
		"url": rc.HookURL(), "chunkSize": 1, "signingSecret": old}}}, http.StatusCreated)
	e.startWorker()
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "ROT", "records": apitest.Records(3)})
	apitest.Eventually(e.t, 10*time.Second, "page 2 in flight", func() bool { return len(rc.Requests()) >= 2 })

	var answer struct {
		Destination struct {
			Webhook struct {
				SigningSecret                  string
				PreviousSigningSecretExpiresAt *time.Time
			}
		}
	}
	data := e.client.MustCall(keyA, http.MethodPut, "/v1/templates/ROT", map[string]any{"destination": map[string]any{"webhook": map[string]any{
		"url": rc.HookURL(), "chunkSize": 1, "signingSecret": "generate"}}}, http.StatusOK)
	_ = json.Unmarshal(data, &answer)
	fresh := answer.Destination.Webhook.SigningSecret
	if !strings.HasPrefix(fresh, "whsec_") || len(fresh) < 30 || answer.Destination.Webhook.PreviousSigningSecretExpiresAt == nil {
		t.Fatalf("rotation answer = %s", data)
	}
	if got := string(e.client.MustCall(keyA, http.MethodGet, "/v1/templates/ROT", nil, http.StatusOK)); strings.Contains(got, fresh) {
		t.Fatal("the generated secret is shown again after its creation")
	}
	close(release)
	e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second)

	reqs := rc.Requests()
	if err := webhook.Verify(reqs[0].Header, reqs[0].Body, old); err != nil {
		t.Fatalf("page 1 (before the rotation) does not verify with the old secret: %v", err)
	}
	last := reqs[len(reqs)-1]
	if last.Page.Page != 3 {
		t.Fatalf("last request is page %d", last.Page.Page)
	}
	// Page 3 was sent after the rotation: both secrets verify it.
	if err := webhook.Verify(last.Header, last.Body, fresh); err != nil {
		t.Fatalf("page 3 does not verify with the new secret: %v", err)
	}
	if err := webhook.Verify(last.Header, last.Body, old); err != nil {
		t.Fatalf("page 3 does not verify with the old secret during the grace period: %v", err)
	}
}
