package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

const receiverUsage = `Usage: hookline receiver [flags]

A webhook endpoint for trying hookline out: it prints every page it receives
and answers 200, or 500 for the first -fail requests of each page, or always
500 for page -fail-page (a page that fails for good: restart the receiver
without it, then retry the upload). -v prints each request's headers, the
value of -auth-header (and Authorization) masked, and the body's size and keys.

Flags:
`

// runReceiver serves the receiver until Ctrl-C.
func runReceiver(args []string) error {
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	fail := fs.Int("fail", 0, "answer 500 to the first N requests of each page")
	failPage := fs.Int("fail-page", 0, "answer 500 to every request of this page")
	verbose := fs.Bool("v", false, "print each request's headers (auth values masked) and a summary of its body")
	authHeader := fs.String("auth-header", "X-API-KEY", "the template's auth header, whose value -v masks")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), receiverUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "receiver listening on http://%s\n", l.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rc := &receiver{out: os.Stdout, fail: *fail, failPage: *failPage, verbose: *verbose, authHeader: *authHeader, seen: map[string]int{}}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// receiver prints the webhook requests it gets and answers them.
type receiver struct {
	out        io.Writer
	fail       int    // 500 for the first fail requests of each page
	failPage   int    // 500 for every request of this page
	verbose    bool   // print headers and a body summary
	authHeader string // masked when printed

	mu   sync.Mutex // guards seen and the output
	seen map[string]int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	var p struct {
		Template     string          `json:"template"`
		Page         int             `json:"page"`
		TotalPages   int             `json:"totalPages"`
		PageSize     int             `json:"pageSize"`
		TotalRecords int             `json:"totalRecords"`
		Data         json.RawMessage `json:"data"`
		Extra        json.RawMessage `json:"extra"`
	}
	_ = json.Unmarshal(body, &p)
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seen[id]++
	n := rc.seen[id]
	status := http.StatusOK
	if n <= rc.fail || (rc.failPage > 0 && p.Page == rc.failPage) {
		status = http.StatusInternalServerError
	}
	fmt.Fprintf(rc.out, "%s %s %s webhook-id=%s template=%s page %d/%d records=%d total=%d extra=%s attempt=%d → %d\n",
		time.Now().Format("15:04:05.000"), r.Method, r.URL.Path, id, p.Template, p.Page, p.TotalPages, p.PageSize, p.TotalRecords, p.Extra, n, status)
	if rc.verbose {
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			for _, v := range r.Header[k] {
				if strings.EqualFold(k, rc.authHeader) || strings.EqualFold(k, "Authorization") {
					v = mask(v)
				}
				fmt.Fprintf(rc.out, "    %s: %s\n", k, v)
			}
		}
		fmt.Fprintf(rc.out, "    body: %s, keys %s\n", size(int64(len(body))), bodyKeys(body))
	}
	if len(p.Data) > 0 {
		first := p.Data
		if len(first) > 200 {
			first = append(first[:200:200], "…"...)
		}
		fmt.Fprintf(rc.out, "    data: %s\n", first)
	}
	w.WriteHeader(status)
	if status != http.StatusOK {
		_, _ = io.WriteString(w, "hookline receiver: failing on purpose\n")
	}
}

// mask keeps the first characters of a secret and says how long it is.
func mask(v string) string {
	keep := min(len(v)/4, 4)
	return v[:keep] + strings.Repeat("*", 4) + fmt.Sprintf(" (%d characters)", len(v))
}

// bodyKeys lists a JSON object's keys in order, or says it is not one.
func bodyKeys(body []byte) string {
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "(not a JSON object)"
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			break
		}
		keys = append(keys, fmt.Sprint(k))
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			break
		}
	}
	return strings.Join(keys, ",")
}
