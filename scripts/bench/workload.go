package main

import (
	"bufio"
	"errors"
	"io"
	"os"
	"strconv"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/pkg/records"
	"github.com/hookline/hookline/pkg/webhook"
	hooklinev1 "github.com/hookline/hookline/proto/hookline/v1"
)

const (
	authValue = "bench-secret-value"
	extraJSON = `{"batch":7}`
)

// smallRecord appends the i-th small record (about 90 bytes of JSON).
func smallRecord(b []byte, i int) []byte {
	b = append(b, `{"id":"`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","name":"Customer `...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","email":"customer`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `@example.com","plan":"pro","seats":"`...)
	b = strconv.AppendInt(b, int64(i%50+1), 10)
	return append(b, `"}`...)
}

// importBody is the JSON body of an import of n small records.
func importBody(template string, n int) []byte {
	b := []byte(`{"template":"` + template + `","authHeaderValue":"` + authValue + `","extra":` + extraJSON + `,"records":[`)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = smallRecord(b, i)
	}
	return append(b, "]}"...)
}

// webhookBodies are the bodies a worker sends for one upload of pages pages
// of per records (built with the product's own webhook.AppendBody), for the
// bare HTTP baseline.
func webhookBodies(template string, pages, per int) [][]byte {
	const uploadID = "01JBENCHBASELINE0000000000" // a ULID's length
	out := make([][]byte, pages)
	var rec []byte
	for p := range pages {
		data := []byte{'['}
		for j := range per {
			if j > 0 {
				data = append(data, ',')
			}
			rec = smallRecord(rec[:0], p*per+j)
			data = append(data, rec...)
		}
		data = append(data, ']')
		out[p] = webhook.AppendBody(nil, webhook.Page{
			Template: template, UploadID: uploadID, Data: data, TotalRecords: pages * per,
			TotalPages: pages, Page: p + 1, PageSize: per, Extra: []byte(extraJSON),
		})
	}
	return out
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Dennis", "Frances"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson", "Ritchie", "Allen"}
	cities     = []string{"London", "New York", "Paris", "Berlin", "Tokyo", "São Paulo", "Zürich", "Lagos", "Mumbai", "Sydney"}
	countries  = []string{"GB", "US", "FR", "DE", "JP", "BR", "CH", "NG", "IN", "AU"}
	companies  = []string{"Acme", "Globex", `"Initech, Inc."`, "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises", `"Soylent ""Green"""`, "Vandelay", "Tyrell"}
)

// writeCSV writes a CSV file with a header and rows rows of 10 columns
// (about 105 bytes a row), and returns its size.
func writeCSV(path string, rows int) (int64, error) {
	f, err := os.Create(path) // #nosec G304 -- a file in the bench's temp dir
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	_, _ = w.WriteString("id,first_name,last_name,email,phone,company,city,country,amount,created_at\n")
	var b []byte
	for i := range rows {
		b = b[:0]
		b = strconv.AppendInt(b, int64(i+1), 10)
		fn, ln := firstNames[i%10], lastNames[(i/10)%10]
		b = append(b, ',')
		b = append(b, fn...)
		b = append(b, ',')
		b = append(b, ln...)
		b = append(b, ',')
		b = append(b, fn...)
		b = append(b, '.')
		b = append(b, ln...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, "@example.com,+44 20 7946 "...)
		b = strconv.AppendInt(b, int64(1000+i%9000), 10)
		b = append(b, ',')
		b = append(b, companies[(i/100)%10]...)
		b = append(b, ',')
		b = append(b, cities[(i/7)%10]...)
		b = append(b, ',')
		b = append(b, countries[(i/7)%10]...)
		b = append(b, ',')
		b = strconv.AppendInt(b, int64(i%100000), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(10+i%90), 10)
		b = append(b, ",2025-"...)
		b = strconv.AppendInt(b, int64(10+i%3), 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(10+i%19), 10)
		b = append(b, "T12:34:56Z\n"...)
		if _, err := w.Write(b); err != nil {
			_ = f.Close()
			return 0, err
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return 0, err
	}
	return st.Size(), f.Close()
}

// parseAndEncode is the ingest baseline: the same file read with
// pkg/records and paged by records.Pager as the importer pages it, each page
// encoded to protobuf as the importer does, in-process with nothing else (no
// HTTP, no NATS). It returns the records and the bytes of encoded pages.
func parseAndEncode(path string, chunk int) (int, int64, error) {
	f, err := os.Open(path) // #nosec G304 -- the CSV file the bench generated
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	rd, err := records.NewReader(records.CSV, f, records.Limits{})
	if err != nil {
		return 0, 0, err
	}
	const uploadID = "01JBENCHBASELINE0000000000"
	pager := records.NewPager(rd, chunk, 0)
	buf := make([]byte, 0, 64<<10)
	var encoded int64
	for {
		page, count, err := pager.Next(buf[:0])
		if errors.Is(err, io.EOF) {
			return pager.Records(), encoded, nil
		}
		if err != nil {
			return pager.Records(), encoded, err
		}
		data, err := queue.EncodePage(&hooklinev1.Page{
			// #nosec G115 -- page and record counts of a generated file, far below 2^32
			UploadId: uploadID, Page: uint32(pager.Pages()), RecordCount: uint32(count), Records: page,
		})
		if err != nil {
			return pager.Records(), encoded, err
		}
		encoded += int64(len(data))
		buf = page
	}
}
