package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
)

// sendBenchBody is a page of 100 small records, as a worker sends it.
func sendBenchBody() []byte {
	data := []byte{'['}
	for i := range 100 {
		if i > 0 {
			data = append(data, ',')
		}
		n := strconv.Itoa(i)
		data = append(data, `{"id":"`+n+`","name":"Customer `+n+`","email":"customer`+n+`@example.com","plan":"pro","seats":"7"}`...)
	}
	data = append(data, ']')
	return AppendBody(nil, Page{Template: "BENCH", UploadID: "01JD0000000000000000000000", Data: data,
		TotalRecords: 5000, TotalPages: 50, Page: 1, PageSize: 100, Extra: []byte(`{"batch":7}`)})
}

// BenchmarkSend measures one webhook request to a loopback endpoint that
// answers 200 at once, from 64 goroutines (a worker's default concurrency):
// "client=webhook" is Client.Send (guard, validation, headers, capped
// response), "client=bare" a plain net/http POST of the same body with the
// same headers, for comparison. The endpoint runs in the same process.
func BenchmarkSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	body := sendBenchBody()
	dest := Destination{URL: srv.URL + "/hook", AuthHeaderName: "X-API-KEY", AuthHeaderValue: "bench-secret-value"}
	procs := runtime.GOMAXPROCS(0)
	parallel := (64 + procs - 1) / procs

	b.Run("client=webhook", func(b *testing.B) {
		c := NewClient(WithGuard(NewGuard(true, nil)))
		defer c.CloseIdleConnections()
		b.SetBytes(int64(len(body)))
		b.SetParallelism(parallel)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if res := c.Send(context.Background(), Request{Destination: dest, ID: "01JD0000000000000000000000.1", Body: body}); !res.Delivered() {
					b.Error(res.Err)
					return
				}
			}
		})
	})
	b.Run("client=bare", func(b *testing.B) {
		tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 64}
		defer tr.CloseIdleConnections()
		hc := &http.Client{Transport: tr}
		b.SetBytes(int64(len(body)))
		b.SetParallelism(parallel)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				req, _ := http.NewRequest(http.MethodPost, dest.URL, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "hookline/bench")
				req.Header.Set("X-API-KEY", dest.AuthHeaderValue)
				req.Header.Set(HeaderWebhookID, "01JD0000000000000000000000.1")
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	})
}
