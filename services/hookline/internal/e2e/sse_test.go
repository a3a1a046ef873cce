package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// progressEvents reads an upload's event stream to its end and returns the
// progress events in order; first runs after the first one.
func (e *env) progressEvents(key, id string, first func()) []map[string]any {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.api+"/v1/uploads/"+id+"/events", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp := e.client.Open(req)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		e.t.Fatalf("events = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []map[string]any
	sc := bufio.NewScanner(resp.Body) // ends with the stream
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		var p map[string]any
		if err := json.Unmarshal([]byte(data), &p); err != nil {
			e.t.Fatalf("event data %q: %v", data, err)
		}
		out = append(out, p)
		if len(out) == 1 && first != nil {
			first()
		}
	}
	if err := sc.Err(); err != nil {
		e.t.Fatalf("reading the stream: %v", err)
	}
	return out
}

// The event stream follows an upload page by page and ends after its final
// status; another tenant's upload answers 404.
func TestUploadEventStreamEndsWithFinalStatus(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	release := make(chan struct{})
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, _ int) {
		if r.Page.Page == 3 {
			<-release // the stream is open before the upload can finish
		}
		if r.Page.Page == 5 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "SSE", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "retryCount": 0})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "SSE", "records": apitest.Records(5)})
	e.client.MustCall(keyB, http.MethodGet, "/v1/uploads/"+acc.UploadID+"/events", nil, http.StatusNotFound)
	e.client.MustCall("", http.MethodGet, "/v1/uploads/"+acc.UploadID+"/events", nil, http.StatusUnauthorized)
	apitest.Eventually(t, 10*time.Second, "page 3 to be sent", func() bool { return rc.Count() >= 3 })
	events := e.progressEvents(keyA, acc.UploadID, func() { close(release) })
	if len(events) < 2 {
		t.Fatalf("events = %v, want the progress before page 3 ends and after", events)
	}
	last := events[len(events)-1]
	if last["status"] != "failed" || last["deliveredPages"] != 4.0 || last["failedPages"] != 1.0 || last["pendingPages"] != 0.0 {
		t.Fatalf("last event = %v, want failed with 4 delivered and 1 failed", last)
	}
	for i, ev := range events[:len(events)-1] {
		if ev["status"] != "delivering" {
			t.Fatalf("event %d = %v: a final status before the last event", i, ev)
		}
		if next := events[i+1]; next["deliveredPages"].(float64)+next["failedPages"].(float64) < ev["deliveredPages"].(float64)+ev["failedPages"].(float64) {
			t.Fatalf("progress went back: %v then %v", ev, next)
		}
	}
	// A finished upload's stream is its final status, at once.
	if again := e.progressEvents(keyA, acc.UploadID, nil); len(again) != 1 || again[0]["status"] != "failed" {
		t.Fatalf("stream of a finished upload = %v", again)
	}
}
