package ingest

import (
	"strconv"
	"testing"

	"github.com/hookline/hookline/pkg/queue"
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

// BenchmarkPageEncode measures what ingest's stage does for each page: append
// the page's records into the page buffer as one JSON array, then encode the
// protobuf Page (queue.EncodePage) that is published. One op is one page.
// (The loop mirrors stage's; publishing and the acknowledgement window are
// not included.)
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
			buf := make([]byte, 0, 64<<10)
			page := 0
			var encoded int
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for i, rec := range recs {
					if i == 0 {
						buf = append(buf, '[')
					} else {
						buf = append(buf, ',')
					}
					buf = append(buf, rec...)
				}
				buf = append(buf, ']')
				page++
				data, err := queue.EncodePage(&hooklinev1.Page{
					UploadId: id, Page: uint32(page), RecordCount: uint32(per), Records: buf,
				})
				if err != nil {
					b.Fatal(err)
				}
				encoded += len(data)
				buf = buf[:0]
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(page*per), "ns/record")
			if encoded == 0 {
				b.Fatal("nothing encoded")
			}
		})
	}
}
