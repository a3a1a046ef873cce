package e2e

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hookline/hookline/services/hookline/internal/apitest"
)

// An import's span and the spans of its pages' delivery attempts share one
// trace: its context travels in the tickets' headers, from ingest to the
// worker and from one page's ticket to the next.
func TestImportAndDeliveriesShareATrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)))
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	e := newEnv(t)
	e.startWorker()
	rc := apitest.NewReceiver(t, nil)
	e.client.PutTemplate(keyA, "CSV", map[string]any{"url": rc.HookURL(), "chunkSize": 1})
	status, data := e.multipart(keyA, map[string]string{"template": "CSV"}, "people.csv", "text/csv", "name\nAda\nBob\nCy\n")
	if status != http.StatusAccepted {
		t.Fatalf("import = %d %s", status, data)
	}
	var acc apitest.Accepted
	_ = json.Unmarshal(data, &acc)
	if u := e.client.WaitFinished(keyA, acc.UploadID, 20*time.Second); u.Status != "completed" {
		t.Fatalf("upload = %+v", u)
	}

	var imports, deliveries []sdktrace.ReadOnlySpan
	apitest.Eventually(t, 10*time.Second, "an import span and 3 delivery spans", func() bool {
		imports, deliveries = nil, nil
		for _, s := range rec.Ended() {
			switch s.Name() {
			case "import":
				imports = append(imports, s)
			case "deliver":
				deliveries = append(deliveries, s)
			}
		}
		return len(imports) == 1 && len(deliveries) == 3
	})
	trace := imports[0].SpanContext().TraceID()
	if !trace.IsValid() {
		t.Fatal("the import span has no trace id")
	}
	for _, s := range deliveries {
		if got := s.SpanContext().TraceID(); got != trace {
			t.Errorf("delivery span %s in trace %s, want the import's %s", s.SpanContext().SpanID(), got, trace)
		}
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.String()
		}
		if attrs["hookline.upload_id"] != acc.UploadID || attrs["hookline.outcome"] != "delivered" {
			t.Errorf("delivery span attributes = %v", attrs)
		}
	}
}
