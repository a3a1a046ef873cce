package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		ct, name string
		want     Format // "" means an error
	}{
		{"text/csv", "", CSV},
		{"text/csv; charset=utf-8", "x.json", CSV},
		{"TEXT/CSV", "", CSV},
		{"application/csv", "data", CSV},
		{"application/vnd.ms-excel", "data.csv", CSV},
		{"application/vnd.ms-excel", "data.xls", ""},
		{"", "legacy.XLS", ""},
		{"text/tab-separated-values", "", TSV},
		{"", "data.tsv", TSV},
		{"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "", XLSX},
		{"application/octet-stream", "Book1.xlsx", XLSX},
		{"application/zip", "Book1.xlsx", XLSX},
		{"application/x-zip-compressed", "data.csv", CSV},
		{"application/json", "", JSONArray},
		{"Application/JSON; charset=UTF-8", "a.ndjson", JSONArray},
		{"application/x-ndjson", "", NDJSON},
		{"application/ndjson", "", NDJSON},
		{"application/jsonl", "", NDJSON},
		{"application/x-jsonlines", "", NDJSON},
		{"", "data.csv", CSV},
		{"", "DATA.CSV", CSV},
		{"application/octet-stream", "dir/data.json", JSONArray},
		{"text/plain", `C:\up\data.ndjson`, NDJSON},
		{"text/plain; charset=us-ascii", "data.jsonl", NDJSON},
		{"", "data.JsonL", NDJSON},
		{"text/plain", "", ""},
		{"text/plain", "data.txt", ""},
		{"", "", ""},
		{"", "csv", ""},
		{"", "data.csv.gz", ""},
		{"application/xml", "data.csv", ""},
		{"image/png", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.ct+"|"+tc.name, func(t *testing.T) {
			got, err := DetectFormat(tc.ct, tc.name)
			if tc.want == "" {
				if !errors.Is(err, ErrUnknownFormat) {
					t.Fatalf("got %q, %v; want an error wrapping ErrUnknownFormat", got, err)
				}
				if tc.ct != "" && !strings.Contains(err.Error(), tc.ct) {
					t.Errorf("error %q does not name the content type", err)
				}
				if tc.name != "" && !strings.Contains(err.Error(), tc.name) && strings.HasPrefix(tc.ct, "text/plain") {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestNewReaderUnknownFormat(t *testing.T) {
	_, err := NewReader("xml", strings.NewReader(""), Limits{})
	if !errors.Is(err, ErrUnknownFormat) {
		t.Fatalf("got %v, want ErrUnknownFormat", err)
	}
}

func TestParseErrorString(t *testing.T) {
	tests := []struct {
		e    ParseError
		want string
	}{
		{ParseError{Line: 12, Record: 11, Msg: "unterminated quoted field"}, "line 12: record 11: unterminated quoted field"},
		{ParseError{Line: 3, Offset: 57, Record: 2, Msg: "bad"}, "line 3, byte 57: record 2: bad"},
		{ParseError{Offset: 5, Msg: "bad"}, "byte 5: bad"},
		{ParseError{Msg: "file has no header row"}, "file has no header row"},
		{ParseError{Record: 4, Msg: "bad"}, "record 4: bad"},
	}
	for _, tc := range tests {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

// marshalString is the reference: encoding/json with HTML escaping off.

func TestCompactObject(t *testing.T) {
	tests := []struct {
		name, in, want, err string
		lim                 Limits
	}{
		{name: "simple", in: `{"b": 1, "a": [1, 2.50, 1e3], "c": {"z": null, "y": true}}`,
			want: `{"b":1,"a":[1,2.50,1e3],"c":{"z":null,"y":true}}`},
		{name: "whitespace", in: " \r\n\t{ \"k\" :\n\"v w\" } \n", want: `{"k":"v w"}`},
		{name: "escapes kept", in: `{"a\"b" : "x\\\" y\n\u00e9 <>&"}`, want: `{"a\"b":"x\\\" y\n\u00e9 <>&"}`},
		{name: "empty", in: `{}`, want: `{}`},
		{name: "invalid utf8", in: "{\"k\": \"a\xffb\"}", want: `{"k":"a\ufffdb"}`},
		{name: "duplicate keys kept", in: `{"a":1,"a":2}`, want: `{"a":1,"a":2}`},
		{name: "array", in: `[{"a":1}]`, err: "record must be a JSON object, not an array"},
		{name: "string", in: ` "x"`, err: "record must be a JSON object, not a string"},
		{name: "number", in: `12`, err: "record must be a JSON object, not a number"},
		{name: "null", in: `null`, err: "record must be a JSON object, not null"},
		{name: "bool", in: `true`, err: "record must be a JSON object, not a boolean"},
		{name: "blank", in: `  `, err: "byte 2: invalid JSON: unexpected end of JSON input"},
		{name: "syntax", in: `{"a" 1}`, err: "byte 5: invalid JSON: invalid character '1' after object key"},
		{name: "trailing", in: `{"a":1} {}`, err: "byte 8: invalid JSON: invalid character '{' after top-level value"},
		{name: "truncated", in: `{"a":`, err: "invalid JSON: unexpected end of JSON input"},
		{name: "fields limit", in: `{"a":1,"b":{"x":1,"y":2,"z":3},"c":3}`, lim: Limits{MaxFields: 2},
			err: "record has 3 fields, over the limit of 2 fields"},
		{name: "fields limit nested ok", in: `{"a":1,"b":{"x":1,"y":2,"z":3}}`, lim: Limits{MaxFields: 2},
			want: `{"a":1,"b":{"x":1,"y":2,"z":3}}`},
		{name: "size limit", in: `{"a": "0123456789"}`, lim: Limits{MaxRecordBytes: 16},
			err: "record is 18 bytes, over the limit of 16 bytes"},
		{name: "size limit whitespace ok", in: `{ "a" : "012345678" }`, lim: Limits{MaxRecordBytes: 17},
			want: `{"a":"012345678"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := []byte("prefix")
			got, err := CompactObject(dst, []byte(tc.in), tc.lim)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %s, %v; want error %q", got, err, tc.err)
				}
				if string(got) != "prefix" {
					t.Errorf("dst changed on error: %q", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix"+tc.want {
				t.Errorf("got %s, want prefix%s", got, tc.want)
			}
		})
	}
}

func TestCompactValidStrings(t *testing.T) {
	// Quotes preceded by backslashes: only an odd run escapes.
	in := `{ "a\\" : "b\\\"c" , "d\\\\" : [ "\"" ] }`
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(in)); err != nil {
		t.Fatal(err)
	}
	got, keys := compactValid(nil, []byte(in))
	if string(got) != want.String() || keys != 2 {
		t.Errorf("got %s (%d keys), want %s (2 keys)", got, keys, want.String())
	}
}

// TestReadError checks that an error of the underlying reader is wrapped, not
// turned into a *ParseError, and that it is sticky.
func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	heads := map[Format][]string{
		CSV:       {"", "\xEF\xBB\xBF", "a\n", "a\n1\n", "a\n\"x"},
		JSONArray: {"", "\xEF\xBB\xBF", " [", "[{\"a\":1},", "[{\"a\":1}]"},
		NDJSON:    {"", "\xEF\xBB\xBF", "{\"a\":1}\n", "{\"a\":"},
	}
	for f, hs := range heads {
		for _, head := range hs {
			t.Run(string(f)+"/"+head, func(t *testing.T) {
				in := io.MultiReader(strings.NewReader(head), iotest.ErrReader(boom))
				_, err := readAll(t, f, in, Limits{})
				var pe *ParseError
				if !errors.Is(err, boom) || errors.As(err, &pe) {
					t.Fatalf("got %v, want an error wrapping boom", err)
				}
			})
		}
	}
}

func TestNegativeLimits(t *testing.T) {
	got := Limits{MaxRecordBytes: -1, MaxFields: -5}.withDefaults()
	want := Limits{DefaultMaxRecordBytes, DefaultMaxFields, DefaultMaxFieldBytes}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}
