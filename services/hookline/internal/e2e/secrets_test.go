package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/webhook"
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
	rc := newReceiver(t, func(n int, r request, w http.ResponseWriter) {
		if n == 1 {
			w.WriteHeader(http.StatusInternalServerError) // one failed attempt, so errors are logged too
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	templateAnswer := string(e.mustCall(keyA, http.MethodPut, "/v1/templates/SIG", map[string]any{
		"destination": map[string]any{"webhook": map[string]any{"url": rc.url(), "authHeaderName": "X-Auth", "signingSecret": signing, "retryCount": 1}},
	}, http.StatusCreated))
	acc := e.importJSON(keyA, map[string]any{"template": "SIG", "records": records(2), "authHeaderValue": authValue})
	if u := e.waitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "completed" {
		t.Fatalf("upload = %+v", u)
	}

	for _, r := range rc.requests() {
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
		places["GET "+path] = string(e.mustCall(keyA, http.MethodGet, path, nil, http.StatusOK))
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
