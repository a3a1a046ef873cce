package ingest

import (
	"errors"
	"net/url"
	"testing"

	"github.com/hookline/hookline/pkg/tracker"
)

func TestListParams(t *testing.T) {
	for _, tc := range []struct {
		query string
		limit int
		field string // "" when valid
	}{
		{"", 100, ""},
		{"limit=1", 1, ""},
		{"limit=1000", 1000, ""},
		{"limit=0", 0, "limit"},
		{"limit=1001", 0, "limit"},
		{"limit=-5", 0, "limit"},
		{"limit=ten", 0, "limit"},
		{"limit=", 0, "limit"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			limit, _, err := listParams(q)
			if tc.field == "" {
				if err != nil || limit != tc.limit {
					t.Fatalf("limit = %d, %v; want %d", limit, err, tc.limit)
				}
				return
			}
			assertBadField(t, err, tc.field)
		})
	}
}

func assertBadField(t *testing.T, err error, field string) {
	t.Helper()
	var api *APIError
	if !errors.As(err, &api) || api.Status != 400 || api.Field != field {
		t.Fatalf("error = %v, want a 400 naming %s", err, field)
	}
}

func TestCursorsRoundTrip(t *testing.T) {
	pos := &tracker.UploadPos{CreatedAt: 1_700_000_000_123, ID: "01J0000000000000000000000A"}
	got, err := parseUploadsCursor(uploadsCursor(pos))
	if err != nil || *got != *pos {
		t.Fatalf("uploads cursor = %+v, %v", got, err)
	}
	n, err := parseUploadListCursor(uploadListCursor("attempts", "U1", 42), "attempts", "U1")
	if err != nil || n != 42 {
		t.Fatalf("attempts cursor = %d, %v", n, err)
	}
	code, err := parseTemplatesCursor(templatesCursor("CUSTOMERS"))
	if err != nil || code != "CUSTOMERS" {
		t.Fatalf("templates cursor = %q, %v", code, err)
	}
	if p, err := parseUploadsCursor(""); p != nil || err != nil {
		t.Fatalf("no cursor = %+v, %v", p, err)
	}
}

func TestBadCursors(t *testing.T) {
	attempts := uploadListCursor("attempts", "U1", 3)
	for name, parse := range map[string]func() error{
		"not base64":                  func() error { _, err := parseUploadsCursor("%%%"); return err },
		"not a cursor":                func() error { _, err := parseUploadsCursor("aGVsbG8"); return err },
		"another list's":              func() error { _, err := parseUploadsCursor(attempts); return err },
		"another upload's":            func() error { _, err := parseUploadListCursor(attempts, "attempts", "U2"); return err },
		"attempts cursor as failures": func() error { _, err := parseUploadListCursor(attempts, "failures", "U1"); return err },
		"bad number":                  func() error { _, err := parseUploadsCursor(encodeCursor("uploads", "x", "U1")); return err },
		"negative": func() error {
			_, err := parseUploadListCursor(encodeCursor("attempts", "U1", "-1"), "attempts", "U1")
			return err
		},
		"bad code":    func() error { _, err := parseTemplatesCursor(encodeCursor("templates", "a b")); return err },
		"extra field": func() error { _, err := parseTemplatesCursor(encodeCursor("templates", "A", "B")); return err },
	} {
		t.Run(name, func(t *testing.T) { assertBadField(t, parse(), "cursor") })
	}
}
