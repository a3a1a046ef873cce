package records

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// scanSeeds are inputs at the edges of JSON's grammar.
var scanSeeds = []string{
	`{}`, `[]`, `{"a":1}`, `[1,2,3]`, `"x"`, `0`, `-0`, `-`, `01`, `1.`, `1.5`, `.5`, `1e5`, `1E+5`, `1e-`, `1e`, `-1.25e-10`,
	`true`, `false`, `null`, `tru`, `nul`, `nulx`, `trUe`, `falsey`, `1x`, `1 2`, `{} `, "[1 , 2 ]\n",
	`{"a" : [ {"b":null} , "c" ] }`, `{"a":1,}`, `{"a":1 "b":2}`, `{"a" 1}`, `{,}`, `{"a":}`, `[,1]`, `[1,]`, `[1 2]`,
	`{1:2}`, `{"a":1]`, `[1}`, `"\u00e9\ud83d\ude00"`, `"\u00g0"`, `"\x"`, `"\"\\\/\b\f\n\r\t"`, "\"a\x01b\"", "\"a\x7fb\"",
	"\"\xff\xfe invalid utf-8\"", `"unterminated`, `"esc\`, `"\u12`, "{\"a\":\"\t\"}", `[[[[[[]]]]]]`, `{"a":{"b":{"c":[]}}}`,
	" 1", "\t{}", "\xef\xbb\xbf{}", ``, `}`, `]`, `,`, `:`, `+1`, `Infinity`, `NaN`, `'a'`,
}

// checkScan compares ScanValue with encoding/json on src and on each of its
// prefixes read as a stream that has not ended.
func checkScan(t *testing.T, src []byte) {
	t.Helper()
	if len(src) > 0 && isSpace(src[0]) {
		src = src[skipSpace(src):] // ScanValue starts at the value
	}
	n, err := ScanValue(src, true)
	wholeValid := json.Valid(src)
	switch {
	case err == nil:
		if n <= 0 || n > len(src) || !json.Valid(src[:n]) {
			t.Fatalf("ScanValue(%q) = %d, but json.Valid(%q) is false", src, n, src[:n])
		}
		if rest := src[n:]; wholeValid != (skipSpace(rest) == len(rest)) {
			t.Fatalf("ScanValue(%q) = %d; json.Valid of the whole = %v", src, n, wholeValid)
		}
	case errors.Is(err, ErrIncomplete):
		t.Fatalf("ScanValue(%q, atEOF) = ErrIncomplete", src)
	default:
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("ScanValue(%q) error %v (%T)", src, err, err)
		}
		if wholeValid {
			t.Fatalf("ScanValue(%q) = %v, but json.Valid is true", src, err)
		}
		// encoding/json finds the same fault at the same byte, or the input
		// ends inside the value.
		off, msg := syntaxFault(src)
		if _, errMore := ScanValue(src, false); errors.Is(errMore, ErrIncomplete) {
			off, msg = int64(len(src)), "invalid JSON: unexpected end of JSON input"
		}
		if pe.Offset != off || pe.Msg != msg {
			t.Fatalf("ScanValue(%q) fault at %d %q; encoding/json: at %d %q", src, pe.Offset, pe.Msg, off, msg)
		}
	}
	// A prefix either is known to be incomplete or gives the same answer:
	// what ScanValue says never depends on how the input was cut. A fault at
	// a byte (not at the end of the input) is known once that byte is read,
	// and a value once the byte after it is.
	_, errMore := ScanValue(src, false)
	byteFault := err != nil && !errors.Is(errMore, ErrIncomplete)
	for k := 0; k <= len(src); k++ {
		nk, errk := ScanValue(src[:k], false)
		if errors.Is(errk, ErrIncomplete) {
			if err == nil && k > n || byteFault && k > int(err.(*ParseError).Offset) {
				t.Fatalf("ScanValue(%q, more) = incomplete, but the answer is known by byte %d", src[:k], k)
			}
			continue
		}
		if err == nil && (errk != nil || nk != n) || err != nil && (errk == nil || errk.Error() != err.Error()) {
			t.Fatalf("ScanValue(%q, more) = %d, %v; of the whole %q: %d, %v", src[:k], nk, errk, src, n, err)
		}
	}
}

func TestScanValueMatchesEncodingJSON(t *testing.T) {
	for _, s := range scanSeeds {
		checkScan(t, []byte(s))
	}
}

func TestScanValueExamples(t *testing.T) {
	for _, tc := range []struct {
		in    string
		atEOF bool
		n     int
		err   string // "" none, "incomplete", or in the message
	}{
		{`{"a":[1,{"b":null}]} trailing`, false, 20, ""},
		{`"abc" ,`, false, 5, ""},
		{`123`, false, 0, "incomplete"}, // more digits may follow
		{`123`, true, 3, ""},
		{`123,`, false, 3, ""},
		{`[123`, true, 0, "unexpected end of JSON input"},
		{`{"a":1`, false, 0, "incomplete"},
		{`{"a":1,}`, false, 0, "invalid character '}' looking for beginning of object key string"},
		{`[1,,2]`, false, 0, "invalid character ',' looking for beginning of value"},
		{"\"tab\there\"", false, 0, "invalid character '\\t' in string literal"},
	} {
		n, err := ScanValue([]byte(tc.in), tc.atEOF)
		switch {
		case tc.err == "" && (err != nil || n != tc.n):
			t.Errorf("ScanValue(%q, %v) = %d, %v; want %d", tc.in, tc.atEOF, n, err, tc.n)
		case tc.err == "incomplete" && !errors.Is(err, ErrIncomplete):
			t.Errorf("ScanValue(%q, %v) = %d, %v; want ErrIncomplete", tc.in, tc.atEOF, n, err)
		case tc.err != "" && tc.err != "incomplete" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ScanValue(%q, %v) = %d, %v; want %q", tc.in, tc.atEOF, n, err, tc.err)
		}
	}
}

// Nesting is limited as encoding/json limits it: 10000 levels pass, 10001 do not.
func TestScanValueDepth(t *testing.T) {
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		for _, open := range []string{"[", `{"k":`} {
			closing := map[string]string{"[": "]", `{"k":`: "}"}[open]
			src := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(closing, depth))
			n, err := ScanValue(src, true)
			if valid := json.Valid(src); (err == nil) != valid || valid && n != len(src) {
				t.Fatalf("depth %d of %q: ScanValue = %d, %v; json.Valid = %v", depth, open, n, err, valid)
			}
			if err != nil && !strings.Contains(err.Error(), "exceeded max depth") {
				t.Fatalf("depth %d: %v", depth, err)
			}
		}
	}
}

func FuzzScanValue(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 4096 {
			return // the prefix check is quadratic
		}
		checkScan(t, src)
		// Whatever ScanValue accepts, CompactValidObject handles like CompactObject.
		if n, err := ScanValue(src[skipSpace(src):], true); err == nil {
			raw := src[skipSpace(src):][:n]
			a, errA := CompactValidObject(nil, raw, smallLimits())
			b, errB := CompactObject(nil, raw, smallLimits())
			if !bytes.Equal(a, b) || (errA == nil) != (errB == nil) {
				t.Fatalf("%q: CompactValidObject = %q, %v; CompactObject = %q, %v", raw, a, errA, b, errB)
			}
		}
	})
}
