package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// -v prints the headers with the auth values masked, and the body's keys;
// -fail-page answers 500 to that page every time.
func TestReceiverVerbose(t *testing.T) {
	var out bytes.Buffer
	rc := &receiver{out: &out, failPage: 2, verbose: true, authHeader: "X-API-KEY", seen: map[string]int{}}
	for page, want := range map[string]int{"1": 200, "2": 500} {
		req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(`{"template":"T","uploadId":"U","data":[{"a":1}],"page":`+page+`}`))
		req.Header.Set("X-Api-Key", "supersecretvalue")
		req.Header.Set("Authorization", "Bearer another-secret")
		req.Header.Set("webhook-id", "U."+page)
		w := httptest.NewRecorder()
		rc.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("page %s answered %d, want %d", page, w.Code, want)
		}
	}
	s := out.String()
	if strings.Contains(s, "supersecretvalue") || strings.Contains(s, "another-secret") {
		t.Fatalf("a secret is printed:\n%s", s)
	}
	for _, want := range []string{"X-Api-Key: supe**** (16 characters)", "Authorization: Bear**** (21 characters)", "Webhook-Id: U.1", "keys template,uploadId,data,page"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
}
