package webhook

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

var bodyKeys = []string{"template", "uploadId", "data", "totalRecords", "totalPages", "page", "pageSize", "extra"}

// decodeBody decodes a body built by AppendBody, checking it has exactly the 8 keys in order.
func decodeBody(t testing.TB, body []byte) map[string]any {
	t.Helper()
	if !json.Valid(body) {
		t.Fatalf("body is not valid JSON: %s", body)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("body does not start with an object: %v %v", tok, err)
	}
	var keys []string
	m := map[string]any{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reading key: %v", err)
		}
		k := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("reading value of %q: %v", k, err)
		}
		keys = append(keys, k)
		m[k] = v
	}
	if !reflect.DeepEqual(keys, bodyKeys) {
		t.Fatalf("keys = %v, want exactly %v", keys, bodyKeys)
	}
	return m
}

func TestAppendBody(t *testing.T) {
	data := []byte(`[{"name":"Ada","email":"ada@example.com"},{"z":"1","a":"2"}]`)
	tests := []struct {
		name      string
		page      Page
		want      string // the exact raw body
		wantExtra any
	}{
		{
			name: "extra as string",
			page: Page{Template: "CUSTOMERS", UploadID: "01JD", Data: data, TotalRecords: 1234, TotalPages: 13, Page: 1, PageSize: 2, Extra: []byte(`"batch-7"`)},
			want: `{"template":"CUSTOMERS","uploadId":"01JD","data":[{"name":"Ada","email":"ada@example.com"},{"z":"1","a":"2"}],` +
				`"totalRecords":1234,"totalPages":13,"page":1,"pageSize":2,"extra":"batch-7"}`,
			wantExtra: "batch-7",
		},
		{
			name: "extra as object",
			page: Page{Template: "T", UploadID: "u", Data: data, TotalRecords: 2, TotalPages: 1, Page: 1, PageSize: 2, Extra: []byte(`{"k":[1,2],"a":null}`)},
			want: `{"template":"T","uploadId":"u","data":[{"name":"Ada","email":"ada@example.com"},{"z":"1","a":"2"}],` +
				`"totalRecords":2,"totalPages":1,"page":1,"pageSize":2,"extra":{"k":[1,2],"a":null}}`,
			wantExtra: map[string]any{"k": []any{json.Number("1"), json.Number("2")}, "a": nil},
		},
		{
			name:      "extra absent, data absent",
			page:      Page{Template: "T", UploadID: "u", TotalRecords: 0, TotalPages: 0, Page: 0, PageSize: 0},
			want:      `{"template":"T","uploadId":"u","data":[],"totalRecords":0,"totalPages":0,"page":0,"pageSize":0,"extra":""}`,
			wantExtra: "",
		},
		{
			name: "special characters",
			page: Page{Template: "a\"b\\c\n\t\x01</>&é€😀\u2028", UploadID: "id\x7f\xff.", Data: []byte(`[]`), TotalRecords: -1, TotalPages: 1 << 40, Page: 3, PageSize: 100, Extra: nil},
			want: `{"template":"a\"b\\c\n\t\u0001</>&é€😀\u2028","uploadId":"id` + "\x7f" + `\ufffd.","data":[],` +
				`"totalRecords":-1,"totalPages":1099511627776,"page":3,"pageSize":100,"extra":""}`,
			wantExtra: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AppendBody(nil, tt.page)
			if string(got) != tt.want {
				t.Fatalf("body\n got %s\nwant %s", got, tt.want)
			}
			m := decodeBody(t, got)
			// Template and uploadId decode to what encoding/json makes of them.
			for key, s := range map[string]string{"template": tt.page.Template, "uploadId": tt.page.UploadID} {
				var want string
				enc, _ := json.Marshal(s)
				_ = json.Unmarshal(enc, &want)
				if m[key] != want {
					t.Errorf("%s = %q, want %q", key, m[key], want)
				}
			}
			if !reflect.DeepEqual(m["extra"], tt.wantExtra) {
				t.Errorf("extra = %#v, want %#v", m["extra"], tt.wantExtra)
			}
			// Appending keeps what dst held.
			prefix := []byte("prefix:")
			if got2 := AppendBody(prefix, tt.page); string(got2) != "prefix:"+tt.want {
				t.Errorf("append to a non-empty dst = %s", got2)
			}
		})
	}
}

func TestAppendBodyKeepsDataVerbatim(t *testing.T) {
	// Field order, number spelling and whitespace of the records survive: no re-encoding.
	data := []byte("[ {\"z\": 1.50, \"a\": \"\\u00e9\"} ]")
	got := AppendBody(nil, Page{Data: data})
	if !bytes.Contains(got, []byte(`"data":`+string(data)+`,`)) {
		t.Fatalf("data not copied verbatim: %s", got)
	}
}

func TestAppendBodyAllocationFree(t *testing.T) {
	p := Page{Template: "T\"x", UploadID: "u\n", Data: []byte(`[1,2]`), Extra: []byte(`"e"`), TotalRecords: 5, TotalPages: 1, Page: 1, PageSize: 5}
	dst := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(200, func() { dst = AppendBody(dst[:0], p) }); n != 0 {
		t.Fatalf("AppendBody allocated %v times with a pre-sized dst", n)
	}
}

func FuzzAppendBody(f *testing.F) {
	f.Add("CUSTOMERS", "01JD", 1234, 13, 1, 100, []byte(`"x"`))
	f.Add("a\"b\\c\n", "id\xff", -1, 0, 0, 0, []byte(nil))
	f.Add("\u2028\x00", "", 1<<62, -5, 7, 9, []byte(`{"k":[1,{"z":null}]}`))
	f.Add("é€😀", "..", 0, 0, 0, 0, []byte(`not json`))
	f.Fuzz(func(t *testing.T, template, uploadID string, total, pages, page, size int, extra []byte) {
		if len(extra) > 0 && !json.Valid(extra) {
			extra = nil // AppendBody copies Extra as is: the caller guarantees it is JSON.
		}
		p := Page{Template: template, UploadID: uploadID, Data: []byte(`[{"a":"b"}]`),
			TotalRecords: total, TotalPages: pages, Page: page, PageSize: size, Extra: extra}
		body := AppendBody(nil, p)
		m := decodeBody(t, body)
		for key, s := range map[string]string{"template": template, "uploadId": uploadID} {
			var want string
			enc, _ := json.Marshal(s)
			_ = json.Unmarshal(enc, &want)
			if m[key] != want {
				t.Fatalf("%s = %q, want %q", key, m[key], want)
			}
		}
		for key, n := range map[string]int{"totalRecords": total, "totalPages": pages, "page": page, "pageSize": size} {
			if got, _ := m[key].(json.Number).Int64(); got != int64(n) {
				t.Fatalf("%s = %v, want %d", key, m[key], n)
			}
		}
	})
}

func BenchmarkAppendBody(b *testing.B) {
	var records bytes.Buffer
	records.WriteByte('[')
	for i := range 100 {
		if i > 0 {
			records.WriteByte(',')
		}
		records.WriteString(`{"name":"Ada Lovelace","email":"ada@example.com","city":"London","n":"12345"}`)
	}
	records.WriteByte(']')
	p := Page{Template: "CUSTOMERS", UploadID: "01JD7Q2M5X9K3V8N4B6T1R0W2Y", Data: records.Bytes(),
		TotalRecords: 123456, TotalPages: 1235, Page: 17, PageSize: 100, Extra: []byte(`{"source":"crm","batch":"b\"7"}`)}
	dst := make([]byte, 0, len(p.Data)+512)
	b.ReportAllocs()
	b.SetBytes(int64(len(AppendBody(nil, p))))
	for b.Loop() {
		dst = AppendBody(dst[:0], p)
	}
	if testing.AllocsPerRun(100, func() { dst = AppendBody(dst[:0], p) }) != 0 {
		b.Fatal("AppendBody allocated with a pre-sized dst")
	}
}
