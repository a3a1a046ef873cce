package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func apiBase() string { return strings.TrimRight(envOr("HOOKLINE_API", "http://127.0.0.1:8080"), "/") }
func apiKey() string  { return envOr("HOOKLINE_API_KEY", DevAPIKey) }

// api is the hookline API the client commands talk to.
type api struct {
	base, key string
	out       io.Writer // answers
	log       io.Writer // progress and notes
}

func apiFromEnv() *api { return &api{base: apiBase(), key: apiKey(), out: os.Stdout, log: os.Stderr} }

// uploadPath is /v1/uploads/{id} followed by rest, the id escaped.
func uploadPath(id string, rest ...string) string {
	return "/v1/uploads/" + url.PathEscape(id) + strings.Join(rest, "")
}

// templatePath is /v1/templates/{code} followed by rest, the code escaped.
func templatePath(code string, rest ...string) string {
	return "/v1/templates/" + url.PathEscape(code) + strings.Join(rest, "")
}

// call makes a request with a JSON body (none when body is nil) and returns
// the body of its 2xx answer.
func (a *api) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	ctype := ""
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd, ctype = bytes.NewReader(data), "application/json"
	}
	return callTo(ctx, a.base, a.key, method, path, ctype, rd)
}

// callWith makes a request to the hookline API with a bearer token.
func callWith(ctx context.Context, token, method, path, contentType string, body io.Reader) ([]byte, error) {
	return callTo(ctx, apiBase(), token, method, path, contentType, body)
}

func callTo(ctx context.Context, base, token, method, path, contentType string, body io.Reader) ([]byte, error) {
	// #nosec G704 -- the CLI calls the hookline API its user points it at (HOOKLINE_API)
	req, err := http.NewRequestWithContext(ctx, method, base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return send(req)
}

// send makes a request and returns the body of its 2xx answer.
func send(req *http.Request) ([]byte, error) {
	resp, err := http.DefaultClient.Do(req) // #nosec G704 -- the hookline API its user points the CLI at
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, answerError(req, resp.Status, data)
	}
	return data, nil
}

// answerError says what the API refused, with its error message when the
// answer is hookline's JSON error.
func answerError(req *http.Request, status string, data []byte) error {
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
		msg := e.Error.Message
		if e.Error.Field != "" && !strings.Contains(msg, e.Error.Field) {
			msg += " (" + e.Error.Field + ")"
		}
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.EscapedPath(), status, msg)
	}
	return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.EscapedPath(), status, strings.TrimSpace(string(data)))
}

func (a *api) printJSON(data []byte) {
	var out bytes.Buffer
	if json.Indent(&out, data, "", "  ") != nil {
		_, _ = a.out.Write(data)
		return
	}
	out.WriteByte('\n')
	_, _ = a.out.Write(out.Bytes())
}

// printJSON writes an answer to stdout, indented.
func printJSON(data []byte) { apiFromEnv().printJSON(data) }

// listAll reads every page of a list (limit, cursor, nextCursor) into one
// slice of its field's items.
func (a *api) listAll(ctx context.Context, path, field string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		data, err := a.call(ctx, http.MethodGet, path+sep+q.Encode(), nil)
		if err != nil {
			return nil, err
		}
		var page map[string]json.RawMessage
		if err := json.Unmarshal(data, &page); err != nil {
			return nil, err
		}
		var these []json.RawMessage
		if err := json.Unmarshal(page[field], &these); err != nil && page[field] != nil {
			return nil, err
		}
		items = append(items, these...)
		var next string
		_ = json.Unmarshal(page["nextCursor"], &next)
		if next == "" || next == cursor {
			return items, nil
		}
		cursor = next
	}
}

func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progress is an upload's counters, as GET /v1/uploads/{id} and its event
// stream give them.
type progress struct {
	Status         string `json:"status"`
	TotalPages     int    `json:"totalPages"`
	DeliveredPages int    `json:"deliveredPages"`
	FailedPages    int    `json:"failedPages"`
}

func (a *api) showProgress(p progress) {
	fmt.Fprintf(a.log, "\r%s: %d/%d pages delivered, %d failed   ", p.Status, p.DeliveredPages, p.TotalPages, p.FailedPages)
}

// watch follows an upload until it finishes: its event stream where the API
// has one, else by asking every half second. It prints the final state.
func (a *api) watch(ctx context.Context, id string) error {
	for {
		data, err := a.call(ctx, http.MethodGet, uploadPath(id), nil)
		if err != nil {
			return err
		}
		var p progress
		if err := json.Unmarshal(data, &p); err != nil {
			return err
		}
		a.showProgress(p)
		if p.Status != "delivering" {
			fmt.Fprintln(a.log)
			a.printJSON(data)
			return nil
		}
		if _, err := a.stream(ctx, id); err != nil {
			return err
		}
		select { // after the stream ends (or where there is none), read the state again
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// stream shows the progress of GET /v1/uploads/{id}/events until the server
// ends the stream. It answers false when the API has no event stream there.
func (a *api) stream(ctx context.Context, id string) (bool, error) {
	// #nosec G704 -- the CLI calls the hookline API its user points it at (HOOKLINE_API)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+uploadPath(id, "/events"), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req) // #nosec G704 -- the hookline API its user points the CLI at
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return false, nil
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		var p progress
		if json.Unmarshal([]byte(strings.TrimSpace(data)), &p) == nil && p.Status != "" {
			a.showProgress(p)
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() != nil {
		return true, ctx.Err()
	}
	return true, nil
}
