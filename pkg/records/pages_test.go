package records

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestPager(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ndjson   string
		size     int
		maxBytes int64
		pages    []string
		err      *PageSizeError
	}{
		{"empty", "", 2, 0, nil, nil},
		{"one short page", `{"a":1}`, 2, 0, []string{`[{"a":1}]`}, nil},
		{"full pages and a rest", "{\"a\":1}\n{\"a\":2}\n{\"a\":3}", 2, 0,
			[]string{`[{"a":1},{"a":2}]`, `[{"a":3}]`}, nil},
		{"exactly full", "{\"a\":1}\n{\"a\":2}", 2, 0, []string{`[{"a":1},{"a":2}]`}, nil},
		{"second page too large", "{\"a\":1}\n{\"a\":\"a long value\"}", 1, 12,
			[]string{`[{"a":1}]`}, &PageSizeError{Page: 2, Records: 1, Size: 21, Limit: 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := NewReader(NDJSON, strings.NewReader(tc.ndjson), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			p := NewPager(rd, tc.size, tc.maxBytes)
			var got []string
			records := 0
			for {
				page, n, err := p.Next(nil)
				if errors.Is(err, io.EOF) {
					break
				}
				var size *PageSizeError
				if errors.As(err, &size) {
					if tc.err == nil || *size != *tc.err {
						t.Fatalf("error %+v, want %+v", size, tc.err)
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(page))
				records += n
			}
			if strings.Join(got, " ") != strings.Join(tc.pages, " ") {
				t.Errorf("pages %q, want %q", got, tc.pages)
			}
			if tc.err == nil && (p.Pages() != len(tc.pages) || p.Records() != records) {
				t.Errorf("Pages() %d, Records() %d; want %d, %d", p.Pages(), p.Records(), len(tc.pages), records)
			}
			if _, _, err := p.Next(nil); tc.err == nil && !errors.Is(err, io.EOF) {
				t.Errorf("after the last page: %v, want io.EOF", err)
			}
		})
	}
}
