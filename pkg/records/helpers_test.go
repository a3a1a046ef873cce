package records

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// readAll reads every record of in (copied) until the first error, which it
// returns (nil for io.EOF). It fails the test when the reader does not stop.
func readAll(t testing.TB, f Format, in io.Reader, lim Limits) ([]string, error) {
	t.Helper()
	r, err := NewReader(f, in, lim)
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	var recs []string
	for i := 0; ; i++ {
		if i > 1<<22 {
			t.Fatalf("reader does not stop")
		}
		rec, err := r.Next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			// Errors are sticky.
			if _, err2 := r.Next(); err2 != err {
				t.Errorf("second Next after error: got %v, want %v", err2, err)
			}
			return recs, err
		}
		recs = append(recs, string(rec))
	}
}

// wantPE asserts err is a *ParseError at line and record whose message
// contains msg. line or rec -1 means not checked.
func wantPE(t *testing.T, err error, line, rec int64, msg string) *ParseError {
	t.Helper()
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("got error %v (%T), want a *ParseError", err, err)
	}
	if line >= 0 && pe.Line != line {
		t.Errorf("Line = %d, want %d (%v)", pe.Line, line, err)
	}
	if rec >= 0 && pe.Record != rec {
		t.Errorf("Record = %d, want %d (%v)", pe.Record, rec, err)
	}
	if !strings.Contains(pe.Error(), msg) {
		t.Errorf("error %q does not contain %q", pe.Error(), msg)
	}
	return pe
}

// keysInOrder returns the top-level keys of a JSON object in input order.
func keysInOrder(t testing.TB, rec string) []string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(rec))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("record %s is not an object: %v %v", rec, tok, err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("record %s: %v", rec, err)
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("record %s: %v", rec, err)
		}
	}
	return keys
}

// decodeObj decodes a record into a map, failing the test if it is not a
// valid compact JSON object.
func decodeObj(t testing.TB, rec string) map[string]any {
	t.Helper()
	if !json.Valid([]byte(rec)) {
		t.Fatalf("record is not valid JSON: %q", rec)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(rec), &m); err != nil || m == nil {
		t.Fatalf("record %q does not decode to an object: %v", rec, err)
	}
	return m
}

// genReader generates n lines from line(i) on the fly.
type genReader struct {
	n    int
	i    int
	line func(i int, dst []byte) []byte
	buf  []byte
	read int64
}

func (g *genReader) Read(p []byte) (int, error) {
	for len(g.buf) == 0 {
		if g.i >= g.n {
			return 0, io.EOF
		}
		g.buf = g.line(g.i, g.buf[:0])
		g.i++
	}
	n := copy(p, g.buf)
	g.buf = g.buf[n:]
	g.read += int64(n)
	return n, nil
}

// endless yields head, then body forever (counting what it yields).
type endless struct {
	head, body string
	off        int
	read       int64
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if e.off < len(e.head) {
			c := copy(p[n:], e.head[e.off:])
			e.off += c
			n += c
			continue
		}
		k := (e.off - len(e.head)) % len(e.body)
		c := copy(p[n:], e.body[k:])
		e.off += c
		n += c
	}
	e.read += int64(n)
	return n, nil
}
