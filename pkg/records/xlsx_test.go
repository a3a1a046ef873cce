package records

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// testWorkbook is a workbook as a spreadsheet program writes one: an empty
// first row, dates and formatted numbers, empty cells, a second sheet.
func testWorkbook(t testing.TB) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	const s = "Sheet1"
	set := func(sheet, cell string, v any) {
		if err := f.SetCellValue(sheet, cell, v); err != nil {
			t.Fatal(err)
		}
	}
	style := func(fmtCode string) int {
		id, err := f.NewStyle(&excelize.Style{CustomNumFmt: &fmtCode})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// Row 1 is empty; the header is row 2.
	for i, h := range []string{"Name", "Joined", "Amount", "Share", "Note"} {
		cell, _ := excelize.CoordinatesToCellName(i+1, 2)
		set(s, cell, h)
	}
	set(s, "A3", "Zoë")
	set(s, "B3", time.Date(2024, 3, 9, 0, 0, 0, 0, time.UTC))
	set(s, "C3", 1234.5)
	set(s, "D3", 0.125)
	set(s, "E3", "first")
	_ = f.SetCellStyle(s, "B3", "B4", style("yyyy-mm-dd"))
	_ = f.SetCellStyle(s, "C3", "C4", style("#,##0.00"))
	_ = f.SetCellStyle(s, "D3", "D4", style("0.0%"))
	// Row 4: empty cells in the middle and at the end.
	set(s, "A4", "José")
	set(s, "C4", 7)
	// Row 5 is wholly empty; row 6 has a value in A only.
	set(s, "A6", "last")
	if _, err := f.NewSheet("People"); err != nil {
		t.Fatal(err)
	}
	set("People", "A1", "id")
	set("People", "B1", "ok")
	set("People", "A2", 42)
	set("People", "B2", true)
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestXLSX(t *testing.T) {
	book := testWorkbook(t)
	tests := []struct {
		name  string
		opts  Options
		want  []string
		field string // an *OptionError's
	}{
		{name: "first sheet", want: []string{
			`{"Name":"Zoë","Joined":"2024-03-09","Amount":"1,234.50","Share":"12.5%","Note":"first"}`,
			`{"Name":"José","Joined":"","Amount":"7.00","Share":"","Note":""}`,
			`{"Name":"last","Joined":"","Amount":"","Share":"","Note":""}`,
		}},
		{name: "second sheet by name", opts: Options{Sheet: "People"}, want: []string{`{"id":"42","ok":"TRUE"}`}},
		{name: "no such sheet", opts: Options{Sheet: "Nope"}, field: "sheet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.TempDir = t.TempDir()
			got, err := openAll(t, book, "", "Book1.xlsx", tc.opts)
			if tc.field != "" {
				var oe *OptionError
				if !errors.As(err, &oe) || oe.Field != tc.field || !strings.Contains(oe.Msg, `"People"`) {
					t.Fatalf("got %v, want an *OptionError of %s listing the sheets", err, tc.field)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("records:\n got %q\nwant %q", got, tc.want)
			}
			// The spooled copy and excelize's files are gone.
			if left, _ := os.ReadDir(tc.opts.TempDir); len(left) != 0 {
				t.Errorf("left in the temporary directory: %v", left)
			}
		})
	}
}

func TestXLSXRecordFormat(t *testing.T) {
	plan, err := CompilePlan([]byte(`{"who":"{{Name}}","amount":"{{Amount}}","note":"{{Note | json}}"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = openAll(t, testWorkbook(t), "", "b.xlsx", Options{Plan: plan, TempDir: t.TempDir()})
	// Row 3's Note is "first", which is not JSON.
	pe := wantPE(t, err, 0, 0, `row 3: cell E3: column "Note": "first" is not valid JSON`)
	if pe.Row != 3 {
		t.Errorf("Row = %d", pe.Row)
	}
	plan, _ = CompilePlan([]byte(`{"x":"{{Missing}}"}`))
	_, err = openAll(t, testWorkbook(t), "", "b.xlsx", Options{Plan: plan, TempDir: t.TempDir()})
	wantPE(t, err, 0, 0, `row 2: column "Missing": the file has no such column`)
}

func TestXLSXFaults(t *testing.T) {
	// A sheet of 1 MiB of one repeated cell compresses to a few KiB.
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 1000)
	for r := 1; r <= 1000; r++ {
		cell, _ := excelize.CoordinatesToCellName(1, r)
		if err := sw.SetRow(cell, []any{big}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	var bomb bytes.Buffer
	if err := f.Write(&bomb); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	_, err = openAll(t, bomb.Bytes(), "", "bomb.xlsx", Options{MaxUnzipBytes: 256 << 10, TempDir: t.TempDir()})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != 256<<10 || !strings.Contains(le.Msg, "262144") {
		t.Fatalf("bomb: got %v (%T), want a *LimitError naming 262144", err, err)
	}
	// With room to unzip, the same file reads.
	recs, err := openAll(t, bomb.Bytes(), "", "bomb.xlsx", Options{TempDir: t.TempDir()})
	if err != nil || len(recs) != 999 {
		t.Fatalf("got %d records, %v", len(recs), err)
	}

	// A ZIP archive that is no workbook.
	var z bytes.Buffer
	zw := zip.NewWriter(&z)
	w, _ := zw.Create("hello.txt")
	_, _ = w.Write([]byte("hello"))
	_ = zw.Close()
	_, err = openAll(t, z.Bytes(), "", "not.xlsx", Options{TempDir: t.TempDir()})
	wantPE(t, err, 0, 0, "not a valid XLSX workbook")

	// An empty workbook, and a value beyond the header.
	f = excelize.NewFile()
	var empty bytes.Buffer
	_ = f.Write(&empty)
	_, err = openAll(t, empty.Bytes(), "", "e.xlsx", Options{TempDir: t.TempDir()})
	wantPE(t, err, 0, 0, `worksheet "Sheet1" has no header row`)
	_ = f.SetCellValue("Sheet1", "A1", "a")
	_ = f.SetCellValue("Sheet1", "A2", "1")
	_ = f.SetCellValue("Sheet1", "C2", "stray")
	var stray bytes.Buffer
	_ = f.Write(&stray)
	_, err = openAll(t, stray.Bytes(), "", "s.xlsx", Options{TempDir: t.TempDir()})
	wantPE(t, err, 0, 0, "row 2: cell C2 has a value, but column C has no name in the header")
	_ = f.SetCellValue("Sheet1", "C1", "c")
	var gap bytes.Buffer
	_ = f.Write(&gap)
	_, err = openAll(t, gap.Bytes(), "", "g.xlsx", Options{TempDir: t.TempDir()})
	wantPE(t, err, 0, 0, "row 1: column B has an empty name")
	_ = f.Close()
}
