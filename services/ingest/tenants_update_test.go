package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookline/hookline/pkg/natstest"
)

func TestQuotaChangesApply(t *testing.T) {
	old := QuotaSettings{MaxRecords: intp(100), ImportsPerMinute: intp(60), DeliveryShare: intp(2)}
	for _, tc := range []struct {
		name, body string
		want       QuotaSettings
	}{
		{"nothing named: all kept", `{}`, old},
		{"one set, the others kept", `{"deliveryShare": 5}`, QuotaSettings{MaxRecords: intp(100), ImportsPerMinute: intp(60), DeliveryShare: intp(5)}},
		{"null: back to the default", `{"maxRecords": null}`, QuotaSettings{ImportsPerMinute: intp(60), DeliveryShare: intp(2)}},
		{"one of none set", `{"maxConcurrentUploads": 0}`, QuotaSettings{MaxRecords: intp(100), MaxConcurrentUploads: intp(0), ImportsPerMinute: intp(60), DeliveryShare: intp(2)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c QuotaChanges
			if err := json.Unmarshal([]byte(tc.body), &c); err != nil {
				t.Fatal(err)
			}
			if got := c.Apply(old); jsonOf(got) != jsonOf(tc.want) { // omitempty drops nil only: 0 is shown
				t.Fatalf("Apply = %s, want %s", jsonOf(got), jsonOf(tc.want))
			}
		})
	}
	if old.DeliveryShare == nil || *old.DeliveryShare != 2 || old.MaxRecords == nil {
		t.Fatalf("Apply changed its argument: %s", jsonOf(old))
	}
}

func jsonOf(v any) string { b, _ := json.Marshal(v); return string(b) }

// A bad value is refused naming its field, as creation does.
func TestTenantPatchDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ body, field string }{
		{`{"quotas": {"deliveryShare": 1.5}}`, "quotas.deliveryShare"},
		{`{"quotas": {"maxRecords": "10"}}`, "quotas.maxRecords"},
		{`{"quotas": {"maxRecs": 1}}`, "maxRecs"},
		{`{"name": "x"}`, "name"},
	} {
		t.Run(tc.body, func(t *testing.T) {
			var in TenantPatch
			dec := json.NewDecoder(strings.NewReader(tc.body))
			dec.DisallowUnknownFields()
			err := dec.Decode(&in)
			if err == nil {
				t.Fatalf("decoded %s", tc.body)
			}
			_, d := toHTTP(jsonError(err))
			if d.Field != tc.field || d.Code != "invalid_argument" {
				t.Fatalf("error = %+v, want invalid_argument naming %s", d, tc.field)
			}
		})
	}
}

func newTestTenants(t *testing.T) *Tenants {
	t.Helper()
	js, err := jetstream.New(natstest.Connect(t, natstest.Start(t)))
	if err != nil {
		t.Fatal(err)
	}
	ts, err := NewTenants(context.Background(), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// Concurrent updates of different quotas all land: each one writes back
// only the version it read.
func TestUpdateTenantIsAtomic(t *testing.T) {
	ctx := context.Background()
	ts := newTestTenants(t)
	if err := ts.CreateTenant(ctx, &Tenant{ID: "acme", Name: "Acme", Quotas: QuotaSettings{MaxRecords: intp(5)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.UpdateTenant(ctx, "nobody", func(*Tenant) error { return nil }); !errors.Is(err, ErrTenantNotFound) {
		t.Fatalf("update of an unknown tenant = %v, want ErrTenantNotFound", err)
	}
	refused := errors.New("refused")
	if _, err := ts.UpdateTenant(ctx, "acme", func(t *Tenant) error {
		t.Quotas.MaxRecords = intp(99)
		return refused
	}); !errors.Is(err, refused) {
		t.Fatalf("refused update = %v", err)
	}
	if got, _ := ts.Tenant(ctx, "acme"); got == nil || *got.Quotas.MaxRecords != 5 {
		t.Fatalf("after a refused update: %+v, want maxRecords 5 kept", got)
	}

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, set := range []func(*QuotaSettings){
		func(q *QuotaSettings) { q.MaxConcurrentUploads = intp(3) },
		func(q *QuotaSettings) { q.ImportsPerMinute = intp(7) },
		func(q *QuotaSettings) { q.DeliveryShare = intp(4) },
		func(q *QuotaSettings) { q.MaxRecords = intp(6) },
	} {
		wg.Go(func() {
			_, err := ts.UpdateTenant(ctx, "acme", func(t *Tenant) error { set(&t.Quotas); return nil })
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, err := ts.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"maxRecords":6,"maxConcurrentUploads":3,"importsPerMinute":7,"deliveryShare":4}`; jsonOf(got.Quotas) != want || got.Name != "Acme" {
		t.Fatalf("after concurrent updates: %s %q, want %s", jsonOf(got.Quotas), got.Name, want)
	}
}
