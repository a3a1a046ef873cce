package records

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"unicode/utf8"
)

// smallLimits make the fuzzers reach the limits with small inputs.
func smallLimits() Limits {
	return Limits{MaxRecordBytes: 64, MaxFields: 3, MaxFieldBytes: 8}
}

// checkAny reads data and checks what must hold for any input: no panic, at
// most one record per byte, every record a valid JSON object within the
// limits, and the only errors *ParseError.
func checkAny(t *testing.T, f Format, data []byte, lim Limits) {
	r, err := NewReader(f, bytes.NewReader(data), lim)
	if err != nil {
		t.Fatal(err)
	}
	max := len(data) + 1
	for n := 0; ; n++ {
		rec, err := r.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParseError", err, err)
			}
			if pe.Msg == "" || pe.Line < 0 || pe.Offset < 0 || pe.Offset > int64(len(data)) || pe.Record < 0 || pe.Record > int64(n+1) {
				t.Fatalf("bad error %#v after %d records", pe, n)
			}
			return
		}
		if n >= max {
			t.Fatalf("more than %d records from %d bytes", max, len(data))
		}
		if len(rec) > lim.withDefaults().MaxRecordBytes {
			t.Fatalf("record of %d bytes is over the limit: %s", len(rec), rec)
		}
		checkObject(t, rec)
	}
}

// checkObject checks that rec is compact, valid UTF-8 JSON for an object.
func checkObject(t *testing.T, rec []byte) {
	t.Helper()
	if !json.Valid(rec) || !utf8.Valid(rec) {
		t.Fatalf("record is not valid JSON/UTF-8: %q", rec)
	}
	d := json.NewDecoder(bytes.NewReader(rec))
	d.UseNumber() // numbers stay as written, 1e999 included
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		t.Fatalf("record %q does not decode to an object: %v", rec, err)
	}
	var c bytes.Buffer
	json.Compact(&c, rec)
	if !bytes.Equal(c.Bytes(), rec) {
		t.Fatalf("record is not compact: %q", rec)
	}
}

// sameJSON checks that got is the compact form of want (for valid UTF-8), or
// decodes to the same value (invalid UTF-8, which got must have replaced).
func sameJSON(t *testing.T, got string, want []byte) {
	t.Helper()
	if utf8.Valid(want) {
		var c bytes.Buffer
		if err := json.Compact(&c, want); err != nil {
			t.Fatal(err)
		}
		if got != c.String() {
			t.Fatalf("got %s, want %s", got, c.Bytes())
		}
		return
	}
	if !utf8.ValidString(got) {
		t.Fatalf("got invalid UTF-8: %q", got)
	}
	decode := func(b []byte) any {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("decoding %q: %v", b, err)
		}
		return v
	}
	if g, w := decode([]byte(got)), decode(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("got %q (%v), want %q (%v)", got, g, want, w)
	}
}

// topKeys counts the top-level keys of a valid JSON object.
func topKeys(raw []byte) int {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.Token()
	n := 0
	for d.More() {
		d.Token()
		var v json.RawMessage
		d.Decode(&v)
		n++
	}
	return n
}

// compareRef reads data with default limits and compares with the expected
// records and the record of the expected error (-1: none).
func compareRef(t *testing.T, f Format, data []byte, want []string, wantErr int64) {
	t.Helper()
	got, err := readAll(t, f, bytes.NewReader(data), Limits{})
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d (err %v)\n got %q\nwant %q", len(got), len(want), err, got, want)
	}
	for i := range got {
		sameJSON(t, got[i], []byte(want[i]))
	}
	if wantErr < 0 {
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
		return
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("got error %v, want a *ParseError at record %d", err, wantErr)
	}
	if pe.Record != wantErr {
		t.Fatalf("got error at record %d (%v), want %d", pe.Record, err, wantErr)
	}
}

func refString(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// refCSV parses data with encoding/csv and json.Encoder.
// It takes valid UTF-8 only (decodeText is checked by FuzzDialect) and
// the delimiter detectDelimiter picks (TestDelimiterDetection checks it).
func refCSV(data []byte) ([]string, int64) {
	data = bytes.TrimPrefix(data, []byte(bom))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = detectDelimiter(data)
	cr.FieldsPerRecord = -1
	hdr, err := cr.Read()
	if err != nil || len(hdr) > DefaultMaxFields {
		return nil, 0
	}
	keys := make([]string, len(hdr))
	seen := map[string]bool{}
	for i, h := range hdr {
		keys[i] = refString(h)
		if h == "" || len(h) > DefaultMaxFieldBytes || seen[keys[i]] {
			return nil, 0
		}
		seen[keys[i]] = true
	}
	var recs []string
	for n := int64(1); ; n++ {
		row, err := cr.Read()
		if err == io.EOF {
			return recs, -1
		}
		if err != nil || len(row) != len(hdr) {
			return recs, n
		}
		var b bytes.Buffer
		b.WriteByte('{')
		for i, v := range row {
			if len(v) > DefaultMaxFieldBytes {
				return recs, n
			}
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s:%s", keys[i], refString(v))
		}
		b.WriteByte('}')
		if b.Len() > DefaultMaxRecordBytes {
			return recs, n
		}
		recs = append(recs, b.String())
	}
}

func FuzzCSV(f *testing.F) {
	for _, s := range []string{
		"", "a", "a,b\n1,2\n", "zeta,alpha\nz,a\n\n", "\xEF\xBB\xBFid\n1\n", "a,b\r\n\"x,\"\"y\"\"\r\nz\",2\r\n",
		"a,b\n1,\"x\n", "a,b\n1,\"x\"y\n", "a,,b\n", "a,a\n", "a,b\n1,2,3\n", "a\n\xff\x01\t\"\n",
		"a,b\n\"\",\"\"\"\"\n", "k\n<>&\u2028é\n", "a,b\n1,\"x\"\"", "\"a\nb\",c\n1,2\n", "a\n\"\r\n\r\n",
		"a,b,c,d\n1,2,3,4\n", "a,b\n123456789,1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAny(t, CSV, data, Limits{})
		checkAny(t, CSV, data, smallLimits())
		if utf8.Valid(data) {
			want, wantErr := refCSV(data)
			compareRef(t, CSV, data, want, wantErr)
		}
	})
}

// refArray parses data with json.Unmarshal.
func refArray(data []byte) ([]string, int64) {
	data = bytes.TrimPrefix(data, []byte(bom))
	var elems []json.RawMessage
	i := skipSpace(data)
	if i == len(data) || data[i] != '[' || json.Unmarshal(data, &elems) != nil {
		return nil, -2 // some error, record unknown
	}
	var recs []string
	for n, e := range elems {
		if e[0] != '{' || topKeys(e) > DefaultMaxFields {
			return recs, int64(n + 1)
		}
		recs = append(recs, string(e))
	}
	return recs, -1
}

func FuzzJSONArray(f *testing.F) {
	for _, s := range []string{
		"", "[]", " [ ] ", `[{"b":1,"a":[1,2.50,{"x":null}]}]`, "\xEF\xBB\xBF[{}]", "[\r\n{\"a\":\"x\\n\\u00e9\"},\r\n{}\r\n]\r\n",
		`[{"a":1},5]`, `[{"a":1} {"b":2}]`, `[{"a":1},]`, `[{"a":1}}`, `[{}] x`, `[{}`, `[{"a":`, `{"a":1}`, `null`,
		"[{\"k\":\"\xff\"}]", `[[]]`, `[{"a":1,"a":2}]`, `[{"a":1e999}]`, `[{"a":"\ud800"}]`, "[{\"a\":1,\"b\":2,\"c\":3,\"d\":4}]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAny(t, JSONArray, data, Limits{})
		checkAny(t, JSONArray, data, smallLimits())
		want, wantErr := refArray(data)
		if wantErr == -2 {
			// Invalid: whatever came before, it must end in a *ParseError.
			_, err := readAll(t, JSONArray, bytes.NewReader(data), Limits{})
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("json.Unmarshal rejects %q, the reader says %v", data, err)
			}
			return
		}
		compareRef(t, JSONArray, data, want, wantErr)
	})
}

// refNDJSON splits data into lines and checks each with json.Valid.
func refNDJSON(data []byte) ([]string, int64) {
	data = bytes.TrimPrefix(data, []byte(bom))
	var recs []string
	n := int64(0)
	for _, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.Trim(line, " \t\r")) == 0 {
			continue
		}
		n++
		i := skipSpace(line)
		if !json.Valid(line) || line[i] != '{' || topKeys(line) > DefaultMaxFields {
			return recs, n
		}
		recs = append(recs, string(line))
	}
	return recs, -1
}

func FuzzNDJSON(f *testing.F) {
	for _, s := range []string{
		"", "\n", `{"b":1,"a":2}`, "{\"a\":1}\r\n\n  \n{\"b\":[1,2.50]}\n", "\xEF\xBB\xBF{}\n", `{"a":1} x`, "{\"a\":\n1}",
		"[]\n", "42", "null\n", "{\"k\":\"\xff\"}\n", "{} {}\n", "\t{ \"a\" : { \"b\" : [ ] } }\t\r\n", "{\"a\":1,\"b\":2,\"c\":3,\"d\":4}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkAny(t, NDJSON, data, Limits{})
		checkAny(t, NDJSON, data, smallLimits())
		want, wantErr := refNDJSON(data)
		compareRef(t, NDJSON, data, want, wantErr)
	})
}

func FuzzCompactObject(f *testing.F) {
	for _, s := range []string{
		`{}`, ` { "b" : 1 , "a" : [ 1 , 2.50 ] } `, `[]`, `"x"`, `1`, `null`, `{"a":`, `{"a":1} {}`, "{\"k\":\"\xff\xfe\"}",
		`{"a\\":"\\\"","b":{"c":[{"d":"e"}]}}`, `{"a":1,"b":2,"c":3,"d":4}`, "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, lim := range []Limits{{}, smallLimits()} {
			out, err := CompactObject([]byte("p"), raw, lim)
			i := skipSpace(raw)
			ok := json.Valid(raw) && raw[i] == '{' && topKeys(raw) <= lim.withDefaults().MaxFields
			if err != nil {
				if string(out) != "p" {
					t.Fatalf("dst changed on error: %q", out)
				}
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > int64(len(raw)) {
					t.Fatalf("bad error %#v", err)
				}
				if ok && !bytes.Contains([]byte(pe.Msg), []byte("bytes, over the limit")) {
					t.Fatalf("valid object %q rejected: %v", raw, err)
				}
				continue
			}
			if !ok {
				t.Fatalf("accepted %q: %s", raw, out)
			}
			if len(out)-1 > lim.withDefaults().MaxRecordBytes {
				t.Fatalf("output over the limit: %s", out)
			}
			checkObject(t, out[1:])
			sameJSON(t, string(out[1:]), raw)
		}
	})
}
