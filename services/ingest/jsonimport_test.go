package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/records"
)

// The parser of JSON imports, without NATS or Redis: the template is looked
// up by fakeResolve. (imports_test.go stages imports for real.)

var testLimits = records.Limits{MaxRecordBytes: 256, MaxFields: 5}

// fakeResolve knows one template, OK, as a.meta would.
func fakeResolve(code string) (*importMeta, error) {
	switch code {
	case "":
		return nil, templateRequired()
	case "OK":
		return &importMeta{template: &Template{Code: "OK", Tenant: "acme", Webhook: Webhook{ChunkSize: 2}}, hasTemplate: true}, nil
	}
	return nil, fmt.Errorf("template %q: %w", code, ErrTemplateNotFound)
}

// parsed is what an import body says, read the way importJSON reads it.
type parsed struct {
	template, auth, extra string
	recs                  []string
	streamed              bool
}

// parseImport reads body as importJSON does, collecting the records instead
// of staging them.
func parseImport(body io.Reader, lim records.Limits) (*parsed, error) {
	p := newJSONImport(body, lim, fakeResolve)
	if err := p.open(); err != nil {
		return nil, err
	}
	rd, err := p.reader()
	if err != nil {
		return nil, err
	}
	out := &parsed{streamed: rd == records.Reader(p)}
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		out.recs = append(out.recs, string(rec))
	}
	out.template, out.auth, out.extra = p.meta.template.Code, p.meta.authValue, string(p.meta.extra)
	return out, nil
}

// decodeImport is the reading of a JSON import before it streamed, kept as
// the oracle of what is accepted and how it is answered: the whole body
// decoded into a struct, then checked and compacted.
func decodeImport(body []byte, lim records.Limits) (*parsed, error) {
	var in struct {
		Template        string            `json:"template"`
		AuthHeaderValue *string           `json:"authHeaderValue"`
		Extra           json.RawMessage   `json:"extra"`
		Records         []json.RawMessage `json:"records"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return nil, jsonError(err)
	}
	meta, err := fakeResolve(in.Template)
	if err != nil {
		return nil, err
	}
	if in.AuthHeaderValue != nil {
		if err := setAuthValue(meta, *in.AuthHeaderValue); err != nil {
			return nil, err
		}
	}
	if err := setExtraJSON(meta, in.Extra); err != nil {
		return nil, err
	}
	if in.Records == nil {
		return nil, badRequest("records", "records is required: an array of JSON objects")
	}
	out := &parsed{template: meta.template.Code, auth: meta.authValue, extra: string(meta.extra)}
	for i, raw := range in.Records {
		rec, err := records.CompactValidObject(nil, raw, lim)
		if err != nil {
			return nil, &FieldError{Field: fmt.Sprintf("records[%d]", i), Message: fmt.Sprintf("records[%d]: %v", i, err)}
		}
		out.recs = append(out.recs, string(rec))
	}
	return out, nil
}

// answer is an error as the client sees it.
func answer(err error) string {
	status, d := toHTTP(err)
	return fmt.Sprintf("%d %s: %s", status, d.Field, d.Message)
}

func sameParsed(a, b *parsed) bool {
	return a.template == b.template && a.auth == b.auth && a.extra == b.extra &&
		strings.Join(a.recs, "\n") == strings.Join(b.recs, "\n")
}

// Every order of the keys gives the same import; the records stream when the
// template comes before them.
func TestJSONImportKeyOrders(t *testing.T) {
	members := map[string]string{
		"template":        `"OK"`,
		"authHeaderValue": `"Bearer s3cret"`,
		"extra":           `{ "batch" : 7, "tags": ["a", "b"] }`,
		"records":         "[ {\"id\": 1, \"name\": \"Ada\"},\n {\"id\":2,\"nested\":{\"x\":[1, 2]}} , {\"id\":3}\n]",
	}
	want := &parsed{template: "OK", auth: "Bearer s3cret", extra: `{"batch":7,"tags":["a","b"]}`,
		recs: []string{`{"id":1,"name":"Ada"}`, `{"id":2,"nested":{"x":[1,2]}}`, `{"id":3}`}}
	for _, order := range permutations([]string{"template", "authHeaderValue", "extra", "records"}) {
		var parts []string
		for _, k := range order {
			parts = append(parts, fmt.Sprintf("%q: %s", k, members[k]))
		}
		body := "{" + strings.Join(parts, ", ") + "}"
		t.Run(strings.Join(order, ","), func(t *testing.T) {
			got, err := parseImport(strings.NewReader(body), testLimits)
			if err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if !sameParsed(got, want) {
				t.Fatalf("%s:\n got %+v\nwant %+v", body, got, want)
			}
			templateFirst := strings.Index(body, `"template"`) < strings.Index(body, `"records"`)
			if got.streamed != templateFirst {
				t.Fatalf("streamed = %v with the template first = %v", got.streamed, templateFirst)
			}
			if old, err := decodeImport([]byte(body), testLimits); err != nil || !sameParsed(old, got) {
				t.Fatalf("before streaming: %+v, %v", old, err)
			}
		})
	}
}

func permutations(s []string) [][]string {
	if len(s) <= 1 {
		return [][]string{append([]string(nil), s...)}
	}
	var out [][]string
	for i := range s {
		rest := append(append([]string(nil), s[:i]...), s[i+1:]...)
		for _, p := range permutations(rest) {
			out = append(out, append([]string{s[i]}, p...))
		}
	}
	return out
}

// JSON whitespace is allowed around every token, as before; a byte order mark
// and other spaces are not (encoding/json refused them).
func TestJSONImportWhitespace(t *testing.T) {
	compact := `{"template":"OK","records":[{"a":1},{"b":[true,null]}]}`
	var indented bytes.Buffer
	_ = json.Indent(&indented, []byte(compact), "", "\t")
	tokens := []string{`{`, `"template"`, `:`, `"OK"`, `,`, `"records"`, `:`, `[`, `{"a":1}`, `,`, `{"b":[true,null]}`, `]`, `}`}
	ok := map[string]string{
		"compact":  compact,
		"indented": indented.String(),
		"CRLF":     strings.ReplaceAll(indented.String(), "\n", "\r\n"),
	}
	for _, ws := range []string{" ", "\t", "\n", "\r", " \r\n\t "} {
		ok[fmt.Sprintf("%q everywhere", ws)] = ws + strings.Join(tokens, ws) + ws
	}
	ok["inside records"] = "{\"template\":\"OK\",\"records\":[{ \"a\" :\n1 },\t{\"b\":[ true , null ]}]}"
	for name, body := range ok {
		got, err := parseImport(strings.NewReader(body), testLimits)
		if err != nil || strings.Join(got.recs, ",") != `{"a":1},{"b":[true,null]}` {
			t.Errorf("%s: %+v, %v", name, got, err)
		}
	}
	for name, body := range map[string]string{
		"byte order mark":    "\xef\xbb\xbf" + compact,
		"no-break space":     "\u00a0" + compact,
		"form feed":          "\f" + compact,
		"vertical tab":       compact[:1] + "\v" + compact[1:],
		"NUL inside":         strings.Replace(compact, ",", ",\x00", 1),
		"BOM after the body": compact + "\xef\xbb\xbf",
	} {
		_, err := parseImport(strings.NewReader(body), testLimits)
		if err == nil || !strings.Contains(answer(err), "400 : request body is not valid JSON (at byte ") {
			t.Errorf("%s: err = %v, want a syntax error", name, err)
			continue
		}
		// The same answer as before, where there was one.
		if _, old := decodeImport([]byte(body), testLimits); old != nil && answer(old) != answer(err) {
			t.Errorf("%s: %s, was %s", name, answer(err), answer(old))
		}
	}
	_, err := parseImport(strings.NewReader("\xef\xbb\xbf"+compact), testLimits)
	if want := `400 : request body is not valid JSON (at byte 1): invalid character 'ï' looking for beginning of value`; answer(err) != want {
		t.Errorf("BOM: %s, want %s", answer(err), want)
	}
}

// Malformed bodies: the answer names the field, and is the one given before
// streaming whenever there was one to keep (same: true).
func TestJSONImportErrors(t *testing.T) {
	long := strings.Repeat("x", 70000)
	for _, tc := range []struct {
		name, body string
		want       string // the answer: "status field: message", or a prefix of it ending in "…"
		same       bool   // the answer before streaming was the same
	}{
		{"empty", ``, `400 : request body is empty`, true},
		{"only whitespace", " \r\n\t ", `400 : request body is empty`, true},
		{"not json", `{not json`, `400 : request body is not valid JSON (at byte 2): invalid character 'n' looking for beginning of object key string`, true},
		{"open brace", `{`, `400 : request body is not valid JSON (at byte 1): unexpected end of JSON input`, false},
		{"trailing comma", `{"template":"OK",}`, `400 : request body is not valid JSON (at byte 18): invalid character '}' looking for beginning of object key string`, true},
		{"no colon", `{"template" "OK"}`, `400 : request body is not valid JSON (at byte 13): invalid character '"' after object key`, true},
		{"no comma", `{"template":"OK" "records":[]}`, `400 : request body is not valid JSON (at byte 18): invalid character '"' after object key:value pair`, true},
		{"comma then end of array", `{"template":"OK","records":[{},]}`, `400 : request body is not valid JSON (at byte 32): invalid character ']' looking for beginning of value`, true},
		{"records without comma", `{"template":"OK","records":[{} {}]}`, `400 : request body is not valid JSON (at byte 32): invalid character '{' after array element`, true},
		{"bad literal in a record", `{"template":"OK","records":[{"a":tru}]}`, `400 : request body is not valid JSON (at byte 37): invalid character '}' in literal true (expecting 'e')`, true},
		{"bad escape in a record", `{"records":[{"a":"\x"}],"template":"OK"}`, `400 : request body is not valid JSON (at byte 20): invalid character 'x' in string escape code`, true},
		{"control character in a key", "{\"temp\x01late\":\"OK\"}", `400 : request body is not valid JSON (at byte 7): invalid character '\x01' in string literal`, true},
		{"bad extra", `{"template":"OK","extra":{"a":01},"records":[{}]}`, `400 : request body is not valid JSON (at byte 32): invalid character '1' after object key:value pair`, true},
		{"cut in a record", `{"template":"OK","records":[{"a":tr`, `400 : request body is not valid JSON (at byte 35): unexpected end of JSON input`, false},
		{"cut in a number", `{"template":"OK","records":[{"a":12`, `400 : request body is not valid JSON (at byte 35): unexpected end of JSON input`, false},
		{"cut after the array", `{"template":"OK","records":[{}]`, `400 : request body is not valid JSON (at byte 31): unexpected end of JSON input`, false},
		{"cut in a key", `{"templ`, `400 : request body is not valid JSON (at byte 7): unexpected end of JSON input`, false},
		{"data after the object", `{"template":"OK","records":[{}]} x`, `400 : request body is not valid JSON (at byte 34): invalid character 'x' after top-level value`, false},
		{"two objects", `{"template":"OK","records":[{}]}{}`, `400 : request body is not valid JSON (at byte 33): invalid character '{' after top-level value`, false},
		{"unknown field", `{"template":"OK","records":[{}],"recordz":1}`, `400 recordz: unknown field "recordz"`, true},
		{"unknown field first", `{"Template2":"OK","records":[{}]}`, `400 Template2: unknown field "Template2"`, true},
		{"unknown key too long", `{"` + long + `":1}`, `400 : unknown field: a key of over 65536 bytes`, false},
		{"template twice", `{"template":"OK","Template":"OK","records":[{}]}`, `400 template: duplicate field "Template": template may be given once`, false},
		{"records twice", `{"records":[{}],"template":"OK","records":[{}]}`, `400 records: duplicate field "records": records may be given once`, false},
		{"extra twice, once null", `{"extra":null,"template":"OK","records":[{}],"extra":1}`, `400 extra: duplicate field "extra": extra may be given once`, false},
		{"template not a string", `{"template":5,"records":[{}]}`, `400 template: template must be a string, not a JSON number`, true},
		{"template an array", `{"template":["OK"],"records":[{}]}`, `400 template: template must be a string, not a JSON array`, true},
		{"auth not a string", `{"template":"OK","authHeaderValue":true,"records":[{}]}`, `400 authHeaderValue: authHeaderValue must be a string, not a JSON bool`, true},
		{"records an object", `{"template":"OK","records":{}}`, `400 records: records must be an array, not a JSON object`, true},
		{"records a string", `{"records":"x","template":"OK"}`, `400 records: records must be an array, not a JSON string`, true},
		{"records of something else", `{"template":"OK","records":x}`, `400 : request body is not valid JSON (at byte 28): invalid character 'x' looking for beginning of value`, true},
		{"record not an object", `{"template":"OK","records":[{"a":1},5]}`, `400 records[1]: records[1]: record must be a JSON object, not a number`, true},
		{"record not an object, records first", `{"records":[{"a":1},{},"x"],"template":"OK"}`, `400 records[2]: records[2]: record must be a JSON object, not a string`, true},
		{"null record", `{"template":"OK","records":[null]}`, `400 records[0]: records[0]: record must be a JSON object, not null`, true},
		{"too many fields", `{"template":"OK","records":[{},{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}]}`, `400 records[1]: records[1]: record has 6 fields, over the limit of 5 fields`, true},
		{"record too large", `{"template":"OK","records":[{"a":"` + strings.Repeat("y", 300) + `"}]}`, `400 records[0]: records[0]: record is 308 bytes, over the limit of 256 bytes`, true},
		{"record spans too much input", `{"template":"OK","records":[{"a":` + strings.Repeat(" ", 70000) + `1}]}`, `400 records[0]: records[0]: record is over the limit of 256 bytes`, false},
		{"no records", `{"template":"OK"}`, `400 records: records is required: an array of JSON objects`, true},
		{"null records", `{"template":"OK","records":null}`, `400 records: records is required: an array of JSON objects`, true},
		{"no template", `{"records":[{}]}`, `400 template: template is required: the code of one of your templates`, true},
		{"null template", `{"template":null,"records":[{}]}`, `400 template: template is required: the code of one of your templates`, true},
		{"empty template", `{"template":"","records":[{}]}`, `400 template: template is required: the code of one of your templates`, true},
		{"unknown template", `{"template":"NOPE","records":[{}]}`, `404 template: template "NOPE": template not found`, true},
		{"template too long", `{"template":"` + long + `","records":[{}]}`, `400 template: template must be at most 65536 bytes`, false},
		{"auth with newline", `{"template":"OK","authHeaderValue":"a\r\nX-Evil: 1","records":[{}]}`, `400 authHeaderValue: authHeaderValue must not contain CR, LF or other control characters…`, true},
		{"auth too long", `{"template":"OK","authHeaderValue":"` + strings.Repeat("a", 4097) + `","records":[{}]}`, `400 authHeaderValue: authHeaderValue must be at most 4096 bytes`, true},
		{"auth too long, escaped", `{"template":"OK","authHeaderValue":"` + strings.Repeat(`\u0061`, 5000) + `","records":[{}]}`, `400 authHeaderValue: authHeaderValue must be at most 4096 bytes`, true},
		{"extra too large", `{"extra":"` + long + `","records":[{}],"template":"OK"}`, `400 extra: extra must be at most 65536 bytes`, true},
		{"array body", `[{"template":"OK"}]`, `400 : request body must be an object, not a JSON array`, false},
		{"string body", `"OK"`, `400 : request body must be an object, not a JSON string`, false},
		{"number body", `42`, `400 : request body must be an object, not a JSON number`, false},
		{"bool body", `true`, `400 : request body must be an object, not a JSON bool`, false},
		{"null body", `null`, `400 template: template is required: the code of one of your templates`, true},
		{"bad null body", `nul`, `400 : request body is not valid JSON (at byte 3): unexpected end of JSON input`, false},
		{"garbage body", `<xml/>`, `400 : request body is not valid JSON (at byte 1): invalid character '<' looking for beginning of value`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseImport(strings.NewReader(tc.body), testLimits)
			if err == nil {
				t.Fatalf("accepted %.80q", tc.body)
			}
			got := answer(err)
			if want, prefix := strings.CutSuffix(tc.want, "…"); got != want && !(prefix && strings.HasPrefix(got, want)) {
				t.Fatalf("%.80q:\n got %s\nwant %s", tc.body, got, tc.want)
			}
			_, old := decodeImport([]byte(tc.body), testLimits)
			if tc.same && (old == nil || answer(old) != got) {
				t.Fatalf("before streaming the answer was %v, now %s", old, got)
			}
		})
	}
}

// A body is read in pieces as they arrive, not whole: each record comes out
// of Next as soon as it is sent, before the rest of the body.
func TestJSONImportStreamsRecords(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	p := newJSONImport(pr, testLimits, fakeResolve)
	// An io.Pipe write waits for a read: the parser must take each piece
	// while the test has sent nothing more.
	write := func(s string) {
		t.Helper()
		done := make(chan struct{})
		go func() { _, _ = io.WriteString(pw, s); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("the parser does not read %q", s)
		}
	}
	type result struct {
		rec string
		err error
	}
	start := func(f func() ([]byte, error)) chan result {
		ch := make(chan result, 1)
		go func() { rec, err := f(); ch <- result{string(rec), err} }()
		return ch
	}
	wait := func(ch chan result) result {
		t.Helper()
		select {
		case r := <-ch:
			return r
		case <-time.After(5 * time.Second):
			t.Fatal("waits for more of the body than it needs")
			return result{}
		}
	}
	opened := start(func() ([]byte, error) { return nil, p.open() })
	write(`{"template":"OK","records":[`)
	if r := wait(opened); r.err != nil || !p.stream {
		t.Fatalf("open = %v, streaming %v", r.err, p.stream)
	}
	for i := range 3 {
		next := start(p.Next)
		if i > 0 {
			write(",")
		}
		write(fmt.Sprintf(`{"n": %d}`, i))
		if r := wait(next); r.err != nil || r.rec != fmt.Sprintf(`{"n":%d}`, i) {
			t.Fatalf("record %d = %s, %v", i, r.rec, r.err)
		}
	}
	end := start(p.Next)
	write(`],"extra":{"k": "v"}}`)
	write("\n")
	pw.Close()
	if r := wait(end); !errors.Is(r.err, io.EOF) || string(p.meta.extra) != `{"k":"v"}` {
		t.Fatalf("end = %v, extra %s", r.err, p.meta.extra)
	}
}

// A record larger than the scanner's first buffer, and a body read a few
// bytes at a time, parse the same.
func TestJSONImportReadSizes(t *testing.T) {
	big := `{"blob":"` + strings.Repeat("z", 200<<10) + `"}`
	body := `{"template":"OK","records":[{"a":1},` + big + `,{"b":2}]}`
	lim := records.Limits{MaxRecordBytes: 1 << 20}
	for name, r := range map[string]io.Reader{
		"whole":       strings.NewReader(body),
		"byte a time": &trickle{r: strings.NewReader(body), n: 1},
		"7 at a time": &trickle{r: strings.NewReader(body), n: 7},
	} {
		got, err := parseImport(r, lim)
		if err != nil || len(got.recs) != 3 || got.recs[1] != big {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// trickle reads at most n bytes at a time, with an empty read in between.
type trickle struct {
	r     io.Reader
	n     int
	empty bool
}

func (t *trickle) Read(p []byte) (int, error) {
	if t.empty = !t.empty; t.empty {
		return 0, nil
	}
	return t.r.Read(p[:min(len(p), t.n)])
}

// Whatever the body, streaming accepts nothing that decoding refused, reads
// the same import from what both accept, and gives the same syntax errors.
// It refuses more: a key given twice, data after the object.
func FuzzJSONImportBody(f *testing.F) {
	for _, s := range []string{
		`{"template":"OK","records":[{"a":1},{"b":"x"}]}`,
		`{"records":[{"a":1}],"extra":{"k":[1,2]},"template":"OK","authHeaderValue":"t"}`,
		`{"authHeaderValue":null,"extra":"s","Template":"OK","RECORDS":[{}]}`,
		`{"template":"OK","records":[{"a":1},5]}`, `{"template":"OK","records":[]}`, `{"template":"OK"}`,
		`{"template":"OK","template":"OK","records":[{}]}`, `{"template":"OK","records":[{}]} x`, `null`, `[]`, `{not json`,
		`{"templAte":"","templAte":"OK","reCords":[]}`, `{"templAte":"0","templAte":"OK","reCords":[]}`,
		" {\"template\" : \"OK\" ,\n\"records\" : [ {\"a\" : 1} ] } ", "\xef\xbb\xbf{}", `{"template":"OK","records":[{"a":"\u00e9\ud800"}]}`,
	} {
		f.Add([]byte(s))
	}
	lim := records.Limits{MaxRecordBytes: 64, MaxFields: 3}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := parseImport(bytes.NewReader(body), lim)
		old, oldErr := decodeImport(body, lim)
		switch {
		case err == nil && oldErr != nil:
			t.Fatalf("%q: accepted, but decoding refused it: %s", body, answer(oldErr))
		case err == nil && !sameParsed(got, old):
			t.Fatalf("%q:\n got %+v\nwant %+v", body, got, old)
		case err != nil && oldErr == nil:
			// A body with a key given twice is refused, by whichever of its
			// faults comes first ({"template":"","template":"OK"} for the
			// empty template, {"template":"X","template":"OK"} for the
			// unknown template X).
			a := answer(err)
			if !strings.HasPrefix(a, "4") || !hasDuplicateKey(body) && !strings.Contains(a, "after top-level value") {
				t.Fatalf("%q: refused (%s), but decoding accepted it", body, a)
			}
		case err != nil:
			// Syntax errors are found at the same byte.
			const syntax = "400 : request body is not valid JSON (at byte "
			if a, o := answer(err), answer(oldErr); strings.HasPrefix(a, syntax) && strings.HasPrefix(o, syntax) && a != o {
				t.Fatalf("%q:\n got %s\nwant %s", body, a, o)
			}
		}
	})
}

// hasDuplicateKey reports whether the top-level object of body (valid JSON,
// as encoding/json accepted it) has a key twice, compared as encoding/json
// matches field names: without regard to case.
func hasDuplicateKey(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	var seen []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		k := tok.(string)
		for _, prev := range seen {
			if strings.EqualFold(k, prev) {
				return true
			}
		}
		seen = append(seen, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}
