package records

import (
	"reflect"
	"strings"
	"testing"
)

type jsonCase struct {
	name    string
	in      string
	lim     Limits
	want    []string
	errLine int64 // with errMsg
	errOff  int64 // -1: not checked
	errRec  int64
	errMsg  string
}

func runJSONCases(t *testing.T, f Format, tests []jsonCase) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, f, strings.NewReader(tc.in), tc.lim)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("records:\n got %q\nwant %q", got, tc.want)
			}
			for _, rec := range got {
				decodeObj(t, rec)
			}
			if tc.errMsg == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			pe := wantPE(t, err, tc.errLine, tc.errRec, tc.errMsg)
			if tc.errOff >= 0 && pe.Offset != tc.errOff {
				t.Errorf("Offset = %d, want %d (%v)", pe.Offset, tc.errOff, err)
			}
		})
	}
}

func TestJSONArray(t *testing.T) {
	runJSONCases(t, JSONArray, []jsonCase{
		{name: "normal", in: `[{"zeta":1,"alpha":"a","mid":null},{"b":true}]`,
			want: []string{`{"zeta":1,"alpha":"a","mid":null}`, `{"b":true}`}},
		{name: "pretty", in: "[\n  {\n    \"z\": 1.50,\n    \"a\": [1, 2, {\"y\": 1e10, \"x\": -0}]\n  },\n  {}\n]\n",
			want: []string{`{"z":1.50,"a":[1,2,{"y":1e10,"x":-0}]}`, `{}`}},
		{name: "numbers exact", in: `[{"big":123456789012345678901234567890,"f":1.000000000000000000001,"e":1E+2}]`,
			want: []string{`{"big":123456789012345678901234567890,"f":1.000000000000000000001,"e":1E+2}`}},
		{name: "strings kept", in: `[{"a\"b":"x\\\" y\n\u00e9 <>& \ud83d\ude00 é"}]`,
			want: []string{`{"a\"b":"x\\\" y\n\u00e9 <>& \ud83d\ude00 é"}`}},
		{name: "invalid utf8", in: "[{\"k\xff\":\"v\xc3\"}]", want: []string{`{"k\ufffd":"v\ufffd"}`}},
		{name: "empty array", in: " [ ] ", want: nil},
		{name: "bom", in: "\xEF\xBB\xBF[{\"a\":1}]", want: []string{`{"a":1}`}},
		{name: "crlf", in: "[\r\n{\"a\":1},\r\n{\"b\":2}\r\n]\r\n", want: []string{`{"a":1}`, `{"b":2}`}},

		{name: "empty", in: "", errLine: 1, errOff: 0, errMsg: "file must be a JSON array of objects, but it is empty"},
		{name: "blank", in: " \n ", errLine: 2, errOff: 3, errMsg: "file must be a JSON array of objects, but it is empty"},
		{name: "object", in: "\n {\"a\":1}", errLine: 2, errOff: 2, errMsg: "file must be a JSON array of objects, not an object"},
		{name: "string", in: `"x"`, errLine: 1, errOff: 0, errMsg: "file must be a JSON array of objects, not a string"},
		{name: "null", in: `null`, errLine: 1, errOff: 0, errMsg: "file must be a JSON array of objects, not null"},
		{name: "garbage", in: `<xml>`, errLine: 1, errOff: 0, errMsg: "file must be a JSON array of objects (invalid character '<'"},
		{name: "number element", in: "[{\"a\":1},\n 5]", want: []string{`{"a":1}`},
			errLine: 2, errOff: 11, errRec: 2, errMsg: "record is a number, not a JSON object"},
		{name: "array element", in: "[[{\"a\":1}]]", errLine: 1, errOff: 1, errRec: 1, errMsg: "record is an array, not a JSON object"},
		{name: "string element", in: "[\"{}\"]", errLine: 1, errOff: 1, errRec: 1, errMsg: "record is a string, not a JSON object"},
		{name: "null element", in: "[{},null]", want: []string{`{}`}, errLine: 1, errOff: 4, errRec: 2, errMsg: "record is null, not a JSON object"},
		{name: "bool element", in: "[\n\n false]", errLine: 3, errOff: 4, errRec: 1, errMsg: "record is a boolean, not a JSON object"},
		{name: "missing comma", in: "[{\"b\":1},\n {\"x\":1}\n {}]", want: []string{`{"b":1}`, `{"x":1}`},
			errLine: 3, errOff: 20, errRec: 0, errMsg: "invalid character '{' after array element"},
		{name: "syntax in record", in: "[{\"b\":1},\n {\"x\":1},\n {\"a\" 1}]", want: []string{`{"b":1}`, `{"x":1}`},
			errLine: 3, errOff: 26, errRec: 3, errMsg: "invalid character '1' after object key"},
		{name: "syntax multiline record", in: "[{\"b\":\n1,\n\"c\":\n2\n\"d\":3}]",
			errLine: 5, errOff: 17, errRec: 1, errMsg: "invalid character '\"' after object key:value pair"},
		{name: "trailing comma", in: "[{\"b\":1},\n ]", want: []string{`{"b":1}`},
			errLine: 2, errOff: 11, errRec: 2, errMsg: "invalid character ']' looking for beginning of value"},
		{name: "leading comma", in: "[,{}]", errLine: 1, errOff: 1, errRec: 1, errMsg: "invalid character ','"},
		{name: "wrong close", in: "[{\"b\":1}}", want: []string{`{"b":1}`}, errLine: 1, errOff: 8, errMsg: "invalid character '}'"},
		{name: "trailing garbage", in: "[{\"b\":1},\n {}]\n x", want: []string{`{"b":1}`, `{}`},
			errLine: 3, errOff: 16, errRec: 0, errMsg: "unexpected data after the JSON array"},
		{name: "second array", in: "[{}] []", want: []string{`{}`}, errLine: 1, errOff: 5, errMsg: "unexpected data after the JSON array"},
		{name: "not closed", in: "[{\"b\":1},\n {}", want: []string{`{"b":1}`, `{}`},
			errLine: 2, errOff: 13, errRec: 0, errMsg: "unexpected end of input: the array is not closed"},
		{name: "not closed after comma", in: "[{\"b\":1},\n", want: []string{`{"b":1}`},
			errLine: 2, errOff: 10, errRec: 2, errMsg: "unexpected end of input"},
		{name: "truncated record", in: "[{\"b\":1},\n {\"a\":", want: []string{`{"b":1}`},
			errLine: 2, errOff: 16, errRec: 2, errMsg: "unexpected end of input in the record"},
		{name: "only bracket", in: "[", errLine: 1, errOff: 1, errMsg: "unexpected end of input: the array is not closed"},

		{name: "fields limit", in: `[{"a":1,"b":2},{"a":1,"b":{"x":1,"y":2},"c":3}]`, lim: Limits{MaxFields: 2},
			want: []string{`{"a":1,"b":2}`}, errLine: 1, errOff: 15, errRec: 2, errMsg: "record has 3 fields, over the limit of 2 fields"},
		{name: "fields limit default", in: "[{" + strings.Repeat(`"k":1,`, 1000) + `"k":1}]`,
			errLine: 1, errOff: 1, errRec: 1, errMsg: "record has 1001 fields, over the limit of 1000 fields"},
		{name: "record limit", in: "[{\"a\": \"0123456789\"},\n\n{\"a\": \"01234567890\"}]", lim: Limits{MaxRecordBytes: 18},
			want: []string{`{"a":"0123456789"}`}, errLine: 3, errOff: 23, errRec: 2, errMsg: "record is 19 bytes, over the limit of 18 bytes"},
	})
}

func TestNDJSON(t *testing.T) {
	runJSONCases(t, NDJSON, []jsonCase{
		{name: "normal", in: "{\"zeta\":1,\"alpha\":\"a\"}\n{\"b\": [1, 2.50]}\n",
			want: []string{`{"zeta":1,"alpha":"a"}`, `{"b":[1,2.50]}`}},
		{name: "no final newline", in: `{"a":1}`, want: []string{`{"a":1}`}},
		{name: "blank lines", in: "\n  \n{\"a\":1}\n\t\r\n\n{\"b\":2}\n \n", want: []string{`{"a":1}`, `{"b":2}`}},
		{name: "crlf", in: "{\"a\":1}\r\n{\"b\":\"x\\r\\n\"}\r\n", want: []string{`{"a":1}`, `{"b":"x\r\n"}`}},
		{name: "bom", in: "\xEF\xBB\xBF{\"a\":1}\n", want: []string{`{"a":1}`}},
		{name: "surrounding space", in: "  { \"a\" : 1 }  \n", want: []string{`{"a":1}`}},
		{name: "strings kept", in: `{"a\"b":"x\\\" \u00e9 <>& é"}`, want: []string{`{"a\"b":"x\\\" \u00e9 <>& é"}`}},
		{name: "invalid utf8", in: "{\"k\":\"\xff\"}\n", want: []string{`{"k":"\ufffd"}`}},
		{name: "empty", in: "", want: nil},

		{name: "two values on a line", in: "{\"a\":1}\n{\"a\":1} {\"b\":2}\n", want: []string{`{"a":1}`},
			errLine: 2, errOff: 16, errRec: 2, errMsg: "invalid character '{' after top-level value"},
		{name: "trailing garbage", in: "{\"a\":1}\n\n{\"a\":1} x\n", want: []string{`{"a":1}`},
			errLine: 3, errOff: 17, errRec: 2, errMsg: "invalid character 'x' after top-level value"},
		{name: "object across lines", in: "{\"a\":\n1}\n", errLine: 1, errOff: 5, errRec: 1, errMsg: "unexpected end of JSON input"},
		{name: "syntax", in: "{\"a\":1}\r\n{\"a\" 1}\r\n", want: []string{`{"a":1}`},
			errLine: 2, errOff: 14, errRec: 2, errMsg: "line 2, byte 14: record 2: invalid JSON: invalid character '1' after object key"},
		{name: "array", in: "{\"a\":1}\n\n[{\"a\":1}]", want: []string{`{"a":1}`},
			errLine: 3, errOff: 9, errRec: 2, errMsg: "record is an array, not a JSON object"},
		{name: "number", in: "  42\n", errLine: 1, errOff: 2, errRec: 1, errMsg: "record is a number, not a JSON object"},
		{name: "null", in: "null\n", errLine: 1, errOff: 0, errRec: 1, errMsg: "record is null, not a JSON object"},
		{name: "bom then array", in: "\xEF\xBB\xBF[]", errLine: 1, errOff: 3, errRec: 1, errMsg: "record is an array"},

		{name: "fields limit", in: "{\"a\":1,\"b\":2}\n{\"a\":1,\"b\":2,\"c\":{\"x\":1}}\n", lim: Limits{MaxFields: 2},
			want: []string{`{"a":1,"b":2}`}, errLine: 2, errOff: 14, errRec: 2, errMsg: "record has 3 fields, over the limit of 2 fields"},
		{name: "line limit", in: "{\"a\":\"01234\"}\n{\"a\": \"01234\"}\n", lim: Limits{MaxRecordBytes: 13},
			want: []string{`{"a":"01234"}`}, errLine: 2, errOff: 14, errRec: 2, errMsg: "line is 14 bytes, over the limit of 13 bytes"},
		{name: "line limit crlf", in: "{\"a\":\"01234\"}\r\n", lim: Limits{MaxRecordBytes: 13}, want: []string{`{"a":"01234"}`}},
		{name: "record limit after utf8 fix", in: "{\"a\":\"\xff\xff\"}\n", lim: Limits{MaxRecordBytes: 12},
			errLine: 1, errOff: 0, errRec: 1, errMsg: "record is 20 bytes, over the limit of 12 bytes"},
	})
}

// TestHugeJSON checks that a record spanning too much input fails without
// reading it all.
func TestHugeJSON(t *testing.T) {
	lim := Limits{MaxRecordBytes: 1000}
	bound := int64(2*1000 + slack + 2*64<<10)
	tests := []struct {
		name       string
		f          Format
		head, body string
		line, rec  int64
		msg        string
	}{
		{"array long string", JSONArray, "[{\"a\":1},\n{\"a\":\"", "x", 2, 2, "record is over the limit of 1000 bytes"},
		{"array long array", JSONArray, "[\n{\"a\":1},\n{\"a\":[", "1,", 3, 2, "record is over the limit of 1000 bytes"},
		{"array deep", JSONArray, "[\n{\"a\":1},\n", "[", 3, 2, "exceeded max depth"},
		{"array whitespace", JSONArray, "[{\"a\":1}\n", "\n", -2, 0, "bytes of input without a record (limit of 1000 bytes per record)"},
		{"array many records", JSONArray, "[", "{\"a\":1},", -1, -1, "x"}, // never errors: stopped below
		{"ndjson long line", NDJSON, "{}\n\n{\"a\":\"", "xy", 3, 2, "line is longer than the limit of 1000 bytes"},
		{"ndjson long blank line", NDJSON, "{}\n", " ", 2, 2, "line is longer than the limit of 1000 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &endless{head: tc.head, body: tc.body}
			r, err := NewReader(tc.f, src, lim)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 100000; i++ {
				if _, err = r.Next(); err != nil {
					break
				}
			}
			if tc.line == -1 {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			wantPE(t, err, tc.line, tc.rec, tc.msg)
			if src.read > bound {
				t.Errorf("read %d bytes of input, more than %d", src.read, bound)
			}
		})
	}
}
