package records

import (
	"fmt"
	"io"
	"strconv"
	"testing"
)

// csvRow appends row i of a generated 10-column CSV file (row -1 is the
// header).
func csvRow(i int, dst []byte) []byte {
	if i < 0 {
		return append(dst, "id,name,email,city,notes,amount,zip,country,tags,created\n"...)
	}
	dst = strconv.AppendInt(dst, int64(i), 10)
	dst = fmt.Appendf(dst, ",User %d,user%d@example.com,Oslo,\"says \"\"hi\"\", twice\",%d.%02d,%05d,NO,a;b;c,2024-01-02T03:04:05Z\n",
		i, i, i/100, i%100, i%100000)
	return dst
}

// ndjsonRow appends line i of a generated NDJSON file with 10 keys.
func ndjsonRow(i int, dst []byte) []byte {
	return fmt.Appendf(dst, `{"id":%d,"name":"User %d","email":"user%d@example.com","city":"Oslo","notes":"says \"hi\", twice",`+
		`"amount":%d.%02d,"zip":"%05d","country":"NO","tags":["a","b"],"created":"2024-01-02T03:04:05Z"}`+"\n",
		i, i, i, i/100, i%100, i%100000)
}

func csvInput(rows int) *genReader {
	return &genReader{n: rows + 1, line: func(i int, dst []byte) []byte { return csvRow(i-1, dst) }}
}

func TestLargeCSV(t *testing.T) {
	const rows = 200_000
	src := csvInput(rows)
	r, err := NewReader(CSV, src, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		rec, err := r.Next()
		if err != nil {
			if err != io.EOF {
				t.Fatalf("record %d: %v", n+1, err)
			}
			break
		}
		if n == 123_456 {
			want := `{"id":"123456","name":"User 123456","email":"user123456@example.com","city":"Oslo",` +
				`"notes":"says \"hi\", twice","amount":"1234.56","zip":"23456","country":"NO","tags":"a;b;c",` +
				`"created":"2024-01-02T03:04:05Z"}`
			if string(rec) != want {
				t.Errorf("record %d:\n got %s\nwant %s", n, rec, want)
			}
		}
		n++
	}
	if n != rows {
		t.Errorf("got %d records, want %d", n, rows)
	}
	t.Logf("%d records from %d bytes", n, src.read)
}

func TestLargeNDJSONAndArray(t *testing.T) {
	const rows = 50_000
	for _, f := range []Format{NDJSON, JSONArray} {
		t.Run(string(f), func(t *testing.T) {
			src := &genReader{n: rows + 2, line: func(i int, dst []byte) []byte {
				switch {
				case f == NDJSON && (i == 0 || i == rows+1):
					return append(dst, '\n')
				case i == 0:
					return append(dst, "[\n"...)
				case i == rows+1:
					return append(dst, "]\n"...)
				}
				if f == JSONArray && i > 1 {
					dst = append(dst, ',')
				}
				return ndjsonRow(i-1, dst)
			}}
			r, err := NewReader(f, src, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for {
				rec, err := r.Next()
				if err != nil {
					if err != io.EOF {
						t.Fatalf("record %d: %v", n+1, err)
					}
					break
				}
				if n == 4321 {
					want := string(ndjsonRow(n, nil))
					if string(rec)+"\n" != want {
						t.Errorf("record %d:\n got %s\nwant %s", n, rec, want)
					}
				}
				n++
			}
			if n != rows {
				t.Errorf("got %d records, want %d", n, rows)
			}
		})
	}
}
