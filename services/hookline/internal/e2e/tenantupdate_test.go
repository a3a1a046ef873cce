package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookline/hookline/pkg/queue"
	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// queuedShares returns the delivery share of every ticket of an upload
// waiting in the deliveries stream, by page.
func (e *env) queuedShares(uploadID string) map[uint32]uint32 {
	e.t.Helper()
	ctx := context.Background()
	js, err := jetstream.New(e.nc)
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := js.Stream(ctx, queue.DeliveriesStream)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[uint32]uint32{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if err != nil {
			continue // acknowledged and removed, or deleted
		}
		if t, err := queue.DecodeTicket(raw.Data); err == nil && t.GetUploadId() == uploadID {
			out[t.GetPage()] = t.GetDeliveryShare()
		}
	}
	return out
}

// A tenant's quotas change through PATCH: the named ones change, null ones
// go back to the default, bad values change nothing, and new imports get the
// new quotas at once while queued pages keep their share.
func TestAdminUpdateTenantQuotas(t *testing.T) {
	e := newEnv(t, withAdmin(), withVar("HOOKLINE_QUOTA_MAX_RECORDS", "50"))
	rc := apitest.NewReceiver(t, nil)
	key := e.newTenant("plan", map[string]int{"deliveryShare": 2, "maxRecords": 10})
	e.client.PutTemplate(key, "T", map[string]any{"url": rc.HookURL(), "chunkSize": 1, "maxInFlight": 2})

	// No worker yet: the tickets stay in the stream to be read.
	before := e.client.ImportJSON(key, map[string]any{"template": "T", "records": apitest.Records(3)})
	if got := e.queuedShares(before.UploadID); len(got) != 2 || got[1] != 2 || got[2] != 2 {
		t.Fatalf("tickets before the update: shares by page %v, want pages 1 and 2 with share 2", got)
	}

	data := e.client.MustCall(testAdminToken, http.MethodPatch, "/v1/admin/tenants/plan",
		`{"quotas":{"deliveryShare":5,"maxRecords":null,"importsPerMinute":3}}`, http.StatusOK)
	var tv tenantView
	if err := json.Unmarshal(data, &tv); err != nil {
		t.Fatal(err)
	}
	if _, has := tv.Quotas["maxRecords"]; has || tv.ID != "plan" || tv.Name != "Tenant plan" || len(tv.Quotas) != 2 ||
		tv.Quotas["deliveryShare"] != 5 || tv.Quotas["importsPerMinute"] != 3 ||
		tv.EffectiveQuotas["deliveryShare"] != 5 || tv.EffectiveQuotas["maxRecords"] != 50 || tv.EffectiveQuotas["importsPerMinute"] != 3 {
		t.Fatalf("updated tenant = %s", data)
	}
	stored := string(e.client.MustCall(testAdminToken, http.MethodGet, "/v1/admin/tenants/plan", nil, http.StatusOK))
	if !strings.Contains(stored, `"quotas":{"importsPerMinute":3,"deliveryShare":5}`) {
		t.Fatalf("GET after the update = %s", stored)
	}
	if logs := e.logs.String(); !strings.Contains(logs, `"tenant quotas changed"`) || strings.Contains(logs, key[3:]) {
		t.Fatalf("the change is not logged, or the log holds the tenant's key")
	}

	for _, tc := range []struct {
		name, body string
		status     int
		field      string
	}{
		{"delivery share 0", `{"quotas":{"deliveryShare":0}}`, http.StatusBadRequest, "quotas.deliveryShare"},
		{"delivery share over 100", `{"quotas":{"deliveryShare":101}}`, http.StatusBadRequest, "quotas.deliveryShare"},
		{"delivery share not whole", `{"quotas":{"deliveryShare":2.5}}`, http.StatusBadRequest, "quotas.deliveryShare"},
		{"negative imports per minute", `{"quotas":{"importsPerMinute":-1}}`, http.StatusBadRequest, "quotas.importsPerMinute"},
		{"a good value beside a bad one", `{"quotas":{"deliveryShare":7,"maxConcurrentUploads":-2}}`, http.StatusBadRequest, "quotas.maxConcurrentUploads"},
		{"text", `{"quotas":{"maxRecords":"10"}}`, http.StatusBadRequest, "quotas.maxRecords"},
		{"unknown quota", `{"quotas":{"maxRecs":1}}`, http.StatusBadRequest, "maxRecs"},
		{"no quotas", `{}`, http.StatusBadRequest, "quotas"},
		{"not JSON", `{`, http.StatusBadRequest, ""},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			status, data := e.client.Call(testAdminToken, http.MethodPatch, "/v1/admin/tenants/plan", tc.body)
			if ae := decodeError(t, data); status != tc.status || ae.Error.Field != tc.field || ae.Error.Message == "" {
				t.Fatalf("= %d %s, want %d naming %q", status, data, tc.status, tc.field)
			}
			if now := string(e.client.MustCall(testAdminToken, http.MethodGet, "/v1/admin/tenants/plan", nil, http.StatusOK)); now != stored {
				t.Fatalf("after a refused update the tenant is %s, was %s", now, stored)
			}
		})
	}
	for _, id := range []string{"nobody", "acme" /* HOOKLINE_API_KEYS: not stored */, "bad%20id"} {
		status, data := e.client.Call(testAdminToken, http.MethodPatch, "/v1/admin/tenants/"+id, `{"quotas":{"deliveryShare":3}}`)
		if ae := decodeError(t, data); status != http.StatusNotFound || ae.Error.Field != "tenant" {
			t.Fatalf("update of tenant %s = %d %s, want 404 naming tenant", id, status, data)
		}
	}

	// The next import gets the new share (this replica had the old quotas
	// cached) and the new default of maxRecords; the queued tickets keep theirs.
	after := e.client.ImportJSON(key, map[string]any{"template": "T", "records": apitest.Records(20)})
	if got := e.queuedShares(after.UploadID); len(got) != 2 || got[1] != 5 || got[2] != 5 {
		t.Fatalf("tickets after the update: shares by page %v, want pages 1 and 2 with share 5", got)
	}
	if got := e.queuedShares(before.UploadID); got[1] != 2 || got[2] != 2 {
		t.Fatalf("tickets queued before the update: shares by page %v, want 2 kept", got)
	}
	// importsPerMinute 3, counted from the change on (the import before it
	// was made without a rate limit): "after" and two more.
	for range 2 {
		e.client.ImportJSON(key, map[string]any{"template": "T", "records": apitest.Records(1)})
	}
	status, data := e.client.Call(key, http.MethodPost, "/v1/imports", map[string]any{"template": "T", "records": apitest.Records(1)})
	wantQuota(t, status, data, "quotas.importsPerMinute", "tenant plan may start at most 3 imports per minute")

	e.startWorker()
	for _, id := range []string{before.UploadID, after.UploadID} {
		if u := e.client.WaitFinished(key, id, 30*time.Second); u.Status != "completed" {
			t.Fatalf("upload %s = %+v, want completed", id, u)
		}
	}
}
