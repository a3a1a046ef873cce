package e2e

import (
	"net/http"
	"testing"
	"time"
)

// A worker stopped in the middle of an upload hands its work back; another
// worker finishes the upload, and every page arrives.
func TestWorkerStopsAnotherFinishes(t *testing.T) {
	e := newEnv(t)
	first := e.startWorker()
	rc := newReceiver(t, func(n int, r request, w http.ResponseWriter) {
		time.Sleep(20 * time.Millisecond) // a slow receiver keeps the upload going while we stop the worker
		w.WriteHeader(http.StatusOK)
	})
	e.putTemplate("W", map[string]any{"url": rc.url(), "chunkSize": 1, "retryCount": 0})
	acc := e.importJSON(keyA, map[string]any{"template": "W", "records": records(40)})
	e.eventually(20*time.Second, "some pages delivered", func() bool { return len(rc.requests()) >= 5 })
	first.stop(t)
	mid := e.upload(keyA, acc.UploadID)
	if mid.Status != "delivering" {
		t.Fatalf("upload finished before the worker was stopped: %+v", mid)
	}
	e.startWorker()
	u := e.waitFinished(keyA, acc.UploadID, 30*time.Second)
	if u.Status != "completed" || u.DeliveredPages != 40 {
		t.Fatalf("upload = %+v", u)
	}
	seen := map[int]int{}
	for _, r := range rc.requests() {
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
	dead := newReceiver(t, func(n int, r request, w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) })
	healthy := newReceiver(t, nil)
	e.putTemplate("DEAD", map[string]any{"url": dead.url(), "chunkSize": 1, "retryCount": 100, "retryInterval": 60000, "maxInFlight": 16})
	status, data := e.call(keyB, http.MethodPut, "/v1/templates/LIVE", map[string]any{
		"destination": map[string]any{"webhook": map[string]any{"url": healthy.url(), "chunkSize": 1}}})
	if status != http.StatusCreated {
		t.Fatalf("put template: %d %s", status, data)
	}
	var stuck []accepted
	for range 3 {
		stuck = append(stuck, e.importJSON(keyA, map[string]any{"template": "DEAD", "records": records(20)}))
	}
	e.eventually(10*time.Second, "dead endpoint's pages waiting for retry", func() bool { return len(dead.requests()) >= 48 })
	live := e.importJSON(keyB, map[string]any{"template": "LIVE", "records": records(20)})
	u := e.waitFinished(keyB, live.UploadID, 20*time.Second)
	if u.Status != "completed" || u.DeliveredPages != 20 {
		t.Fatalf("healthy upload = %+v", u)
	}
	for _, s := range stuck {
		if d := e.upload(keyA, s.UploadID); d.Status != "delivering" {
			t.Fatalf("dead-endpoint upload = %+v, want still delivering (retries pending)", d)
		}
	}
}
