package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func apiBase() string { return strings.TrimRight(envOr("HOOKLINE_API", "http://127.0.0.1:8080"), "/") }
func apiKey() string  { return envOr("HOOKLINE_API_KEY", DevAPIKey) }

func call(ctx context.Context, method, path, contentType string, body io.Reader) ([]byte, error) {
	return callWith(ctx, apiKey(), method, path, contentType, body)
}

// callWith makes a request to the hookline API with a bearer token.
func callWith(ctx context.Context, token, method, path, contentType string, body io.Reader) ([]byte, error) {
	// #nosec G704 -- the CLI calls the hookline API its user points it at (HOOKLINE_API)
	req, err := http.NewRequestWithContext(ctx, method, apiBase()+path, body)
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
		return nil, fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(data)))
	}
	return data, nil
}

func printJSON(data []byte) {
	var out bytes.Buffer
	if json.Indent(&out, data, "", "  ") != nil {
		_, _ = os.Stdout.Write(data)
		return
	}
	out.WriteByte('\n')
	_, _ = os.Stdout.Write(out.Bytes())
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

func follow(ctx context.Context, id string) error {
	for {
		data, err := call(ctx, http.MethodGet, "/v1/uploads/"+id, "", nil)
		if err != nil {
			return err
		}
		var u struct {
			Status                                           string
			TotalPages, DeliveredPages, FailedPages, Pending int
		}
		if err := json.Unmarshal(data, &u); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "\r%s: %d/%d pages delivered, %d failed   ", u.Status, u.DeliveredPages, u.TotalPages, u.FailedPages)
		if u.Status != "delivering" {
			fmt.Fprintln(os.Stderr)
			printJSON(data)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func runGet(args []string, suffix string) error {
	if len(args) != 1 {
		return errors.New("give one upload id")
	}
	data, err := call(context.Background(), http.MethodGet, "/v1/uploads/"+args[0]+suffix, "", nil)
	if err != nil {
		return err
	}
	printJSON(data)
	return nil
}

func runRetry(args []string) error {
	if len(args) != 1 {
		return errors.New("give one upload id")
	}
	data, err := call(context.Background(), http.MethodPost, "/v1/uploads/"+args[0]+"/retry", "", nil)
	if err != nil {
		return err
	}
	printJSON(data)
	return nil
}
