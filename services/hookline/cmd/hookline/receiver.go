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
	"sync"
	"syscall"
	"time"
)

// runReceiver is a webhook endpoint for trying hookline out: it prints every
// page it receives and answers 200 (or 500 for the first -fail requests of
// each page, to watch retries).
func runReceiver(args []string) error {
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	fail := fs.Int("fail", 0, "answer 500 to the first N requests of each page")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var mu sync.Mutex
	seen := map[string]int{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<20))
		var p struct {
			Template     string          `json:"template"`
			UploadID     string          `json:"uploadId"`
			Data         json.RawMessage `json:"data"`
			TotalRecords int             `json:"totalRecords"`
			TotalPages   int             `json:"totalPages"`
			Page         int             `json:"page"`
			PageSize     int             `json:"pageSize"`
			Extra        json.RawMessage `json:"extra"`
		}
		_ = json.Unmarshal(body, &p)
		id := r.Header.Get("webhook-id")
		mu.Lock()
		seen[id]++
		n := seen[id]
		mu.Unlock()
		status := http.StatusOK
		if n <= *fail {
			status = http.StatusInternalServerError
		}
		fmt.Printf("%s %s webhook-id=%s template=%s page %d/%d records=%d total=%d extra=%s attempt=%d → %d\n",
			time.Now().Format("15:04:05.000"), r.Method, id, p.Template, p.Page, p.TotalPages, p.PageSize, p.TotalRecords, p.Extra, n, status)
		if len(p.Data) > 0 {
			first := p.Data
			if len(first) > 200 {
				first = append(first[:200:200], "…"...)
			}
			fmt.Printf("    data: %s\n", first)
		}
		w.WriteHeader(status)
	})
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "receiver listening on http://%s\n", l.Addr())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
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
