//go:build chaos

package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hookline/hookline/pkg/redistest"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
	"github.com/hookline/hookline/services/ingest/importer"
)

// The NATS server (file storage) is killed in the middle of an upload and
// started again on the same port; ingest and the workers are left running.
// They reconnect by themselves and the upload completes with every page. An
// import that arrives while NATS is down answers 503 within 15s and leaves
// nothing behind: no pages, no ticket, no upload.
func TestNATSRestartMidUpload(t *testing.T) {
	const pages = 200
	ns := startNATS(t)
	rs := redistest.Start(t)
	s := newStack(t, ns.url(), rs.URL, map[string]string{"HOOKLINE_ACK_WAIT": "2s"})
	s.startIngest()
	w1, w2 := s.startWorker("worker-1", nil), s.startWorker("worker-2", nil)
	_, js := natsClient(t, ns.url())

	rc := apitest.NewReceiver(t, slowOK(20*time.Millisecond))
	s.api.PutTemplate(keyA, "NATS", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 4, "retryCount": 0})
	acc := s.importRecords(keyA, "NATS", pages)

	apitest.Eventually(t, 30*time.Second, "30 pages received", func() bool { return rc.Count() >= 30 })
	ns.kill()
	atKill := rc.Count()
	t.Logf("nats-server killed after %d requests", atKill)
	if atKill >= pages {
		t.Fatalf("the upload was already over (%d requests) when NATS was killed", atKill)
	}

	// An import while NATS is down: refused with 503, nothing accepted. The
	// answer must come soon enough for a client or a proxy in front of
	// ingest to still be waiting: within 15s.
	patient := apitest.NewClient(t, s.api.Base, &http.Client{Timeout: 90 * time.Second})
	start := time.Now()
	st, body, err := patient.TryCall(keyA, http.MethodPost, "/v1/imports", map[string]any{"template": "NATS", "records": apitest.NumberedRecords(5)})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("import while NATS is down: %v (after %s)", err, took)
	}
	t.Logf("import while NATS is down answered %d after %s: %s", st, took.Round(time.Millisecond), body)
	if st != http.StatusServiceUnavailable {
		t.Errorf("import while NATS is down = %d %s, want 503", st, body)
	}
	if took > 15*time.Second {
		t.Errorf("import while NATS is down took %s to answer, want at most 15s", took.Round(time.Millisecond))
	}
	if !ns.proc.exited() {
		t.Fatal("nats-server is running again before the import was answered")
	}

	ns.start() // same port, same store
	t.Logf("nats-server started again on %s", ns.url())

	u := s.api.WaitFinishedThroughErrors(keyA, acc.UploadID, 45*time.Second)
	if u.Status != "completed" || u.DeliveredPages != pages || u.FailedPages != 0 {
		t.Fatalf("upload = %+v, want completed with %d delivered pages", u, pages)
	}
	dups := checkEveryPage(t, rc, acc.UploadID, pages, 0)
	t.Logf("receiver got %d requests for %d pages (%d duplicates); longest pause between two requests: %s",
		len(rc.Requests()), pages, dups, longestPause(rc).Round(time.Millisecond))
	released := checkAttemptsExact(t, s.api.Attempts(keyA, acc.UploadID), pages)
	t.Logf("attempts log: one delivered entry per page, %d released entries (deliveries our side cut short)", released)

	// Nothing is left of the refused import: the completed upload's pages are
	// purged, so HOOKLINE_PAGES must end empty; the work queue must end empty;
	// the tenant has one upload.
	var left map[string]uint64
	if !apitest.Poll(15*time.Second, func() bool { left = pageSubjects(t, js, ""); return len(left) == 0 }) {
		t.Errorf("HOOKLINE_PAGES still holds %d subjects after the upload completed: %v", len(left), subjectsSample(left))
	}
	var tickets uint64
	if !apitest.Poll(15*time.Second, func() bool { tickets = streamInfo(t, js, deliveriesStream, "").State.Msgs; return tickets == 0 }) {
		t.Errorf("HOOKLINE_DELIVERIES holds %d tickets after the upload completed", tickets)
	}
	ups := s.api.ListUploads(keyA)
	if len(ups) != 1 || ups[0].UploadID != acc.UploadID {
		data, _ := json.Marshal(ups)
		t.Errorf("GET /v1/uploads = %s, want only %s", data, acc.UploadID)
	}
	for _, k := range s.uploadState() {
		if !strings.Contains(k, "{"+acc.UploadID+"}") {
			t.Errorf("redis holds state of another upload: %s", k)
		}
	}
	for _, w := range []*workerProc{w1, w2} {
		if w.exited() {
			t.Errorf("%s exited: %v", w.name, w.err)
		}
	}
	if s.ingest.exited() {
		t.Errorf("ingest exited: %v", s.ingest.err)
	}
	if !apitest.Poll(10*time.Second, func() bool {
		st, _, err := s.api.TryCall("", http.MethodGet, "/readyz", nil)
		return err == nil && st == http.StatusOK
	}) {
		t.Errorf("ingest /readyz does not answer 200 after NATS came back")
	}
}

// pageNumbers lists the page numbers of page subjects, sorted, as "a-b,c".
func pageNumbers(m map[string]uint64) string {
	var nums []int
	for subj := range m {
		if n, err := strconv.Atoi(subj[strings.LastIndexByte(subj, '.')+1:]); err == nil {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	var parts []string
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(nums[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", nums[i], nums[j]))
		}
		i = j + 1
	}
	return "pages " + strings.Join(parts, ",")
}

func subjectsSample(m map[string]uint64) []string {
	var out []string
	for s := range m {
		out = append(out, s)
		if len(out) == 10 {
			break
		}
	}
	return out
}

// The NATS server (syncing every write to disk) is killed while ingest
// streams a CSV file (one page per row) whose first 30 pages are already
// stored; the other 120 arrive while NATS is down. The import must answer 503, and once NATS is back
// nothing of it may remain: no pages (checked 10s after NATS is back), no
// ticket, no upload. When pages do remain, the test also checks the safety
// net: with its staging heartbeat moved back by importer.AbandonedAfter, the
// janitor of a restarted ingest purges them.
func TestNATSDownDuringImport(t *testing.T) {
	const before, after = 30, 120
	// Every stored message synced to disk: the server takes a while to store
	// a burst of pages.
	ns := startNATS(t, "sync_interval: always")
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
	type answer struct {
		status int
		body   string
		err    error
		at     time.Time
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 90 * time.Second}).Do(req)
		if err != nil {
			answered <- answer{err: err, at: time.Now()}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- answer{status: resp.StatusCode, body: string(body), at: time.Now()}
	}()
	defer pw.CloseWithError(errors.New("test over"))

	if err := mw.WriteField("template", "CSV"); err != nil {
		t.Fatal(err)
	}
	fw, err := mw.CreateFormFile("file", "customers.csv")
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 4<<10) // 4 KiB rows
	row := func(i int) {
		if _, err := fmt.Fprintf(fw, "%d,user%d%s\n", i, i, pad); err != nil {
			t.Fatalf("feed row %d: %v", i, err)
		}
	}
	if _, err := io.WriteString(fw, "n,name\n"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= before; i++ {
		row(i)
	}
	apitest.Eventually(t, 20*time.Second, fmt.Sprintf("%d pages stored", before), func() bool { return len(pageSubjects(t, js, "")) >= before })
	ns.kill()
	killedAt := time.Now()
	// Ingest may refuse the import as soon as a page cannot be stored, before
	// it has read the rest of the file: then the pipe is closed under us.
	for i := before + 1; i <= before+after; i++ {
		if _, err := fmt.Fprintf(fw, "%d,user%d%s\n", i, i, pad); err != nil {
			break
		}
	}
	_ = mw.Close()
	_ = pw.Close()

	var a answer
	select {
	case a = <-answered:
	case <-time.After(80 * time.Second):
		t.Fatal("no answer to the import within 80s of NATS going down")
	}
	t.Logf("import answered %d %v %s after NATS was killed: %s", a.status, a.err, a.at.Sub(killedAt).Round(time.Millisecond), strings.TrimSpace(a.body))
	if a.err != nil || a.status != http.StatusServiceUnavailable {
		t.Errorf("import while NATS went down = %d %v %s, want 503", a.status, a.err, a.body)
	}

	ns.start()
	var left map[string]uint64
	if !apitest.Poll(10*time.Second, func() bool { left = pageSubjects(t, js, ""); return len(left) == 0 }) {
		var id string
		for subj := range left {
			id = strings.Split(subj, ".")[2] // hookline.pages.<uploadId>.<page>
		}
		t.Errorf("%s holds %d of the %d pages of the import refused with 503, 10s after NATS came back: %s",
			pagesStream, len(left), before+after, pageNumbers(left))
		if s.stagingMark(id) {
			s.ageStagingMark(id, importer.AbandonedAfter+time.Minute)
			s.ingest.signal(syscall.SIGTERM)
			if !s.ingest.waitExit(20 * time.Second) {
				t.Fatal("ingest did not stop within 20s of SIGTERM")
			}
			s.startIngest()
			if apitest.Poll(15*time.Second, func() bool { return len(pageSubjects(t, js, id)) == 0 }) {
				t.Logf("with its staging mark aged by %s, the janitor of a restarted ingest purged them", importer.AbandonedAfter+time.Minute)
			} else {
				t.Errorf("with its staging mark aged by %s, the janitor of a restarted ingest did not purge them either", importer.AbandonedAfter+time.Minute)
			}
		} else {
			t.Errorf("and no staging mark refers to upload %s: nothing will purge them before the stream's MaxAge", id)
		}
	}
	if n := streamInfo(t, js, deliveriesStream, "").State.Msgs; n != 0 {
		t.Errorf("%s holds %d tickets of the refused import", deliveriesStream, n)
	}
	apitest.Eventually(t, 20*time.Second, "ingest /readyz after NATS came back", func() bool {
		st, _, err := s.api.TryCall("", http.MethodGet, "/readyz", nil)
		return err == nil && st == http.StatusOK
	})
	if ups := s.api.ListUploads(keyA); len(ups) != 0 {
		t.Errorf("GET /v1/uploads lists %d uploads, want none: %+v", len(ups), ups)
	}
	if keys := s.uploadState(); len(keys) != 0 {
		t.Errorf("redis holds upload state after the refused import: %v", keys)
	}
}
