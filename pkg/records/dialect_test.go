package records

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// openAll reads every record of a file through Open.
func openAll(t testing.TB, data []byte, ctype, name string, opts Options) ([]string, error) {
	t.Helper()
	rd, err := Open(bytes.NewReader(data), ctype, name, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := rd.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	var recs []string
	for {
		rec, err := rd.Next()
		if err == io.EOF {
			return recs, nil
		}
		if err != nil {
			return recs, err
		}
		recs = append(recs, string(rec))
	}
}

// The files of testdata/dialects hold the same rows, written as
// spreadsheet programs write CSV.
func TestDialects(t *testing.T) {
	want := []string{
		`{"Name":"Zoë Müller","City":"Köln","Amount":"1.234,50"}`,
		`{"Name":"José","City":"Bogotá; Centro","Amount":"12"}`,
		`{"Name":"Ann \"Nan\" Lee","City":"Kraków","Amount":"7"}`,
	}
	files, err := filepath.Glob("testdata/dialects/*.[ct]sv")
	if err != nil || len(files) < 7 {
		t.Fatalf("fixtures: %v %v", files, err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := openAll(t, data, "", filepath.Base(path), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("records:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestDelimiterDetection(t *testing.T) {
	tests := []struct {
		name, in string
		delim    rune // the form's; 0 detects
		want     []string
	}{
		{"comma", "a,b\n1,2\n", 0, []string{`{"a":"1","b":"2"}`}},
		{"semicolon with commas in cells", "a;b\n1,5;2,5\n", 0, []string{`{"a":"1,5","b":"2,5"}`}},
		{"tab", "a\tb\n1\t2\n", 0, []string{`{"a":"1","b":"2"}`}},
		{"pipe", "a|b|c\n1|2|3\n", 0, []string{`{"a":"1","b":"2","c":"3"}`}},
		{"quoted delimiters do not count", "\"x;y;z\",b\n1,2\n", 0, []string{`{"x;y;z":"1","b":"2"}`}},
		{"quoted newline in header", "\"a\nb\";c;d\n1;2;3\n", 0, []string{`{"a\nb":"1","c":"2","d":"3"}`}},
		{"only the header line counts", "a;b\n1,2,3,4;5\n", 0, []string{`{"a":"1,2,3,4","b":"5"}`}},
		{"tie: comma first", "a,b;c\n1,2;3\n", 0, []string{`{"a":"1","b;c":"2;3"}`}},
		{"one column", "name\nx\n", 0, []string{`{"name":"x"}`}},
		{"the form's delimiter wins", "a;b,c\n1;2,3\n", ',', []string{`{"a;b":"1;2","c":"3"}`}},
		{"the form's semicolon", "a,b;c\n1,2;3\n", ';', []string{`{"a,b":"1,2","c":"3"}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := openAll(t, []byte(tc.in), "text/csv", "", Options{Delimiter: tc.delim})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("records:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	if _, err := Open(strings.NewReader("a:b\n"), "text/csv", "", Options{Delimiter: ':'}); err == nil {
		t.Error("delimiter ':' accepted")
	}
}

func TestTextEncodings(t *testing.T) {
	long := strings.Repeat("x", sniffBytes)
	tests := []struct {
		name, in string
		want     []string
	}{
		{"utf-8 bom dropped", "\xEF\xBB\xBFa\nb\n", []string{`{"a":"b"}`}},
		{"utf-8 bom then windows-1252", "\xEF\xBB\xBFa\n\xe9\n", []string{`{"a":"é"}`}},
		{"utf-16le", "\xFF\xFEa\x00\n\x00\xe9\x00\n\x00", []string{`{"a":"é"}`}},
		{"utf-16be", "\xFE\xFF\x00a\x00\n\x00\xe9\x00\n", []string{`{"a":"é"}`}},
		{"windows-1252 specials", "a\n\x80\x9c\x8a\n", []string{`{"a":"€œŠ"}`}},
		{"windows-1252 undefined bytes kept as C1 controls", "a\n\x81\x9d\n", []string{"{\"a\":\"\u0081\u009d\"}"}},
		{"utf-8 kept", "a\nč日本\n", []string{`{"a":"č日本"}`}},
		// A UTF-8 start: the rest stays UTF-8 and a stray byte after it
		// is Windows-1252, never U+FFFD.
		{"stray byte after the sniffed start", "a\nč\n" + long + "\n\xe9\n",
			[]string{`{"a":"č"}`, `{"a":"` + long + `"}`, `{"a":"é"}`}},
		{"utf-8 cut at the sniff boundary", "a\n" + long[:sniffBytes-4] + "é\n",
			[]string{`{"a":"` + long[:sniffBytes-4] + `é"}`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := openAll(t, []byte(tc.in), "", "x.csv", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("records:\n got %.200q\nwant %.200q", got, tc.want)
			}
		})
	}
}

func TestSignatures(t *testing.T) {
	zipBytes := []byte("PK\x03\x04rest of a zip")
	ole := []byte("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest")
	tests := []struct {
		name, ctype, file string
		data              []byte
		want              []string // in the message
	}{
		{"zip named csv", "", "data.csv", zipBytes, []string{`"data.csv"`, "ZIP", "CSV"}},
		{"zip typed csv", "text/csv", "data.csv", zipBytes, []string{`"data.csv"`, `"text/csv"`, "ZIP"}},
		{"zip named json", "", "data.json", zipBytes, []string{`"data.json"`, "ZIP", "JSON"}},
		{"xls by name", "", "old.xls", ole, []string{`"old.xls"`, ".xlsx"}},
		{"xls bytes named xlsx", "", "old.xlsx", ole, []string{`"old.xlsx"`, "legacy", ".xlsx"}},
		{"xls bytes named csv", "text/csv", "old.csv", ole, []string{"legacy", ".xlsx"}},
		{"text named xlsx", "", "book.xlsx", []byte("a,b\n1,2\n"), []string{`"book.xlsx"`, "XLSX", "not"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(bytes.NewReader(tc.data), tc.ctype, tc.file, Options{})
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrUnknownFormat) {
				t.Fatalf("got %v (%T), want a *FormatError", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

// A CSV file that arrives slowly is read as it comes: the first records are
// there before the rest of the file (here: before its end is ever written).
func TestCSVReadAsItArrives(t *testing.T) {
	for _, start := range []string{"a;b\n1;2\n", "\xEF\xBB\xBF\"a\nx\",b\n1,2\n", "\xFF\xFEa\x00,\x00b\x00\n\x001\x00,\x002\x00\n\x00"} {
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.Close() })
		go func() { _, _ = pw.Write([]byte(start)) }()
		got := make(chan string, 1)
		go func() {
			rd, err := Open(pr, "text/csv", "x.csv", Options{})
			if err != nil {
				got <- err.Error()
				return
			}
			rec, err := rd.Next()
			if err != nil {
				got <- err.Error()
				return
			}
			got <- string(rec)
		}()
		select {
		case rec := <-got:
			if !strings.HasPrefix(rec, "{") || !strings.Contains(rec, `"2"`) {
				t.Errorf("%q: first record %s", start, rec)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q: no record within 10s while the file was still arriving", start)
		}
	}
}
