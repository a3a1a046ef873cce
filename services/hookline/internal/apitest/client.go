// Package apitest holds what hookline's end-to-end tests (internal/e2e) and
// chaos tests (internal/chaos) share: a client for hookline's HTTP API, the
// JSON types of its answers, a recording webhook receiver and test records.
// Only tests import it.
package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// PollInterval is how often Poll checks its condition.
const PollInterval = 20 * time.Millisecond

// Poll checks cond every PollInterval and reports whether it held within the
// deadline.
func Poll(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}

// Eventually polls cond until it holds; the test fails when it does not
// within the deadline.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(within, cond) {
		t.Fatalf("timed out after %s waiting for %s", within, what)
	}
}

// Client calls hookline's HTTP API at Base for one test. Its methods that
// fail the test do so through the test it was made for.
type Client struct {
	Base string // http://host:port
	t    testing.TB
	hc   *http.Client
}

// NewClient returns a client of the API at base that sends its requests
// with (a copy of) hc (http.DefaultClient when nil). Every request and
// answer is checked against the API's OpenAPI document: a mismatch fails t.
func NewClient(t testing.TB, base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	checked := *hc
	checked.Transport = Validating(t, hc.Transport)
	return &Client{Base: base, t: t, hc: &checked}
}

// TryCall makes one request with key as bearer token (none when key is
// empty) and returns the status and body. A string or []byte body is sent as
// it is, anything else but nil encoded as JSON; a body goes with
// Content-Type application/json. TryCall does not fail the test, so it can
// be polled.
func (c *Client) TryCall(key, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return c.tryDo(req)
}

// HTTP returns the client's own *http.Client, which checks every request and
// answer against the OpenAPI document: for a test that needs the whole
// response (its headers).
func (c *Client) HTTP() *http.Client { return c.hc }

func (c *Client) tryDo(req *http.Request) (int, []byte, error) {
	resp, err := c.hc.Do(req) // #nosec G704 -- tests call the hookline API they started themselves
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// Call is TryCall that fails the test when the request cannot be made or
// answered; any status is returned.
func (c *Client) Call(key, method, path string, body any) (int, []byte) {
	c.t.Helper()
	status, data, err := c.TryCall(key, method, path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	return status, data
}

// Do sends req and returns the status and body; the test fails when the
// request cannot be made or answered.
func (c *Client) Do(req *http.Request) (int, []byte) {
	c.t.Helper()
	status, data, err := c.tryDo(req)
	if err != nil {
		c.t.Fatal(err)
	}
	return status, data
}

// MustCall is Call that also fails the test when the status is not want.
func (c *Client) MustCall(key, method, path string, body any, want int) []byte {
	c.t.Helper()
	status, data, err := c.TryCall(key, method, path, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if status != want {
		c.t.Fatalf("%s %s = %d %s, want %d", method, path, status, data, want)
	}
	return data
}

// PutTemplate creates or replaces template code of the tenant of key, with
// webhook as its destination; 200 and 201 are both fine.
func (c *Client) PutTemplate(key, code string, webhook map[string]any) {
	c.t.Helper()
	status, data, err := c.TryCall(key, http.MethodPut, "/v1/templates/"+code, map[string]any{
		"name": code, "destination": map[string]any{"webhook": webhook},
	})
	if err != nil {
		c.t.Fatalf("put template %s: %v", code, err)
	}
	if status != http.StatusCreated && status != http.StatusOK {
		c.t.Fatalf("put template %s: %d %s", code, status, data)
	}
}

// getJSON reads path, expects 200 and decodes the answer into out.
func (c *Client) getJSON(key, path string, out any) {
	c.t.Helper()
	if err := json.Unmarshal(c.MustCall(key, http.MethodGet, path, nil, http.StatusOK), out); err != nil {
		c.t.Fatal(err)
	}
}

// Accepted is the 202 answer to an import.
type Accepted struct {
	UploadID     string `json:"uploadId"`
	Template     string `json:"template"`
	TotalRecords int    `json:"totalRecords"`
	TotalPages   int    `json:"totalPages"`
	Status       string `json:"status"`
}

// ImportJSON posts a JSON import (body: template, records, …) and expects 202.
func (c *Client) ImportJSON(key string, body any) Accepted {
	c.t.Helper()
	data := c.MustCall(key, http.MethodPost, "/v1/imports", body, http.StatusAccepted)
	var a Accepted
	if err := json.Unmarshal(data, &a); err != nil {
		c.t.Fatal(err)
	}
	return a
}

// Upload is an upload's state (GET /v1/uploads/{id}).
type Upload struct {
	UploadID       string     `json:"uploadId"`
	Template       string     `json:"template"`
	Status         string     `json:"status"`
	TotalRecords   int        `json:"totalRecords"`
	TotalPages     int        `json:"totalPages"`
	DeliveredPages int        `json:"deliveredPages"`
	FailedPages    int        `json:"failedPages"`
	PendingPages   int        `json:"pendingPages"`
	CreatedAt      time.Time  `json:"createdAt"`
	CompletedAt    *time.Time `json:"completedAt"`
}

// Upload reads an upload; the test fails unless the answer is 200.
func (c *Client) Upload(key, id string) Upload {
	c.t.Helper()
	var u Upload
	c.getJSON(key, "/v1/uploads/"+id, &u)
	return u
}

// TryUpload reads an upload; an answer other than 200 is an error. It does
// not fail the test, so it can be polled.
func (c *Client) TryUpload(key, id string) (Upload, error) {
	var u Upload
	status, data, err := c.TryCall(key, http.MethodGet, "/v1/uploads/"+id, nil)
	if err != nil {
		return u, err
	}
	if status != http.StatusOK {
		return u, fmt.Errorf("GET /v1/uploads/%s = %d %s", id, status, data)
	}
	return u, json.Unmarshal(data, &u)
}

// WaitFinished polls an upload until it leaves "delivering" and returns it.
// A read that fails fails the test at once, like Upload.
func (c *Client) WaitFinished(key, id string, within time.Duration) Upload {
	c.t.Helper()
	var u Upload
	Eventually(c.t, within, "upload "+id+" to finish", func() bool {
		u = c.Upload(key, id)
		return u.Status != "delivering"
	})
	return u
}

// WaitFinishedThroughErrors polls an upload until it leaves "delivering" and
// returns it. Failed reads (a store restarting) are polled through until the
// deadline.
func (c *Client) WaitFinishedThroughErrors(key, id string, within time.Duration) Upload {
	c.t.Helper()
	var u Upload
	var last error
	ok := Poll(within, func() bool {
		var err error
		u, err = c.TryUpload(key, id)
		last = err
		return err == nil && u.Status != "delivering"
	})
	if !ok {
		c.t.Fatalf("upload %s did not finish within %s: last state %+v, last error %v", id, within, u, last)
	}
	return u
}

// ListUploads lists up to 1000 uploads of the tenant of key.
func (c *Client) ListUploads(key string) []Upload {
	c.t.Helper()
	var out struct{ Uploads []Upload }
	c.getJSON(key, "/v1/uploads?limit=1000", &out)
	return out.Uploads
}

// Attempt is one entry of an upload's attempts log.
type Attempt struct {
	Page         int       `json:"page"`
	Attempt      int       `json:"attempt"`
	Outcome      string    `json:"outcome"`
	StatusCode   int       `json:"statusCode"`
	Error        string    `json:"error"`
	ResponseBody string    `json:"responseBody"`
	DurationMs   int64     `json:"durationMs"`
	At           time.Time `json:"at"`
}

// Attempts reads an upload's whole attempts log, page after page.
func (c *Client) Attempts(key, id string) []Attempt {
	c.t.Helper()
	return listAll[Attempt](c, key, "/v1/uploads/"+id+"/attempts", "attempts")
}

// listAll reads every page of the list at path, whose items are under name.
func listAll[T any](c *Client, key, path, name string) []T {
	c.t.Helper()
	var all []T
	for cursor := ""; ; {
		var out map[string]json.RawMessage
		q := "?limit=1000"
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		c.getJSON(key, path+q, &out)
		var items []T
		if err := json.Unmarshal(out[name], &items); err != nil {
			c.t.Fatalf("GET %s: %s: %v", path, name, err)
		}
		all = append(all, items...)
		if err := json.Unmarshal(out["nextCursor"], &cursor); err != nil || cursor == "" {
			return all
		}
	}
}

// Failure is one entry of an upload's failure log.
type Failure struct {
	Page       int    `json:"page"`
	Attempts   int    `json:"attempts"`
	StatusCode int    `json:"statusCode"`
	Error      string `json:"error"`
}

// Failures reads an upload's whole failure log, page after page.
func (c *Client) Failures(key, id string) []Failure {
	c.t.Helper()
	return listAll[Failure](c, key, "/v1/uploads/"+id+"/failures", "failures")
}

// Records returns n records {"name": "userI", "email": "userI@example.com"},
// I counting from 1.
func Records(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"name": fmt.Sprintf("user%d", i+1), "email": fmt.Sprintf("user%d@example.com", i+1)}
	}
	return out
}

// NumberedRecords returns n records {"n": I, "name": "userI"}, I counting
// from 1.
func NumberedRecords(n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = map[string]any{"n": i + 1, "name": fmt.Sprintf("user%d", i+1)}
	}
	return out
}

// Open sends req and returns the answer with its body unread (an event
// stream); the caller closes it. The test fails when the request cannot be
// made.
func (c *Client) Open(req *http.Request) *http.Response {
	c.t.Helper()
	resp, err := c.hc.Do(req) // #nosec G704 -- tests call the hookline API they started themselves
	if err != nil {
		c.t.Fatal(err)
	}
	return resp
}
