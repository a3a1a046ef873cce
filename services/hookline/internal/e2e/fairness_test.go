package e2e

import (
	"encoding/json"
	"net/http"
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
// give their slots up while B waits. B's upload is light work (package
// sched): while it is delivered, A runs at most 2 deliveries at once per
// worker, where it ran 16.
func TestSmallUploadOvertakesAnotherTenantsFlood(t *testing.T) {
	const (
		floodUploads = 40
		floodPages   = 50
		smallPages   = 5
	)
	e := newEnv(t)

	var floodNow, floodMost atomic.Int64 // A's requests under way; the most at B's pages 3 to 5
	floodMost.Store(-1)
	flood := apitest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, _ apitest.Request, _ int) {
		floodNow.Add(1)
		defer floodNow.Add(-1)
		select {
		case <-time.After(10 * time.Millisecond): // a busy endpoint
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	var floodAtLast atomic.Int64 // A's pages received when B's last page arrived
	floodAtLast.Store(-1)
	small := apitest.NewReceiver(t, func(w http.ResponseWriter, r *http.Request, req apitest.Request, _ int) {
		if req.Page.Page >= 3 { // A's requests of before B's import have ended (10 ms each)
			n := floodNow.Load()
			for m := floodMost.Load(); n > m && !floodMost.CompareAndSwap(m, n); m = floodMost.Load() {
			}
		}
		if req.Page.Page == smallPages {
			floodAtLast.CompareAndSwap(-1, int64(flood.Count()))
		}
		select {
		case <-time.After(10 * time.Millisecond): // as busy as A's
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	e.client.PutTemplate(keyA, "FLOOD", map[string]any{"url": flood.HookURL(), "chunkSize": 1, "maxInFlight": 4})
	e.client.PutTemplate(keyB, "SMALL", map[string]any{"url": small.HookURL(), "chunkSize": 1, "maxInFlight": 1})

	var floodIDs []string
	for range floodUploads {
		acc := e.client.ImportJSON(keyA, map[string]any{"template": "FLOOD", "records": apitest.Records(floodPages), "authHeaderValue": "a"})
		floodIDs = append(floodIDs, acc.UploadID)
	}
	// The workers start once the whole flood is queued (its imports take
	// longer than its delivery would).
	e.startWorker()
	e.startWorker()
	apitest.Eventually(t, 10*time.Second, "the flood's delivery to be under way", func() bool { return flood.Count() >= 32 })
	acc := e.client.ImportJSON(keyB, map[string]any{"template": "SMALL", "records": apitest.Records(smallPages), "authHeaderValue": "b"})
	if u := e.client.WaitFinished(keyB, acc.UploadID, 30*time.Second); u.Status != "completed" || u.DeliveredPages != smallPages {
		t.Fatalf("tenant B's upload = %+v, want completed", u)
	}
	total := floodUploads * floodPages
	at := floodAtLast.Load()
	t.Logf("tenant B's last page arrived after %d of tenant A's %d pages", at, total)
	if at < 0 || at > int64(total/2) {
		t.Errorf("tenant B's last page arrived after %d of tenant A's %d pages, want fewer than half", at, total)
	}
	if most := floodMost.Load(); most < 0 || most > 2*2 {
		t.Errorf("tenant A had %d requests under way during tenant B's pages 3 to 5, want at most 4 (2 per worker)", most)
	}
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
	e := newEnv(t, withAdmin())
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
