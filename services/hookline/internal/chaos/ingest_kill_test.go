//go:build chaos

package chaos

import (
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
	"github.com/hookline/hookline/services/ingest/importer"
)

// The ingest process is killed with SIGKILL while it streams a CSV file (a
// multipart upload fed through a pipe; the file is never finished). The
// upload was never answered 202, so nothing of it may remain: no ticket in
// HOOKLINE_DELIVERIES, no upload record, and the pages it had already stored
// in HOOKLINE_PAGES must be cleaned up. Ingest's janitor purges the pages of
// an import whose staging heartbeat is older than importer.AbandonedAfter (5
// minutes); the test moves the heartbeat back by that much instead of
// waiting, then starts ingest again (its janitor sweeps at start).
func TestIngestKilledMidFile(t *testing.T) {
	const fed, storedBeforeKill = 60, 40
	ns := startNATS(t)
	rs := redistest.Start(t)
	s := newStack(t, ns.url(), rs.URL, nil)
	s.startIngest()
	_, js := natsClient(t, ns.url())
	rc := apitest.NewReceiver(t, nil)
	s.api.PutTemplate(keyA, "CSV", map[string]any{"url": rc.HookURL(), "chunkSize": 1})

	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	req, err := http.NewRequest(http.MethodPost, s.api.Base+"/v1/imports", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+keyA)
	answered := make(chan string, 1)
	go func() {
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			answered <- "error: " + err.Error()
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- fmt.Sprintf("%d %s", resp.StatusCode, body)
	}()
	defer pw.CloseWithError(errors.New("test over"))

	// The start of the file: a header and `fed` rows, one page each. The
	// file's end is never written.
	if err := mw.WriteField("template", "CSV"); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile("file", "customers.csv")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(fw, "n,name\n"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= fed; i++ {
		if _, err := fmt.Fprintf(fw, "%d,user%d\n", i, i); err != nil {
			t.Fatalf("feed row %d: %v", i, err)
		}
	}
	var stored map[string]uint64
	apitest.Eventually(t, 20*time.Second, fmt.Sprintf("%d pages stored in %s", storedBeforeKill, pagesStream), func() bool {
		stored = pageSubjects(t, js, "")
		return len(stored) >= storedBeforeKill
	})
	s.ingest.kill()
	_ = pw.CloseWithError(errors.New("client gone"))
	select {
	case a := <-answered:
		if strings.HasPrefix(a, "202") {
			t.Fatalf("the import was accepted although its file never ended: %s", a)
		}
		t.Logf("client saw: %s", a)
	case <-time.After(30 * time.Second):
		t.Fatal("the client got no answer within 30s after ingest was killed")
	}

	uploadIDs := map[string]bool{}
	for subj := range pageSubjects(t, js, "") {
		parts := strings.Split(subj, ".") // hookline.pages.<uploadId>.<page>
		uploadIDs[parts[2]] = true
	}
	if len(uploadIDs) != 1 {
		t.Fatalf("pages of %d uploads in %s, want those of the one killed import", len(uploadIDs), pagesStream)
	}
	var id string
	for u := range uploadIDs {
		id = u
	}
	t.Logf("ingest killed mid-file: upload %s had %d pages stored", id, len(stored))

	// The janitor must be able to find the import, and purge it once its
	// heartbeat is old enough.
	if !s.stagingMark(id) {
		t.Errorf("the killed import %s has no staging mark: no janitor will find its pages", id)
	} else {
		s.ageStagingMark(id, importer.AbandonedAfter+time.Minute)
	}

	// An orchestrator starts ingest again.
	restarted := time.Now()
	s.startIngest()

	if n := streamInfo(t, js, deliveriesStream, "").State.Msgs; n != 0 {
		t.Errorf("%s holds %d tickets of an import that was never accepted", deliveriesStream, n)
	}
	if st, body, err := s.api.TryCall(keyA, http.MethodGet, "/v1/uploads/"+id, nil); err != nil || st != http.StatusNotFound {
		t.Errorf("GET /v1/uploads/%s = %d %s %v, want 404", id, st, body, err)
	}
	if ups := s.api.ListUploads(keyA); len(ups) != 0 {
		t.Errorf("GET /v1/uploads lists %d uploads, want none: %+v", len(ups), ups)
	}
	if keys := s.uploadState(); len(keys) != 0 {
		sort.Strings(keys)
		t.Errorf("redis holds upload state after the killed import: %v", keys)
	}

	// Its stored pages must not stay behind.
	var left map[string]uint64
	if !apitest.Poll(15*time.Second, func() bool { left = pageSubjects(t, js, id); return len(left) == 0 }) {
		info := streamInfo(t, js, pagesStream, "")
		keys := s.redisKeys()
		sort.Strings(keys)
		t.Errorf("%d pages (%d bytes in %s) of the killed import %s are still stored 15s after ingest was restarted "+
			"with an abandoned staging mark; no upload record or ticket refers to them; the stream's MaxAge is %s; redis keys under the prefix: %v",
			len(left), info.State.Bytes, pagesStream, id, info.Config.MaxAge, keys)
		return
	}
	t.Logf("the janitor purged the %d pages %s after ingest was restarted", len(stored), time.Since(restarted).Round(time.Millisecond))
	if s.stagingMark(id) {
		t.Errorf("the staging mark of %s is still there after its pages were purged", id)
	}
}
