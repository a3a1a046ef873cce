package ingest

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"testing"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/records"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

// benchRecord is one record as pkg/records emits it for a row of a
// 10-column CSV file (compact JSON, keys in column order).
func benchRecord(i int) []byte {
	n := strconv.Itoa(i)
	return []byte(`{"id":"` + n + `","first_name":"Ada","last_name":"Lovelace","email":"ada.lovelace` + n +
		`@example.com","phone":"+44 20 7946 1234","company":"Initech, Inc.","city":"London","country":"GB","amount":"` +
		n + `.25","created_at":"2025-11-12T12:34:56Z"}`)
}

// BenchmarkPageEncode measures what the importer does for each page: the
// page's records appended into one JSON array (records.Pager, the importer's
// own), then the protobuf Page encoded (queue.EncodePage) as it is
// published. One op is one page. (Publishing and the acknowledgement window
// are not included.)
func BenchmarkPageEncode(b *testing.B) {
	for _, per := range []int{100, 1000} {
		b.Run("records="+strconv.Itoa(per), func(b *testing.B) {
			recs := make([][]byte, per)
			size := 0
			for i := range recs {
				recs[i] = benchRecord(i)
				size += len(recs[i])
			}
			const id = "01JD0000000000000000000000"
			pager := records.NewPager(&repeatReader{recs: recs}, per, 0)
			buf := make([]byte, 0, 64<<10)
			var encoded int
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				page, n, err := pager.Next(buf[:0])
				if err != nil {
					b.Fatal(err)
				}
				data, err := queue.EncodePage(&hooklinev1.Page{
					UploadId: id, Page: uint32(pager.Pages()), RecordCount: uint32(n), Records: page,
				})
				if err != nil {
					b.Fatal(err)
				}
				encoded += len(data)
				buf = page
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pager.Records()), "ns/record")
			if encoded == 0 {
				b.Fatal("nothing encoded")
			}
		})
	}
}

// repeatReader returns its records over and over.
type repeatReader struct {
	recs [][]byte
	i    int
}

func (r *repeatReader) Next() ([]byte, error) {
	rec := r.recs[r.i%len(r.recs)]
	r.i++
	return rec, nil
}

// jsonImportBody is the body of a JSON import of n small records, as
// scripts/bench's BenchmarkJSONImport builds it; records first puts the
// records before the template.
func jsonImportBody(n int, recordsFirst bool) []byte {
	var recs []byte
	for i := range n {
		if i > 0 {
			recs = append(recs, ',')
		}
		s := strconv.Itoa(i)
		recs = append(recs, `{"id":"`+s+`","name":"Customer `+s+`","email":"customer`+s+
			`@example.com","plan":"pro","seats":"`+strconv.Itoa(i%50+1)+`"}`...)
	}
	meta := `"template":"OK","authHeaderValue":"bench-secret-value","extra":{"batch":7}`
	if recordsFirst {
		return []byte(`{"records":[` + string(recs) + `],` + meta + `}`)
	}
	return []byte(`{` + meta + `,"records":[` + string(recs) + `]}`)
}

// BenchmarkJSONImport measures importJSON's reading of a body of 5,000
// records, from an io.Reader to each compact record, without staging: the
// records stream (template first) or wait in memory (records first). One op
// is one body. scripts/bench's BenchmarkJSONImport compares the records'
// part with how the body was read before it streamed.
func BenchmarkJSONImport(b *testing.B) {
	for _, tc := range []struct {
		name         string
		recordsFirst bool
	}{{"stream", false}, {"records-first", true}} {
		body := jsonImportBody(5000, tc.recordsFirst)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				p := newJSONImport(bytes.NewReader(body), records.Limits{}, fakeResolve)
				if err := p.open(); err != nil {
					b.Fatal(err)
				}
				rd, err := p.reader()
				if err != nil || rd == records.Reader(p) == tc.recordsFirst {
					b.Fatalf("%v, streaming %v", err, rd == records.Reader(p))
				}
				n := 0
				for ; ; n++ {
					if _, err := rd.Next(); errors.Is(err, io.EOF) {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
				if n != 5000 {
					b.Fatalf("read %d records", n)
				}
			}
		})
	}
}
