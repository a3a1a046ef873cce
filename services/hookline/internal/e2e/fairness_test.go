package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// Fair shares between tenants: tenant A floods two workers with 40 uploads
// of 50 pages (maxInFlight 4, 10 ms per page: 160 tickets queued ahead),
// then, once A's delivery is under way, tenant B imports 5 pages (maxInFlight 1). B's last page must arrive
// while most of A's flood is still to be delivered: B's ticket gets the
// next free slot instead of waiting for A's queue, and A's carried chains
// give their slots up while B waits.
func TestSmallUploadOvertakesAnotherTenantsFlood(t *testing.T) {
	e := newEnv(t)
	flood := apitest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ apitest.Request, _ int) {
		select {
		case <-time.After(10 * time.Millisecond): // a busy endpoint
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	var floodAtLast atomic.Int64 // A's pages received when B's last page arrived
	floodAtLast.Store(-1)
	small := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, req apitest.Request, _ int) {
		if req.Page.Page == smallPages {
			floodAtLast.CompareAndSwap(-1, int64(flood.Count()))
		}
		w.WriteHeader(http.StatusOK)
	})
	floodIDs, _ := floodThenSmall(t, e, flood, small)
	total := floodUploads * floodPages
	at := floodAtLast.Load()
	t.Logf("tenant B's last page arrived after %d of tenant A's %d pages", at, total)
	if at < 0 || at > int64(total/2) {
		t.Errorf("tenant B's last page arrived after %d of tenant A's %d pages, want fewer than half", at, total)
	}
	floodFinished(t, e, floodIDs)
}

// The flood and the small upload of the tests above and below.
const (
	floodUploads = 40
	floodPages   = 50
	smallPages   = 5
)

// floodThenSmall has tenant A import floodUploads uploads of floodPages
// pages (maxInFlight 4) to flood, starts two workers, and once A's delivery
// is under way has tenant B import smallPages pages (maxInFlight 1) to
// small and waits until they are delivered. It returns A's uploads and the
// two workers.
func floodThenSmall(t *testing.T, e *env, flood, small *apitest.Receiver) (floodIDs []string, workers []*workerProc) {
	t.Helper()
	e.client.PutTemplate(keyA, "FLOOD", map[string]any{"url": flood.HookURL(), "chunkSize": 1, "maxInFlight": 4})
	e.client.PutTemplate(keyB, "SMALL", map[string]any{"url": small.HookURL(), "chunkSize": 1, "maxInFlight": 1})
	for range floodUploads {
		acc := e.client.ImportJSON(keyA, map[string]any{"template": "FLOOD", "records": apitest.Records(floodPages), "authHeaderValue": "a"})
		floodIDs = append(floodIDs, acc.UploadID)
	}
	// The workers start once the whole flood is queued (its imports take
	// longer than its delivery would).
	workers = []*workerProc{e.startWorker(), e.startWorker()}
	apitest.Eventually(t, 10*time.Second, "the flood's delivery to be under way", func() bool { return flood.Count() >= 32 })
	acc := e.client.ImportJSON(keyB, map[string]any{"template": "SMALL", "records": apitest.Records(smallPages), "authHeaderValue": "b"})
	if u := e.client.WaitFinished(keyB, acc.UploadID, 30*time.Second); u.Status != "completed" || u.DeliveredPages != smallPages {
		t.Fatalf("tenant B's upload = %+v, want completed", u)
	}
	return floodIDs, workers
}

// floodFinished waits until every upload of the flood is delivered.
func floodFinished(t *testing.T, e *env, floodIDs []string) {
	t.Helper()
	for _, id := range floodIDs {
		if u := e.client.WaitFinished(keyA, id, 60*time.Second); u.Status != "completed" || u.DeliveredPages != floodPages {
			t.Fatalf("flood upload %s = %+v, want completed", id, u)
		}
	}
}

// Delivery shares: tenant gold (quotas.deliveryShare 3) and tenant basic
// (the default, 1) each queue 10 uploads of 40 pages (maxInFlight 8, 10 ms
// per page) before two workers start: both are backlogged from the first
// page. The workers give gold about 3 slots for each of basic's, so when
// gold's 400th page arrives basic has had about a third as many (all of
// them with equal shares); it must have had fewer than half.
func TestDeliveryShareSplitsTheWorkers(t *testing.T) {
	const (
		uploads = 10
		pages   = 40
		total   = uploads * pages
	)
	// The weighting alone: light work first (TestHeavyTenantYieldsToLightWork)
	// holds nobody back here (no upload is light), but its extra locking
	// under -race shifts which worker fetches which tickets enough to push
	// the count past the bound about once in ten runs.
	e := newEnv(t, withAdmin(), withVar("HOOKLINE_LIGHT_FIRST", "false"))
	gold := e.newTenant("gold", map[string]int{"deliveryShare": 3})
	basic := e.newTenant("basic", nil)
	var tv tenantView
	if err := json.Unmarshal(e.client.MustCall(testAdminToken, http.MethodGet, "/v1/admin/tenants/gold", nil, http.StatusOK), &tv); err != nil {
		t.Fatal(err)
	}
	if tv.Quotas["deliveryShare"] != 3 || tv.EffectiveQuotas["deliveryShare"] != 3 {
		t.Fatalf("tenant gold = %+v, want delivery share 3", tv)
	}

	var goldPages, basicPages atomic.Int64
	basicAtLast := atomic.Int64{} // basic's pages received when gold's last arrived
	basicAtLast.Store(-1)
	busy := func(count func()) apitest.Respond {
		return func(w http.ResponseWriter, r *http.Request, _ apitest.Request, _ int) {
			select {
			case <-time.After(10 * time.Millisecond): // a busy endpoint
			case <-r.Context().Done():
				return
			}
			count()
			w.WriteHeader(http.StatusOK)
		}
	}
	goldRcv := apitest.NewReceiver(t, busy(func() {
		if goldPages.Add(1) == total {
			basicAtLast.CompareAndSwap(-1, basicPages.Load())
		}
	}))
	basicRcv := apitest.NewReceiver(t, busy(func() { basicPages.Add(1) }))
	e.client.PutTemplate(gold, "GOLD", map[string]any{"url": goldRcv.HookURL(), "chunkSize": 1, "maxInFlight": 8})
	e.client.PutTemplate(basic, "BASIC", map[string]any{"url": basicRcv.HookURL(), "chunkSize": 1, "maxInFlight": 8})

	ids := map[string][]string{}
	for range uploads { // interleaved, so neither tenant's tickets are all ahead in the queue
		for key, template := range map[string]string{gold: "GOLD", basic: "BASIC"} {
			acc := e.client.ImportJSON(key, map[string]any{"template": template, "records": apitest.Records(pages), "authHeaderValue": "x"})
			ids[key] = append(ids[key], acc.UploadID)
		}
	}
	e.startWorker()
	e.startWorker()
	for _, key := range []string{gold, basic} {
		for _, id := range ids[key] {
			if u := e.client.WaitFinished(key, id, 60*time.Second); u.Status != "completed" || u.DeliveredPages != pages {
				t.Fatalf("upload %s = %+v, want completed", id, u)
			}
		}
	}
	at := basicAtLast.Load()
	t.Logf("when gold (share 3) had all %d pages delivered, basic (share 1) had %d", total, at)
	if at < 0 || at >= total/2 {
		t.Errorf("when gold had all %d pages delivered, basic had %d, want fewer than %d", total, at, total/2)
	}
}

// Light work goes first (package sched): tenant A's flood goes to a fast
// endpoint, so its deliveries keep the CPUs busy; tenant B's small upload
// (its endpoint takes 10 ms a page, so its light work lasts) is marked
// light, and A's carried chains give their slots up down to a few busy
// deliveries per worker while it lasts. With HOOKLINE_LIGHT_FIRST=false
// nothing yields for B (the test then fails).
func TestHeavyTenantYieldsToLightWork(t *testing.T) {
	e := newEnv(t)
	flood := apitest.NewReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ apitest.Request, _ int) {
		w.WriteHeader(http.StatusOK)
	})
	small := apitest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ apitest.Request, _ int) {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	floodIDs, workers := floodThenSmall(t, e, flood, small)
	atB := flood.Count()
	yields := 0.0
	for _, w := range workers {
		yields += scrape(t, w.metrics, "hookline_worker_light_yields_total")
	}
	t.Logf("while tenant B's upload was delivered, tenant A's chains yielded %v times (A had %d of %d pages when B finished)", yields, atB, floodUploads*floodPages)
	if atB >= floodUploads*floodPages {
		t.Fatal("tenant A's flood was over before tenant B's upload: the test proves nothing")
	}
	if yields == 0 {
		t.Error("no chain of tenant A's gave its slot up for tenant B's light work")
	}
	floodFinished(t, e, floodIDs)
}

// scrape reads a metric without labels from the /metrics of addr.
func scrape(t *testing.T, addr, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("%s not in the metrics of %s", name, addr)
	return 0
}
