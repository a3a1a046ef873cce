package records

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestCSV(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		lim     Limits
		want    []string
		errLine int64 // with errMsg
		errRec  int64
		errMsg  string
	}{
		{name: "normal", in: "zeta,alpha,mid\nz1,a1,m1\nz2,a2,m2\n",
			want: []string{`{"zeta":"z1","alpha":"a1","mid":"m1"}`, `{"zeta":"z2","alpha":"a2","mid":"m2"}`}},
		{name: "no final newline", in: "b,a\n1,2", want: []string{`{"b":"1","a":"2"}`}},
		{name: "header only", in: "b,a\n", want: nil},
		{name: "header only no newline", in: "b,a", want: nil},
		{name: "empty values", in: "b,a\n,\n", want: []string{`{"b":"","a":""}`}},
		{name: "single column", in: "only\nx\n\ny\n", want: []string{`{"only":"x"}`, `{"only":"y"}`}},
		{name: "quoting", in: "k,v\n\"a,b\",\"he said \"\"hi\"\"\"\n\"multi\nline\",\"back\\slash\"\n",
			want: []string{`{"k":"a,b","v":"he said \"hi\""}`, `{"k":"multi\nline","v":"back\\slash"}`}},
		{name: "unicode and html", in: "ключ,v\nhéllo 日本 😀,\"<a href=\"\"x\"\">&</a>\"\n",
			want: []string{`{"ключ":"héllo 日本 😀","v":"<a href=\"x\">&</a>"}`}},
		{name: "control chars", in: "k,v\n\"a\x01b\tc\",\"\x00\x1f\x7f\u2028\"\n",
			want: []string{`{"k":"a\u0001b\tc","v":"\u0000\u001f` + "\x7f" + `\u2028"}`}},
		{name: "not utf8 is windows-1252", in: "k\xff,v\na\xffb,\xc3\x80\n",
			want: []string{`{"kÿ":"aÿb","v":"Ã€"}`}},
		{name: "escaped key", in: "\"a\"\"b\",\"c\\d\"\n1,2\n", want: []string{`{"a\"b":"1","c\\d":"2"}`}},
		{name: "bom", in: "\xEF\xBB\xBFid,name\n1,x\n", want: []string{`{"id":"1","name":"x"}`}},
		{name: "bom only in first cell", in: "id,name\n\xEF\xBB\xBF1,x\n", want: []string{"{\"id\":\"\ufeff1\",\"name\":\"x\"}"}},
		{name: "crlf", in: "b,a\r\n1,2\r\n\"x\r\ny\",3\r\n",
			want: []string{`{"b":"1","a":"2"}`, `{"b":"x\ny","a":"3"}`}},
		{name: "empty lines", in: "\n\nb,a\n\n1,2\n\n\r\n\n3,4\n\n",
			want: []string{`{"b":"1","a":"2"}`, `{"b":"3","a":"4"}`}},
		{name: "spaces kept", in: "b, a\n 1 ,2 \n", want: []string{`{"b":" 1 "," a":"2 "}`}},

		{name: "empty file", in: "", errLine: 0, errRec: 0, errMsg: "file has no header row"},
		{name: "bom only", in: "\xEF\xBB\xBF", errLine: 0, errRec: 0, errMsg: "file has no header row"},
		{name: "blank lines only", in: "\n\r\n\n", errLine: 0, errRec: 0, errMsg: "file has no header row"},
		{name: "empty column name", in: "a,,c\n1,2,3\n", errLine: 1, errRec: 0, errMsg: "column 2 has an empty name"},
		{name: "empty last column name", in: "a,b,\n1,2,3\n", errLine: 1, errRec: 0, errMsg: "column 3 has an empty name"},
		{name: "duplicate column", in: "id,name,id\n", errLine: 1, errRec: 0, errMsg: `duplicate column name "id" (column 1 and column 3)`},
		{name: "duplicate after decoding", in: "a\xe9,a\xe9\n", errLine: 1, errRec: 0, errMsg: `duplicate column name "aé"`},
		{name: "too many fields", in: "a,b\n1,2\n\n1,2,3\n", want: []string{`{"a":"1","b":"2"}`},
			errLine: 4, errRec: 2, errMsg: "record has 3 fields, the header has 2"},
		{name: "too few fields", in: "a,b\n1\n", errLine: 2, errRec: 1, errMsg: "record has 1 fields, the header has 2"},
		{name: "count after multiline", in: "a,b\n\"x\ny\",1\n1,2,3\n", want: []string{`{"a":"x\ny","b":"1"}`},
			errLine: 4, errRec: 2, errMsg: "record has 3 fields"},
		{name: "unterminated quote", in: "a,b\n1,2\n3,\"x\ny\n", want: []string{`{"a":"1","b":"2"}`},
			errLine: 3, errRec: 2, errMsg: "line 3: record 2: unterminated quoted field"},
		{name: "unterminated quote crlf", in: "a,b\r\n3,\"x\r\n", errLine: 2, errRec: 1, errMsg: "unterminated quoted field"},
		{name: "unterminated quote no newline", in: "a,b\n3,\"x", errLine: 2, errRec: 1, errMsg: "unterminated quoted field"},
		{name: "unterminated escaped quote", in: "a,b\n3,\"x\"\"", errLine: 2, errRec: 1, errMsg: "unterminated quoted field"},
		{name: "unterminated quote blank lines", in: "a,b\n3,\"x\n\n\n", errLine: 2, errRec: 1, errMsg: "unterminated quoted field"},
		{name: "extraneous quote", in: "a,b\n1,\"x\"y\n2,3\n", errLine: 2, errRec: 1, errMsg: `column 5: extraneous or missing "`},
		{name: "extraneous quote at end", in: "a,b\n1,\"x\"y", errLine: 2, errRec: 1, errMsg: `column 5: extraneous or missing "`},
		{name: "extraneous quote at end crlf", in: "a,b\n1,\"x\"y\r\n", errLine: 2, errRec: 1, errMsg: `column 5: extraneous or missing "`},
		{name: "bare quote", in: "a,b\n1,x\"y\n", errLine: 2, errRec: 1, errMsg: `column 4: bare "`},
		{name: "bare quote in header", in: "a,b\"\n", errLine: 1, errRec: 0, errMsg: `bare "`},

		{name: "field limit", in: "id,notes\n1,ok\n2," + strings.Repeat("n", 70000) + "\n",
			want: []string{`{"id":"1","notes":"ok"}`}, errLine: 3, errRec: 2,
			errMsg: `line 3: record 2: field "notes" is 70000 bytes, over the limit of 65536 bytes`},
		{name: "field limit small", in: "id,n\n12345,ok\n", lim: Limits{MaxFieldBytes: 4},
			errLine: 2, errRec: 1, errMsg: `field "id" is 5 bytes, over the limit of 4 bytes`},
		{name: "field limit at limit", in: "id\n1234\n", lim: Limits{MaxFieldBytes: 4}, want: []string{`{"id":"1234"}`}},
		{name: "column name limit", in: "id,12345\n", lim: Limits{MaxFieldBytes: 4},
			errLine: 1, errRec: 0, errMsg: "the name of column 2 is 5 bytes, over the limit of 4 bytes"},
		{name: "columns limit", in: "a,b,c,d,e\n1,2,3,4,5\n", lim: Limits{MaxFields: 4},
			errLine: 1, errRec: 0, errMsg: "header has 5 columns, over the limit of 4 columns"},
		{name: "columns limit default", in: strings.Repeat("c,", 1000) + "c\n",
			errLine: 1, errRec: 0, errMsg: "header has 1001 columns, over the limit of 1000 columns"},
		{name: "columns at limit", in: "a,b,c,d\n1,2,3,4\n", lim: Limits{MaxFields: 4},
			want: []string{`{"a":"1","b":"2","c":"3","d":"4"}`}},
		{name: "record limit", in: "a,b\n1,2\n\n123456789,123456789\n", lim: Limits{MaxRecordBytes: 30},
			want: []string{`{"a":"1","b":"2"}`}, errLine: 4, errRec: 2,
			errMsg: "line 4: record 2: record is 33 bytes as JSON, over the limit of 30 bytes"},
		{name: "record limit early", in: "a,b,c\n123456789,123456789,1\n", lim: Limits{MaxRecordBytes: 30},
			errLine: 2, errRec: 1, errMsg: "record is at least 33 bytes as JSON, over the limit of 30 bytes"},
		{name: "record at limit", in: "a,b\n12345678,12345678\n", lim: Limits{MaxRecordBytes: 35},
			want: []string{`{"a":"12345678","b":"12345678"}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, CSV, strings.NewReader(tc.in), tc.lim)
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
			wantPE(t, err, tc.errLine, tc.errRec, tc.errMsg)
		})
	}
}

// TestCSVRoundTrip checks that tricky values decode back to what was written.
func TestCSVRoundTrip(t *testing.T) {
	vals := []string{"a,b", `"`, `""`, "x\ny", "tab\tx", "\\", "<>&", "é日😀", "\x01\x02\x1b", "\u2028", " lead", "trail ", "'"}
	var in strings.Builder
	in.WriteString("zz,aa,mm\n")
	for i, v := range vals {
		q := `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
		fmt.Fprintf(&in, "%d,%s,%s\n", i, q, q)
	}
	got, err := readAll(t, CSV, strings.NewReader(in.String()), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(vals) {
		t.Fatalf("got %d records, want %d", len(got), len(vals))
	}
	for i, rec := range got {
		m := decodeObj(t, rec)
		want := map[string]any{"zz": fmt.Sprint(i), "aa": vals[i], "mm": vals[i]}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("record %d: got %v, want %v", i, m, want)
		}
		if k := keysInOrder(t, rec); !reflect.DeepEqual(k, []string{"zz", "aa", "mm"}) {
			t.Errorf("record %d: keys %v", i, k)
		}
	}
}

// TestCSVHugeRecord checks that a record spanning too much input fails
// without reading it all.
func TestCSVHugeRecord(t *testing.T) {
	lim := Limits{MaxRecordBytes: 1000}
	bound := int64(2*1000 + slack + 64<<10 + 64<<10)
	tests := []struct {
		name       string
		head, body string
		line, rec  int64
		msg        string
	}{
		{"long line", "a,b\n1,2\n", "x", 3, 2, "record is over the limit of 1000 bytes"},
		{"long quoted field", "a,b\n1,2\n3,\"", "xyz\n", 3, 2, "record is over the limit of 1000 bytes"},
		{"long header", "", "x", 1, 0, "header row is over the limit of 1000 bytes"},
		{"long field after multiline", "a,b\n\"1\n2\",3\n", "x,", 4, 2, "record is over the limit of 1000 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &endless{head: tc.head, body: tc.body}
			_, err := readAll(t, CSV, src, lim)
			wantPE(t, err, tc.line, tc.rec, tc.msg)
			if src.read > bound {
				t.Errorf("read %d bytes of input, more than %d", src.read, bound)
			}
		})
	}
}
