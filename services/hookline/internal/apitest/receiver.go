package apitest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"
)

// Page is the body of a webhook request (api.md §1).
type Page struct {
	Template     string            `json:"template"`
	UploadID     string            `json:"uploadId"`
	Data         []json.RawMessage `json:"data"`
	TotalRecords int               `json:"totalRecords"`
	TotalPages   int               `json:"totalPages"`
	Page         int               `json:"page"`
	PageSize     int               `json:"pageSize"`
	Extra        json.RawMessage   `json:"extra"`
}

// Request is a request a Receiver got.
type Request struct {
	At     time.Time // when it arrived (its body read)
	End    time.Time // when the receiver had answered; zero while under way
	ID     string    // its webhook-id: <uploadId>.<page>
	Header http.Header
	Body   []byte
	Page   Page // the body decoded; zero when it is not a page
}

// Respond answers a request a Receiver got: r is the request being served,
// req what was recorded of it, n the 1-based arrival count of its webhook-id.
type Respond func(w http.ResponseWriter, r *http.Request, req Request, n int)

// Receiver is an httptest webhook endpoint on 127.0.0.1 that records every
// request and answers what respond says (200 when respond is nil).
type Receiver struct {
	*httptest.Server
	respond Respond

	mu       sync.Mutex
	reqs     []Request
	inFlight map[string]int // webhook-id → requests under way
	under    int            // requests under way
	maxUnder int            // the most requests under way at once
}

// NewReceiver starts a receiver, closed when the test ends.
func NewReceiver(t testing.TB, respond Respond) *Receiver {
	t.Helper()
	rc := &Receiver{respond: respond, inFlight: map[string]int{}}
	rc.Server = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *Receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{At: time.Now(), ID: r.Header.Get("webhook-id"), Header: r.Header.Clone(), Body: body}
	_ = json.Unmarshal(body, &req.Page)
	rc.mu.Lock()
	idx := len(rc.reqs)
	rc.reqs = append(rc.reqs, req)
	n := 0
	for _, q := range rc.reqs {
		if q.ID == req.ID {
			n++
		}
	}
	rc.inFlight[req.ID]++
	rc.under++
	rc.maxUnder = max(rc.maxUnder, rc.under)
	rc.mu.Unlock()
	defer func() {
		rc.mu.Lock()
		rc.reqs[idx].End = time.Now()
		if rc.inFlight[req.ID]--; rc.inFlight[req.ID] == 0 {
			delete(rc.inFlight, req.ID)
		}
		rc.under--
		rc.mu.Unlock()
	}()
	if rc.respond != nil {
		rc.respond(w, r, req, n)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// HookURL is the URL to give a template.
func (rc *Receiver) HookURL() string { return rc.URL + "/hook" }

// Requests returns the requests received so far, in arrival order.
func (rc *Receiver) Requests() []Request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]Request(nil), rc.reqs...)
}

// Count is the number of requests received so far.
func (rc *Receiver) Count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

// InFlight is the number of requests under way.
func (rc *Receiver) InFlight() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.under
}

// MaxInFlight is the most requests that were under way at once.
func (rc *Receiver) MaxInFlight() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.maxUnder
}

// InFlightIDs lists the webhook-ids of the requests under way, sorted.
func (rc *Receiver) InFlightIDs() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make([]string, 0, len(rc.inFlight))
	for id := range rc.inFlight {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}
