package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/webhook"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// notice is a notification body (api.md §7).
type notice struct {
	Type           string          `json:"type"`
	Template       string          `json:"template"`
	UploadID       string          `json:"uploadId"`
	Status         string          `json:"status"`
	TotalRecords   int             `json:"totalRecords"`
	TotalPages     int             `json:"totalPages"`
	DeliveredPages int             `json:"deliveredPages"`
	FailedPages    int             `json:"failedPages"`
	Extra          json.RawMessage `json:"extra"`
	Reason         string          `json:"reason"`
	At             time.Time       `json:"at"`
}

// Every event reaches the notifyUrl, signed and authenticated like a page,
// and a failed notification is sent again under the same webhook-id.
func TestNotifications(t *testing.T) {
	const signing = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	e := newEnv(t)
	e.startWorker()
	// The notify endpoint fails the first time it sees each event.
	notify := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ apitest.Request, n int) {
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	var failing atomic.Bool
	failing.Store(true)
	hook := failingReceiver(t, &failing)
	e.client.PutTemplate(keyA, "NOTE", map[string]any{"url": hook.HookURL(), "notifyUrl": notify.URL + "/notify",
		"authHeaderName": "X-Auth", "signingSecret": signing, "retryCount": 5, "retryInterval": 50,
		"pauseAfterFailures": 2, "probeInterval": 300})
	e.client.PutTemplate(keyA, "NOTE_DEAD", map[string]any{"url": hook.HookURL() + "/dead", "notifyUrl": notify.URL + "/notify",
		"retryCount": 1, "retryInterval": 50})
	up := e.client.ImportJSON(keyA, map[string]any{"template": "NOTE", "records": apitest.Records(2), "authHeaderValue": "auth-1",
		"extra": map[string]any{"batch": 7}})
	apitest.Eventually(t, 20*time.Second, "the template paused", func() bool { return e.templateState("NOTE").State == "paused" })
	failing.Store(false)
	e.client.WaitFinished(keyA, up.UploadID, 20*time.Second)
	failing.Store(true)
	dead := e.client.ImportJSON(keyA, map[string]any{"template": "NOTE_DEAD", "records": apitest.Records(1)})
	e.client.WaitFinished(keyA, dead.UploadID, 20*time.Second)
	e.client.MustCall(keyA, http.MethodPost, "/v1/templates/NOTE/pause", nil, http.StatusOK)

	byID := func() map[string][]apitest.Request {
		m := map[string][]apitest.Request{}
		for _, r := range notify.Requests() {
			m[r.ID] = append(m[r.ID], r)
		}
		return m
	}
	// Five events, each sent twice (the first answer is 503).
	apitest.Eventually(t, 30*time.Second, "every notification delivered", func() bool {
		m := byID()
		if len(m) < 5 {
			return false
		}
		for _, rs := range m {
			if len(rs) < 2 {
				return false
			}
		}
		return true
	})
	got := map[string]notice{}
	for id, rs := range byID() {
		if len(rs) != 2 {
			t.Fatalf("notification %s sent %d times, want 2 (one failure, one retry)", id, len(rs))
		}
		var n notice
		if err := json.Unmarshal(rs[1].Body, &n); err != nil {
			t.Fatal(err)
		}
		if string(rs[0].Body) != string(rs[1].Body) {
			t.Fatalf("notification %s changed on retry", id)
		}
		if n.Template == "NOTE" {
			if err := webhook.Verify(rs[1].Header, rs[1].Body, signing); err != nil {
				t.Fatalf("notification %s: signature: %v", id, err)
			}
		}
		key := n.Type + " " + n.Template
		if n.Reason == "paused by hand" {
			key += " by hand"
		}
		got[key] = n
		switch n.Type {
		case "upload.completed", "upload.failed":
			if id != n.UploadID+"."+n.Type {
				t.Fatalf("webhook-id %s, want <uploadId>.<type>", id)
			}
		default:
			if !strings.HasPrefix(id, n.Template+"."+n.Type+".") {
				t.Fatalf("webhook-id %s, want <template>.<type>.<unix ms>", id)
			}
		}
		if n.Type == "upload.completed" && rs[1].Header.Get("X-Auth") != "auth-1" {
			t.Fatalf("upload notification without the import's auth header: %v", rs[1].Header)
		}
	}
	if n, ok := got["upload.completed NOTE"]; !ok || n.UploadID != up.UploadID || n.Status != "completed" || n.DeliveredPages != 1 ||
		n.TotalRecords != 2 || string(n.Extra) != `{"batch":7}` || n.At.IsZero() {
		t.Fatalf("upload.completed = %+v", n)
	}
	if n, ok := got["upload.failed NOTE_DEAD"]; !ok || n.UploadID != dead.UploadID || n.Status != "failed" || n.FailedPages != 1 || string(n.Extra) != `""` {
		t.Fatalf("upload.failed = %+v", n)
	}
	if n, ok := got["template.paused NOTE"]; !ok || !strings.Contains(n.Reason, "failed attempts in a row") {
		t.Fatalf("template.paused = %+v (all: %v)", n, got)
	}
	if _, ok := got["template.resumed NOTE"]; !ok {
		t.Fatalf("no template.resumed: %v", got)
	}
	if _, ok := got["template.paused NOTE by hand"]; !ok {
		t.Fatalf("no notification of the pause by hand: %v", got)
	}
}

// A completion is notified once per final status: a failed upload once,
// and again when a retry of its pages completes it.
func TestNotificationAfterRetry(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	notify := apitest.NewReceiver(t, nil)
	var failing atomic.Bool
	failing.Store(true)
	hook := failingReceiver(t, &failing)
	e.client.PutTemplate(keyA, "AGAIN", map[string]any{"url": hook.HookURL(), "notifyUrl": notify.URL + "/notify", "chunkSize": 1})
	up := e.client.ImportJSON(keyA, map[string]any{"template": "AGAIN", "records": apitest.Records(2)})
	e.client.WaitFinished(keyA, up.UploadID, 20*time.Second)
	apitest.Eventually(t, 20*time.Second, "the upload.failed notification", func() bool { return notify.Count() >= 1 })
	failing.Store(false)
	e.client.MustCall(keyA, http.MethodPost, "/v1/uploads/"+up.UploadID+"/retry", nil, http.StatusOK)
	apitest.Eventually(t, 20*time.Second, "the upload completed", func() bool { return e.client.Upload(keyA, up.UploadID).Status == "completed" })
	apitest.Eventually(t, 20*time.Second, "the upload.completed notification", func() bool { return notify.Count() >= 2 })
	ids := []string{}
	for _, r := range notify.Requests() {
		ids = append(ids, r.ID)
	}
	if len(ids) != 2 || ids[0] != up.UploadID+".upload.failed" || ids[1] != up.UploadID+".upload.completed" {
		t.Fatalf("notifications %v, want upload.failed then upload.completed, once each", ids)
	}
}
