package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The file goes up as a multipart body with its Content-Length, not
// chunked, with the fields given and none of the empty ones.
func TestUploadSendsContentLength(t *testing.T) {
	content := bytes.Repeat([]byte("Name;City\nZoë;Köln\n"), 20000)
	path := filepath.Join(t.TempDir(), "kunden.csv")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	type seen struct {
		length   int64
		chunked  bool
		read     int
		fields   map[string]string
		file     []byte
		fileName string
		auth     string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seen{length: r.ContentLength, chunked: len(r.TransferEncoding) > 0, read: len(body),
			fields: map[string]string{}, auth: r.Header.Get("Authorization")}
		r.Body = io.NopCloser(bytes.NewReader(body))
		mr, err := r.MultipartReader()
		if err != nil {
			t.Error(err)
		}
		for mr != nil {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			v, _ := io.ReadAll(p)
			if p.FormName() == "file" {
				s.file, s.fileName = v, p.FileName()
				continue
			}
			s.fields[p.FormName()] = string(v)
		}
		got <- s
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"uploadId":"U1"}`))
	}))
	defer srv.Close()

	var progress bytes.Buffer
	fields := []field{{"template", "T"}, {"authHeaderValue", ""}, {"sheet", "Orders"}, {"delimiter", ";"}}
	data, err := upload(context.Background(), srv.URL, "k-123", fields, path, &progress, false)
	if err != nil || string(data) != `{"uploadId":"U1"}` {
		t.Fatalf("upload: %s, %v", data, err)
	}
	s := <-got
	if s.chunked || s.length != int64(s.read) || s.length <= int64(len(content)) {
		t.Errorf("Content-Length %d, chunked %v, body %d bytes", s.length, s.chunked, s.read)
	}
	if !bytes.Equal(s.file, content) || s.fileName != "kunden.csv" || s.auth != "Bearer k-123" {
		t.Errorf("file %d bytes named %q, auth %q", len(s.file), s.fileName, s.auth)
	}
	if len(s.fields) != 3 || s.fields["template"] != "T" || s.fields["sheet"] != "Orders" || s.fields["delimiter"] != ";" {
		t.Errorf("fields %v", s.fields)
	}
	// Not a terminal: plain lines, the last one at 100 %.
	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "uploaded ") || !strings.HasSuffix(last, "(100%)") || strings.Contains(progress.String(), "\r") {
		t.Errorf("progress %q", progress.String())
	}

	// On a terminal, a progress bar.
	progress.Reset()
	if _, err := upload(context.Background(), srv.URL, "k-123", fields, path, &progress, true); err != nil {
		t.Fatal(err)
	}
	<-got
	if out := progress.String(); !strings.Contains(out, "uploading") || !strings.Contains(out, "100%") {
		t.Errorf("progress bar %q", out)
	}
}
