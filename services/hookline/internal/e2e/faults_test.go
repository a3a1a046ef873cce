package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// A worker stopped in the middle of an upload hands its work back; another
// worker finishes the upload, and every page arrives.
func TestWorkerStopsAnotherFinishes(t *testing.T) {
	e := newEnv(t)
	first := e.startWorker()
	rc := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		time.Sleep(20 * time.Millisecond) // a slow receiver keeps the upload going while we stop the worker
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "W", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "retryCount": 0})
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "W", "records": apitest.Records(40)})
	apitest.Eventually(e.t, 20*time.Second, "some pages delivered", func() bool { return len(rc.Requests()) >= 5 })
	first.stop(t)
	mid := e.client.Upload(keyA, acc.UploadID)
	if mid.Status != "delivering" {
		t.Fatalf("upload finished before the worker was stopped: %+v", mid)
	}
	e.startWorker()
	u := e.client.WaitFinished(keyA, acc.UploadID, 30*time.Second)
	if u.Status != "completed" || u.DeliveredPages != 40 {
		t.Fatalf("upload = %+v", u)
	}
	seen := map[int]int{}
	for _, r := range rc.Requests() {
		seen[r.Page.Page]++
	}
	for p := 1; p <= 40; p++ {
		if seen[p] == 0 {
			t.Fatalf("page %d never arrived", p)
		}
		if seen[p] > 2 {
			t.Fatalf("page %d arrived %d times", p, seen[p])
		}
	}
	// A stop is not a customer attempt: with retryCount 0 no page may have failed.
	if u.FailedPages != 0 {
		t.Fatalf("%d pages failed after a graceful stop", u.FailedPages)
	}
}

// One upload's dead endpoint, with retries pending, does not hold back
// another tenant's upload to a healthy endpoint.
func TestDeadEndpointDoesNotBlockOthers(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	dead := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, r apitest.Request, n int) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	healthy := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "DEAD", map[string]any{"url": dead.HookURL(), "chunkSize": 1, "retryCount": 100, "retryInterval": 60000, "maxInFlight": 16})
	status, data := e.client.Call(keyB, http.MethodPut, "/v1/templates/LIVE", map[string]any{
		"destination": map[string]any{"webhook": map[string]any{"url": healthy.HookURL(), "chunkSize": 1}}})
	if status != http.StatusCreated {
		t.Fatalf("put template: %d %s", status, data)
	}
	var stuck []apitest.Accepted
	for range 3 {
		stuck = append(stuck, e.client.ImportJSON(keyA, map[string]any{"template": "DEAD", "records": apitest.Records(20)}))
	}
	apitest.Eventually(e.t, 10*time.Second, "dead endpoint's pages waiting for retry", func() bool { return len(dead.Requests()) >= 48 })
	live := e.client.ImportJSON(keyB, map[string]any{"template": "LIVE", "records": apitest.Records(20)})
	u := e.client.WaitFinished(keyB, live.UploadID, 20*time.Second)
	if u.Status != "completed" || u.DeliveredPages != 20 {
		t.Fatalf("healthy upload = %+v", u)
	}
	for _, s := range stuck {
		if d := e.client.Upload(keyA, s.UploadID); d.Status != "delivering" {
			t.Fatalf("dead-endpoint upload = %+v, want still delivering (retries pending)", d)
		}
	}
}
