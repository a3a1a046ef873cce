package records

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/xuri/excelize/v2"
)

// xlsxReader reads one worksheet of an XLSX file with excelize's streaming
// row reader: the first non-empty row is the header, each later non-empty
// row a record, each cell the text Excel shows for it (its number format
// applied), missing and empty cells "".
type xlsxReader struct {
	sticky
	path  string // the spooled copy, removed by Close
	book  *excelize.File
	rows  *excelize.Rows
	sheet string
	cols  columns
	plan  *Plan
	row   int64 // the worksheet row last read
	head  bool  // the header is read
	cells []string
	out   []byte
}

// openXLSX spools r to a temporary file and opens its worksheet.
func openXLSX(r io.Reader, opts Options) (_ ReadCloser, err error) {
	tmp, err := os.CreateTemp(opts.TempDir, "hookline-upload-*.xlsx")
	if err != nil {
		return nil, fmt.Errorf("records: spool XLSX file: %w", err)
	}
	x := &xlsxReader{path: tmp.Name(), plan: opts.Plan, cols: columns{lim: opts.Limits, label: xlsxColumn}}
	x.sticky.next = x.next
	defer func() {
		if err != nil {
			_ = x.Close()
		}
	}()
	_, err = io.Copy(tmp, r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("records: reading input: %w", err)
	}
	limit := opts.MaxUnzipBytes
	if limit <= 0 {
		limit = DefaultMaxUnzipBytes
	}
	x.book, err = excelize.OpenFile(x.path, excelize.Options{
		UnzipSizeLimit: limit, UnzipXMLSizeLimit: min(limit, excelize.StreamChunkSize), TmpDir: opts.TempDir,
	})
	if err != nil {
		// excelize's size error has no type of its own: it is known by its text.
		if err.Error() == fmt.Sprintf("unzip size exceeds the %d bytes limit", limit) {
			return nil, &LimitError{Limit: limit, Msg: fmt.Sprintf("the XLSX file unzips to more than %d bytes, the limit", limit)}
		}
		return nil, &ParseError{Msg: "not a valid XLSX workbook: " + err.Error()}
	}
	x.sheet = opts.Sheet
	if x.sheet == "" {
		x.sheet = x.book.GetSheetName(0)
	}
	if x.rows, err = x.book.Rows(x.sheet); err != nil {
		var missing excelize.ErrSheetNotExist
		if errors.As(err, &missing) && !slices.Contains(x.book.GetSheetList(), x.sheet) {
			return nil, &OptionError{Field: "sheet", Msg: fmt.Sprintf("the workbook has no worksheet %q; it has %s", x.sheet, quoteList(x.book.GetSheetList()))}
		}
		// Listed but not readable: the workbook names a part it does not hold.
		return nil, &ParseError{Msg: fmt.Sprintf("not a valid XLSX workbook: worksheet %q: %v", x.sheet, err)}
	}
	return x, nil
}

// OptionError is a bad option of a file's reading (a worksheet that is not
// there): Field names the form field.
type OptionError struct {
	Field string
	Msg   string
}

func (e *OptionError) Error() string { return e.Msg }

func (x *xlsxReader) next() ([]byte, error) {
	for x.rows.Next() {
		x.row++
		cells, err := x.rows.Columns()
		if err != nil {
			return nil, &ParseError{Row: x.row, Msg: err.Error()}
		}
		for len(cells) > 0 && cells[len(cells)-1] == "" {
			cells = cells[:len(cells)-1]
		}
		if len(cells) == 0 {
			continue // a wholly empty row
		}
		if !x.head {
			x.head = true
			if f := x.cols.setHeader(cells, x.plan); f != nil {
				return nil, &ParseError{Row: x.row, Msg: f.msg}
			}
			continue
		}
		n := len(x.cols.names)
		if len(cells) > n {
			for i := n; i < len(cells); i++ {
				if cells[i] != "" {
					return nil, &ParseError{Row: x.row,
						Msg: fmt.Sprintf("cell %s%d has a value, but column %s has no name in the header", xlsxLetters(i), x.row, xlsxLetters(i))}
				}
			}
		}
		x.cells = append(x.cells[:0], cells[:min(len(cells), n)]...)
		for len(x.cells) < n {
			x.cells = append(x.cells, "")
		}
		out, f := x.cols.appendRecord(x.out, x.cells)
		if f != nil {
			msg := f.msg
			if f.cell >= 0 {
				msg = fmt.Sprintf("cell %s%d: %s", xlsxLetters(f.cell), x.row, msg)
			}
			return nil, &ParseError{Row: x.row, Msg: msg}
		}
		x.out = out
		return out, nil
	}
	if err := x.rows.Error(); err != nil {
		return nil, &ParseError{Row: x.row, Msg: err.Error()}
	}
	if !x.head {
		return nil, &ParseError{Msg: fmt.Sprintf("worksheet %q has no header row: it is empty", x.sheet)}
	}
	return nil, io.EOF
}

// Close closes the workbook and removes the spooled copy and what excelize
// unzipped.
func (x *xlsxReader) Close() error {
	var errs []error
	if x.rows != nil {
		_ = x.rows.Close() // returns the reader's error, already reported
	}
	if x.book != nil {
		errs = append(errs, x.book.Close())
	}
	if err := os.Remove(x.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// xlsxLetters names column i (0-based) as Excel does: A, B, …, AA.
func xlsxLetters(i int) string {
	name, _ := excelize.ColumnNumberToName(i + 1)
	return name
}

func xlsxColumn(i int) string { return "column " + xlsxLetters(i) }

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}
