package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/hookline/hookline/pkg/records"
)

// BenchmarkJSONImport compares ways of reading the records of a JSON import
// body (5,000 small records, the body of step 1):
//
//   - "decode+compact" is how services/ingest read it before it streamed:
//     decode the whole body with encoding/json into a struct whose records
//     field is a []json.RawMessage, then records.CompactValidObject on each
//     record;
//   - "decode-only" is the encoding/json part alone, "revalidate-only" the
//     json.Valid that CompactObject (not CompactValidObject) would run again
//     on each decoded record;
//   - "scan+compact" is how services/ingest reads it now: one pass over the
//     records array, each record checked by records.ScanValue and compacted
//     by records.CompactValidObject (the envelope around it is a handful of
//     tokens; services/ingest's BenchmarkJSONImport measures the whole of
//     it, from an io.Reader, on this body);
//   - "stream" reads the same records with pkg/records' streaming JSON array
//     reader (what a multipart .json file goes through).
func BenchmarkJSONImport(b *testing.B) {
	body := importBody("BENCH_DELIVERY", 5000)
	start := bytes.Index(body, []byte(`"records":`)) + len(`"records":`)
	array := body[start : len(body)-1]
	b.Run("decode+compact", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			var buf []byte
			for _, rec := range decodeWhole(b, body) {
				var err error
				if buf, err = records.CompactValidObject(buf[:0], rec, records.Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("decode-only", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			decodeWhole(b, body)
		}
	})
	b.Run("revalidate-only", func(b *testing.B) {
		// The json.Valid that CompactObject runs on each record the decoder
		// has already validated.
		var in struct {
			Records []json.RawMessage `json:"records"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			for _, rec := range in.Records {
				if !json.Valid(rec) {
					b.Fatal("invalid")
				}
			}
		}
	})
	b.Run("scan+compact", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if n := scanArray(b, array); n != 5000 {
				b.Fatalf("read %d records", n)
			}
		}
	})
	b.Run("stream", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			rd, err := records.NewReader(records.JSONArray, bytes.NewReader(array), records.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for {
				_, err := rd.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != 5000 {
				b.Fatalf("read %d records", n)
			}
		}
	})
}

// scanArray reads the records of a JSON array held in memory the way
// services/ingest reads the records of an import, and returns their count.
// (Without the byte window and the error answers around it.)
func scanArray(b *testing.B, array []byte) int {
	i, n := 1, 0 // after the '['
	var buf []byte
	for {
		for array[i] == ' ' || array[i] == '\n' || array[i] == ',' {
			i++
		}
		if array[i] == ']' {
			return n
		}
		size, err := records.ScanValue(array[i:], false)
		if err != nil {
			b.Fatal(err)
		}
		if buf, err = records.CompactValidObject(buf[:0], array[i:i+size], records.Limits{}); err != nil {
			b.Fatal(err)
		}
		i += size
		n++
	}
}

// decodeWhole decodes a JSON import body the way services/ingest did before
// it streamed: the whole body into a struct whose records are RawMessages.
func decodeWhole(b *testing.B, body []byte) []json.RawMessage {
	var in struct {
		Template        string            `json:"template"`
		AuthHeaderValue *string           `json:"authHeaderValue"`
		Extra           json.RawMessage   `json:"extra"`
		Records         []json.RawMessage `json:"records"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		b.Fatal(err)
	}
	return in.Records
}
