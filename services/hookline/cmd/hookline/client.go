package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
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
	resp, err := http.DefaultClient.Do(req) // #nosec G704 -- see above
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(data)))
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

// countingReader reports progress while a file streams to the API.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func runImport(args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	tmpl := fs.String("template", "", "template code (required)")
	file := fs.String("file", "", "CSV, JSON or NDJSON file (required)")
	auth := fs.String("auth-value", "", "value of the template's auth header")
	extra := fs.String("extra", "", "extra string or JSON passed to every page")
	wait := fs.Bool("wait", false, "follow the upload until every page is delivered or failed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tmpl == "" || *file == "" {
		return errors.New("import needs -template and -file")
	}
	f, err := os.Open(*file)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	src := &countingReader{r: f}
	go func() {
		err := func() error {
			for k, v := range map[string]string{"template": *tmpl, "authHeaderValue": *auth, "extra": *extra} {
				if v != "" {
					if err := mw.WriteField(k, v); err != nil {
						return err
					}
				}
			}
			part, err := mw.CreateFormFile("file", filepath.Base(*file))
			if err != nil {
				return err
			}
			if _, err := io.Copy(part, src); err != nil {
				return err
			}
			return mw.Close()
		}()
		pw.CloseWithError(err)
	}()
	done := make(chan struct{})
	go progress(done, src, st.Size())
	data, err := call(ctx, http.MethodPost, "/v1/imports", mw.FormDataContentType(), pr)
	close(done)
	if err != nil {
		return err
	}
	printJSON(data)
	if !*wait {
		return nil
	}
	var acc struct{ UploadID string }
	if err := json.Unmarshal(data, &acc); err != nil {
		return err
	}
	return follow(ctx, acc.UploadID)
}

func progress(done <-chan struct{}, c *countingReader, total int64) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			fmt.Fprintf(os.Stderr, "\ruploaded %s of %s\n", size(c.n.Load()), size(total))
			return
		case <-t.C:
			pct := 100.0
			if total > 0 {
				pct = float64(c.n.Load()) * 100 / float64(total)
			}
			bar := strings.Repeat("#", int(pct/5)) + strings.Repeat(".", 20-int(pct/5))
			fmt.Fprintf(os.Stderr, "\r[%s] %5.1f%% %s", bar, pct, size(c.n.Load()))
		}
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
