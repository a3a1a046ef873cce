package e2e

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// delivered imports a file and returns the records the receiver got, in
// page order, once the upload is completed.
func (e *env) delivered(t *testing.T, rc *apitest.Receiver, fields map[string]string, name, ctype string, content []byte) []string {
	t.Helper()
	before := len(rc.Requests())
	status, body := e.multipart(keyA, fields, name, ctype, string(content))
	if status != http.StatusAccepted {
		t.Fatalf("import %s: %d %s", name, status, body)
	}
	var acc apitest.Accepted
	if err := json.Unmarshal(body, &acc); err != nil {
		t.Fatal(err)
	}
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "completed" {
		t.Fatalf("upload %+v", u)
	}
	var got []string
	for _, r := range rc.Requests()[before:] {
		if r.Page.UploadID != acc.UploadID {
			t.Fatalf("request of another upload: %s", r.ID)
		}
		for _, d := range r.Page.Data {
			got = append(got, string(d))
		}
	}
	return got
}

func equalRecords(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("records:\n got %q\nwant %q", got, want)
	}
}

// CSV files as Excel and others write them arrive as the rows they hold.
func TestCSVDialects(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "CSV", map[string]any{"url": rc.HookURL(), "chunkSize": 2})
	want := []string{
		`{"Name":"Zoë Müller","City":"Köln","Amount":"1.234,50"}`,
		`{"Name":"José","City":"Bogotá; Centro","Amount":"12"}`,
		`{"Name":"Ann \"Nan\" Lee","City":"Kraków","Amount":"7"}`,
	}
	files, err := filepath.Glob("../../../../pkg/records/testdata/dialects/*.[ct]sv")
	if err != nil || len(files) < 7 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			equalRecords(t, e.delivered(t, rc, map[string]string{"template": "CSV"}, filepath.Base(path), "", data), want)
		})
	}
	t.Run("delimiter field", func(t *testing.T) {
		got := e.delivered(t, rc, map[string]string{"template": "CSV", "delimiter": ","}, "x.csv", "text/csv", []byte("a;b,c\n1;2,3\n"))
		equalRecords(t, got, []string{`{"a;b":"1;2","c":"3"}`})
		got = e.delivered(t, rc, map[string]string{"template": "CSV", "delimiter": "tab"}, "x.csv", "text/csv", []byte("a;b\tc\n1;2\t3\n"))
		equalRecords(t, got, []string{`{"a;b":"1;2","c":"3"}`})
	})
	for _, tc := range []struct{ name, in, msg string }{
		{"duplicate column", "id;name;id\n1;2;3\n", `duplicate column name \"id\" (column 1 and column 3)`},
		{"empty column", "id;;x\n1;2;3\n", "column 2 has an empty name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.multipart(keyA, map[string]string{"template": "CSV"}, "x.csv", "", tc.in)
			if status != http.StatusBadRequest || !strings.Contains(string(body), tc.msg) {
				t.Fatalf("%d %s, want 400 saying %q", status, body, tc.msg)
			}
		})
	}
	status, body := e.multipart(keyA, map[string]string{"template": "CSV", "delimiter": ":"}, "x.csv", "", "a:b\n")
	if status != http.StatusBadRequest || !strings.Contains(string(body), `"field":"delimiter"`) {
		t.Fatalf("delimiter ':': %d %s", status, body)
	}
}

// testWorkbook is an XLSX file as spreadsheet programs write one.
func testWorkbook(t *testing.T) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	numFmt := func(code string) int {
		id, err := f.NewStyle(&excelize.Style{CustomNumFmt: &code})
		must(err)
		return id
	}
	// Row 1 empty; the header on row 2.
	must(f.SetSheetRow("Sheet1", "A2", &[]any{"Name", "Joined", "Amount", "Note"}))
	must(f.SetSheetRow("Sheet1", "A3", &[]any{"Zoë", time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC), 1234.5, "first"}))
	must(f.SetCellValue("Sheet1", "A4", "José")) // B4 and the trailing D4 empty
	must(f.SetCellValue("Sheet1", "C4", 7))
	must(f.SetCellValue("Sheet1", "A6", "after an empty row"))
	must(f.SetCellStyle("Sheet1", "B3", "B6", numFmt("dd.mm.yyyy")))
	must(f.SetCellStyle("Sheet1", "C3", "C6", numFmt("#,##0.00")))
	_, err := f.NewSheet("Orders")
	must(err)
	must(f.SetSheetRow("Orders", "A1", &[]any{"order", "paid"}))
	must(f.SetSheetRow("Orders", "A2", &[]any{1001, true}))
	var buf bytes.Buffer
	must(f.Write(&buf))
	return buf.Bytes()
}

func TestXLSXImport(t *testing.T) {
	e := newEnv(t, withVar("HOOKLINE_MAX_UNZIP_BYTES", "1048576"), withVar("HOOKLINE_TEMP_DIR", t.TempDir()))
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "XL", map[string]any{"url": rc.HookURL()})
	book := testWorkbook(t)
	const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

	got := e.delivered(t, rc, map[string]string{"template": "XL"}, "Book1.xlsx", xlsxType, book)
	equalRecords(t, got, []string{
		`{"Name":"Zoë","Joined":"09.03.2024","Amount":"1,234.50","Note":"first"}`,
		`{"Name":"José","Joined":"","Amount":"7.00","Note":""}`,
		`{"Name":"after an empty row","Joined":"","Amount":"","Note":""}`,
	})
	got = e.delivered(t, rc, map[string]string{"template": "XL", "sheet": "Orders"}, "Book1.xlsx", "", book)
	equalRecords(t, got, []string{`{"order":"1001","paid":"TRUE"}`})
	if left, _ := os.ReadDir(e.vars["HOOKLINE_TEMP_DIR"]); len(left) != 0 {
		t.Errorf("spooled files left behind: %v", left)
	}

	// A sheet that unzips to 2 MB, over the 1 MiB limit.
	f := excelize.NewFile()
	sw, _ := f.NewStreamWriter("Sheet1")
	for r := 1; r <= 2000; r++ {
		cell, _ := excelize.CoordinatesToCellName(1, r)
		if err := sw.SetRow(cell, []any{strings.Repeat("x", 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	_ = sw.Flush()
	var bomb bytes.Buffer
	_ = f.Write(&bomb)
	_ = f.Close()
	if bomb.Len() > 100<<10 {
		t.Fatalf("the bomb is %d bytes", bomb.Len())
	}
	var notBook bytes.Buffer
	zw := zip.NewWriter(&notBook)
	w, _ := zw.Create("a.txt")
	_, _ = w.Write([]byte("hello"))
	_ = zw.Close()
	ole := "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" + strings.Repeat("\x00", 504)

	pagesBefore := e.streamMsgs("HOOKLINE_PAGES")
	for _, tc := range []struct {
		name, fields, file, ctype, content string
		status                             int
		msg                                []string
	}{
		{"zip bomb", "", "bomb.xlsx", xlsxType, bomb.String(), http.StatusRequestEntityTooLarge, []string{"1048576"}},
		{"legacy xls", "", "old.xls", "application/vnd.ms-excel", ole, http.StatusUnsupportedMediaType, []string{"legacy", ".xlsx"}},
		{"xls bytes named xlsx", "", "old.xlsx", "", ole, http.StatusUnsupportedMediaType, []string{"legacy", ".xlsx"}},
		{"zip named csv", "", "data.csv", "text/csv", string(book), http.StatusUnsupportedMediaType, []string{`\"data.csv\"`, `\"text/csv\"`, "ZIP"}},
		{"zip that is no workbook", "", "a.xlsx", "", notBook.String(), http.StatusBadRequest, []string{"not a valid XLSX workbook"}},
		{"no such sheet", "Nope", "Book1.xlsx", "", string(book), http.StatusBadRequest, []string{`"field":"sheet"`, `\"Orders\"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields := map[string]string{"template": "XL"}
			if tc.fields != "" {
				fields["sheet"] = tc.fields
			}
			status, body := e.multipart(keyA, fields, tc.file, tc.ctype, tc.content)
			if status != tc.status {
				t.Fatalf("%d %s, want %d", status, body, tc.status)
			}
			for _, m := range tc.msg {
				if !strings.Contains(string(body), m) {
					t.Errorf("%s does not say %s", body, m)
				}
			}
		})
	}
	if n := e.streamMsgs("HOOKLINE_PAGES"); n != pagesBefore {
		t.Errorf("refused files left %d pages", n-pagesBefore)
	}
}

func TestRecordFormat(t *testing.T) {
	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	format := json.RawMessage(`{"email": "{{Email Address}}", "age": "{{Age | number}}", "vip": "{{VIP | boolean}}",
		"tags": ["{{Tags | json}}", "import"], "profile": {"name": "{{First}} {{Last}}"}, "source": "import", "rank": 1}`)
	e.client.PutTemplate(keyA, "FMT", map[string]any{"url": rc.HookURL(), "chunkSize": 2, "recordFormat": format})
	csv := "Email Address;First;Last;Age;VIP;Tags\n" +
		"ann@example.com;Ann;Lee;42;yes;\"[\"\"a\"\"]\"\n" +
		"bo@example.com;Bo;Li;;FALSE;\n" +
		"cy@example.com;Cy;;7.5;1;\"{\"\"k\"\":1}\"\n"
	got := e.delivered(t, rc, map[string]string{"template": "FMT"}, "people.csv", "", []byte(csv))
	equalRecords(t, got, []string{
		`{"email":"ann@example.com","age":42,"vip":true,"tags":[["a"],"import"],"profile":{"name":"Ann Lee"},"source":"import","rank":1}`,
		`{"email":"bo@example.com","age":null,"vip":false,"tags":[null,"import"],"profile":{"name":"Bo Li"},"source":"import","rank":1}`,
		`{"email":"cy@example.com","age":7.5,"vip":true,"tags":[{"k":1},"import"],"profile":{"name":"Cy "},"source":"import","rank":1}`,
	})
	// The same format over a JSON import.
	acc := e.client.ImportJSON(keyA, map[string]any{"template": "FMT", "records": []any{
		map[string]any{"Email Address": "d@example.com", "First": "D", "Last": "E", "Age": 3, "VIP": true, "Tags": "[1]"},
	}})
	e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second)
	last := rc.Requests()[len(rc.Requests())-1].Page.Data
	if len(last) != 1 || string(last[0]) != `{"email":"d@example.com","age":3,"vip":true,"tags":[[1],"import"],"profile":{"name":"D E"},"source":"import","rank":1}` {
		t.Fatalf("JSON import delivered %q", last)
	}

	// Refused imports store nothing and deliver nothing.
	requestsBefore := len(rc.Requests())
	pagesBefore := e.streamMsgs("HOOKLINE_PAGES")
	big := strings.Repeat("x@example.com;X;Y;1;no;[]\n", 500) // many pages before the bad cell
	for _, tc := range []struct{ name, csv, msg string }{
		{"missing column", "Email Address;First;Age;VIP;Tags\na;b;1;no;[]\n", `column \"Last\": the file has no such column`},
		{"unconvertible cell", "Email Address;First;Last;Age;VIP;Tags\n" + big + "z@example.com;Z;Q;forty;no;[]\n",
			`line 502: record 501: column \"Age\": \"forty\" is not a number`},
		{"bad boolean", "Email Address;First;Last;Age;VIP;Tags\na;b;c;1;maybe;[]\n", `column \"VIP\": \"maybe\" is not a boolean`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.multipart(keyA, map[string]string{"template": "FMT"}, "people.csv", "", tc.csv)
			if status != http.StatusBadRequest || !strings.Contains(string(body), tc.msg) {
				t.Fatalf("%d %s, want 400 saying %s", status, body, tc.msg)
			}
		})
	}
	apitest.Eventually(t, 10*time.Second, "the refused imports' pages purged", func() bool {
		return e.streamMsgs("HOOKLINE_PAGES") == pagesBefore
	})
	// An import accepted after them is delivered alone: had a refused page
	// been let through, it would have arrived before this one finished.
	got = e.delivered(t, rc, map[string]string{"template": "FMT"}, "people.csv", "", []byte(csv))
	if len(got) != 3 || len(rc.Requests()) != requestsBefore+2 {
		t.Fatalf("after the refused imports the receiver got %d requests, want %d", len(rc.Requests())-requestsBefore, 2)
	}
	if us := e.client.ListUploads(keyA); len(us) != 3 {
		t.Errorf("%d uploads, want 3: refused imports leave none", len(us))
	}

	// A bad recordFormat is refused when the template is stored.
	for _, tc := range []struct {
		format any
		field  string
	}{
		{map[string]any{"a": "{{x | date}}"}, "destination.webhook.recordFormat.a"},
		{map[string]any{"p": map[string]any{"n": "{{First"}}, "destination.webhook.recordFormat.p.n"},
		{map[string]any{"a": "Mr {{x | number}}"}, "destination.webhook.recordFormat.a"},
		{[]any{"{{x}}"}, "destination.webhook.recordFormat"},
	} {
		status, body := e.client.Call(keyA, http.MethodPut, "/v1/templates/BAD", map[string]any{"destination": map[string]any{
			"webhook": map[string]any{"url": rc.HookURL(), "recordFormat": tc.format}}})
		if status != http.StatusBadRequest || !strings.Contains(string(body), `"field":"`+tc.field+`"`) {
			t.Errorf("recordFormat %v: %d %s, want 400 naming %s", tc.format, status, body, tc.field)
		}
	}
	// The stored template shows its format.
	tpl := e.client.MustCall(keyA, http.MethodGet, "/v1/templates/FMT", nil, http.StatusOK)
	if !strings.Contains(string(tpl), `"recordFormat":{"email":"{{Email Address}}","age":"{{Age | number}}"`) {
		t.Errorf("template %s does not show its recordFormat", tpl)
	}
}
