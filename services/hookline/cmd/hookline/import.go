package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

func runImport(ctx context.Context, a *api, args []string) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(a.log)
	tmpl := fs.String("template", "", "template code (required)")
	file := fs.String("file", "", "CSV, TSV, XLSX, JSON or NDJSON file (required)")
	auth := fs.String("auth-value", "", "value of the template's auth header")
	extra := fs.String("extra", "", "extra string or JSON passed to every page")
	sheet := fs.String("sheet", "", "XLSX: the worksheet to import (default the first)")
	delim := fs.String("delimiter", "", `CSV: the delimiter, one of , ; | or "tab" (default found from the header line)`)
	wait := fs.Bool("wait", false, "follow the upload until every page is delivered or failed")
	quiet := fs.Bool("q", false, "print only the upload id (no progress): ID=$(hookline import -q ...)")
	fs.Usage = func() {
		fmt.Fprint(a.log, "Usage: hookline import -template CODE -file FILE [flags]\n\nStreams a file to POST /v1/imports (with a progress bar on a terminal) and prints\nthe answer: the upload's id, records and pages.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tmpl == "" || *file == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("import needs -template and -file, and no other arguments")
	}
	fields := []field{{"template", *tmpl}, {"authHeaderValue", *auth}, {"extra", *extra}, {"sheet", *sheet}, {"delimiter", *delim}}
	progress := a.log
	if *quiet {
		progress = io.Discard
	}
	data, err := upload(ctx, a.base, a.key, fields, *file, progress, !*quiet && term.IsTerminal(int(os.Stderr.Fd())))
	if err != nil {
		return err
	}
	var acc struct{ UploadID string }
	if err := json.Unmarshal(data, &acc); err != nil {
		return err
	}
	if *quiet {
		fmt.Fprintln(a.out, acc.UploadID)
	} else {
		a.printJSON(data)
	}
	if !*wait {
		return nil
	}
	if *quiet {
		a = &api{base: a.base, key: a.key, out: io.Discard, log: io.Discard}
	}
	return a.watch(ctx, acc.UploadID)
}

// field is a form field of an import; empty ones are not sent.
type field struct{ name, value string }

// upload posts a file as a multipart import with its Content-Length (the
// form's fields and boundaries are written ahead, the file streamed between
// them), showing progress on out: a progress bar on a terminal, else a line
// now and then.
func upload(ctx context.Context, base, key string, fields []field, path string, out io.Writer, tty bool) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- the file the user asks to import
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	for _, fl := range fields {
		if fl.value != "" {
			if err := mw.WriteField(fl.name, fl.value); err != nil {
				return nil, err
			}
		}
	}
	if _, err := mw.CreateFormFile("file", filepath.Base(path)); err != nil {
		return nil, err
	}
	n := head.Len()
	if err := mw.Close(); err != nil {
		return nil, err
	}
	tail := bytes.Clone(head.Bytes()[n:])
	head.Truncate(n)

	var shown io.Writer
	if tty {
		bar := progressbar.NewOptions64(st.Size(), progressbar.OptionSetWriter(out), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("uploading"), progressbar.OptionSetWidth(30), progressbar.OptionShowCount(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }))
		shown = bar
	} else {
		shown = &progressLines{out: out, total: st.Size(), every: 5 * time.Second}
	}
	body := io.MultiReader(&head, io.TeeReader(f, shown), bytes.NewReader(tail))
	// #nosec G704 -- the CLI calls the hookline API its user points it at (HOOKLINE_API)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/imports", body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(n) + st.Size() + int64(len(tail))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	data, err := send(req)
	if pl, ok := shown.(*progressLines); ok {
		pl.done()
	}
	return data, err
}

// progressLines reports an upload's progress as plain lines, for logs and
// pipes: at most one every `every`, and one at the end.
type progressLines struct {
	out   io.Writer
	total int64
	n     int64
	every time.Duration
	last  time.Time
}

func (p *progressLines) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= p.every {
		p.last = now
		p.line()
	}
	return len(b), nil
}

func (p *progressLines) line() {
	pct := 100.0
	if p.total > 0 {
		pct = float64(p.n) * 100 / float64(p.total)
	}
	fmt.Fprintf(p.out, "uploaded %s of %s (%.0f%%)\n", size(p.n), size(p.total), pct)
}

func (p *progressLines) done() {
	if p.n == p.total {
		p.line()
	}
}
