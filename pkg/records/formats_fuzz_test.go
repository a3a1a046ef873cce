package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"unicode/utf8"
)

// FuzzDialect reads any bytes as a CSV file as Open does (encoding and
// delimiter detected): no panic, valid records, only *ParseError, and no
// byte ever replaced by U+FFFD, which only a UTF-16 file (unpaired
// surrogates) or the input itself may bring.
func FuzzDialect(f *testing.F) {
	for _, s := range []string{
		"a;b\n1;2\n", "a\tb\n1\t2\n", "a|b\n1|2\n", "\xEF\xBB\xBFa;b\n\xe9;2\n", "\xFF\xFEa\x00\n\x00b\x00\n\x00",
		"\xFE\xFF\x00a\x00\n\x00b\x00\n", "k\n\x80\x81\x9d\xff\n", "\"a;b\",c\n1,2\n", "a\n\xc3", "a\n\xe2\x82",
	} {
		f.Add([]byte(s), byte(0))
	}
	f.Add([]byte("a;b,c\n1;2,3\n"), byte(','))
	f.Fuzz(func(t *testing.T, data []byte, delim byte) {
		opts := Options{Limits: smallLimits()}
		if ValidDelimiter(rune(delim)) {
			opts.Delimiter = rune(delim)
		}
		for _, o := range []Options{opts, {Delimiter: opts.Delimiter}} {
			rd, err := Open(bytes.NewReader(data), "text/csv", "", o)
			if err != nil {
				var fe *FormatError
				if !errors.As(err, &fe) {
					t.Fatalf("Open: %v", err)
				}
				return // a ZIP or OLE2 signature
			}
			for n := 0; ; n++ {
				rec, err := rd.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					var pe *ParseError
					if !errors.As(err, &pe) {
						t.Fatalf("error %v (%T) is not a *ParseError", err, err)
					}
					break
				}
				if n > len(data) {
					t.Fatalf("more records than bytes")
				}
				checkObject(t, rec)
				utf16 := bytes.HasPrefix(data, []byte("\xFF\xFE")) || bytes.HasPrefix(data, []byte("\xFE\xFF"))
				if !utf16 && !bytes.Contains(data, []byte("\uFFFD")) &&
					(bytes.Contains(rec, []byte(`\ufffd`)) || bytes.ContainsRune(rec, utf8.RuneError)) {
					t.Fatalf("record %q has U+FFFD that %q does not", rec, data)
				}
			}
		}
	})
}

// FuzzXLSX reads any bytes as an XLSX file: no panic; records valid JSON
// objects; errors of the kinds Open documents.
func FuzzXLSX(f *testing.F) {
	f.Add(testWorkbook(f))
	f.Add([]byte("PK\x05\x06" + string(make([]byte, 18))))
	f.Add([]byte("PK\x03\x04"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		rd, err := Open(bytes.NewReader(data), "", "f.xlsx", Options{TempDir: dir, MaxUnzipBytes: 1 << 20})
		var fe *FormatError
		var pe *ParseError
		var le *LimitError
		if err != nil {
			if !errors.As(err, &fe) && !errors.As(err, &pe) && !errors.As(err, &le) {
				t.Fatalf("Open: %v (%T)", err, err)
			}
			return
		}
		defer func() { _ = rd.Close() }()
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				if !errors.As(err, &pe) {
					t.Fatalf("Next: %v (%T)", err, err)
				}
				return
			}
			checkObject(t, rec)
		}
	})
}

// FuzzCompilePlan compiles any record format and applies what compiles to
// rows: no panic, and every record valid JSON of the format's shape.
func FuzzCompilePlan(f *testing.F) {
	for _, s := range []string{
		`{"email":"{{Email Address}}","age":"{{Age | number}}","profile":{"name":"{{First}} {{Last}}"},"source":"import"}`,
		`{"a":["{{x|json}}",1,null,true,{"b":"{{ y | boolean }}"}]}`, `{"a":"{{"}`, `{"a":"}}{{x}}{{"}`, `{"a":"{{|number}}"}`,
		`{"a":"{{x|date}}"}`, `{"a":"pre {{x | number}}"}`, `[]`, `{"a":1,"a":2}`, `{"a":"\u00e9{{x}}\n"}`, `{}`,
	} {
		f.Add([]byte(s), "1", "x y")
	}
	f.Fuzz(func(t *testing.T, format []byte, v1, v2 string) {
		plan, err := CompilePlan(format)
		if err != nil {
			var pe *PlanError
			if !errors.As(err, &pe) || pe.Msg == "" {
				t.Fatalf("error %v (%T) is not a *PlanError", err, err)
			}
			return
		}
		if !json.Valid(format) {
			t.Fatalf("compiled invalid JSON %q", format)
		}
		names := append([]string(nil), plan.Columns()...)
		bp, err := plan.bind(names)
		if err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(names))
		for i := range row {
			row[i] = []string{v1, v2}[i%2]
		}
		out, _, err := bp.appendRow(nil, row)
		if err != nil {
			var ce *ColumnError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T) is not a *ColumnError", err, err)
			}
			return
		}
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("format %q, row %q: record %q is not valid JSON", format, row, out)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("record %q is not an object: %v", out, err)
		}
		// With no placeholders the record is the format itself.
		if len(names) == 0 {
			var want, got any
			_ = json.Unmarshal(format, &want)
			_ = json.Unmarshal(out, &got)
			if !jsonEqual(want, got) {
				t.Fatalf("record %q, want the format %q", out, format)
			}
		}
	})
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
