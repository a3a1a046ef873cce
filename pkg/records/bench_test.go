package records

import (
	"bytes"
	"io"
	"testing"
)

func benchInput(rows int, row func(int, []byte) []byte, first int) []byte {
	var b []byte
	for i := first; i < rows; i++ {
		b = row(i, b)
	}
	return b
}

func benchRead(b *testing.B, f Format, in []byte, rows int) {
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		r, err := NewReader(f, bytes.NewReader(in), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != rows {
			b.Fatalf("got %d records, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/record")
}

// BenchmarkCSV reads a 10-column CSV file of 10k rows.
func BenchmarkCSV(b *testing.B) {
	const rows = 10_000
	benchRead(b, CSV, benchInput(rows, csvRow, -1), rows)
}

// BenchmarkNDJSON reads an NDJSON file of 10k objects with 10 keys.
func BenchmarkNDJSON(b *testing.B) {
	const rows = 10_000
	benchRead(b, NDJSON, benchInput(rows, ndjsonRow, 0), rows)
}

// BenchmarkJSONArray reads a JSON array of 10k objects with 10 keys.
func BenchmarkJSONArray(b *testing.B) {
	const rows = 10_000
	in := []byte("[\n")
	for i := 0; i < rows; i++ {
		if i > 0 {
			in = append(in, ',')
		}
		in = ndjsonRow(i, in)
	}
	in = append(in, "]\n"...)
	benchRead(b, JSONArray, in, rows)
}
