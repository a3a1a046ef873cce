package tracing

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// keepEarlyTracersOff binds the tracers taken before any provider was set
// (workerTracer) to a no-op provider, as Setup without an endpoint does in
// the worker: otel hands their Start calls on to the first provider set,
// for good, and the tests install recording ones after it.
func keepEarlyTracersOff() { otel.SetTracerProvider(noop.NewTracerProvider()) }

// Without an endpoint Setup replaces whatever provider is installed (here
// one that records and samples every span) with the no-op one.
func TestOffWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	keepEarlyTracersOff()
	recording := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer func() { _ = recording.Shutdown(context.Background()) }()
	otel.SetTracerProvider(recording)
	if _, span := otel.Tracer("t").Start(context.Background(), "x"); !span.IsRecording() {
		t.Fatal("the recording provider does not record: the check below would prove nothing")
	}
	shutdown, err := Setup(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	tp := otel.GetTracerProvider()
	if tp == trace.TracerProvider(recording) {
		t.Fatal("Setup without OTEL_EXPORTER_OTLP_ENDPOINT left the installed provider in place")
	}
	_, span := tp.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	if span.IsRecording() || span.SpanContext().IsSampled() || span.SpanContext().IsValid() {
		t.Fatalf("the global provider %T records or samples spans without OTEL_EXPORTER_OTLP_ENDPOINT", tp)
	}
}

// With OTEL_EXPORTER_OTLP_ENDPOINT, spans are sent by OTLP/HTTP to it.
func TestExportsToEndpoint(t *testing.T) {
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			posts.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	keepEarlyTracersOff()
	shutdown, err := Setup(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer otel.SetTracerProvider(noop.NewTracerProvider())
	_, span := otel.Tracer("t").Start(context.Background(), "x")
	span.End()
	if err := shutdown(context.Background()); err != nil { // flushes the batch
		t.Fatal(err)
	}
	if posts.Load() == 0 {
		t.Fatal("no span reached the OTLP endpoint")
	}
}

// workerTracer is taken as the worker takes its own (a package variable,
// services/worker.tracer): before Setup, from otel's global provider, which
// hands its Start calls on to the provider Setup installs.
var workerTracer = otel.Tracer("github.com/hookline/hookline/services/worker")

// deliverSpan is the worker's attempt span options, built once as it does.
var deliverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

// attempt has the tracing of worker.Deliverer.attempt: a span around the
// attempt whose attributes are set, in a deferred function, only when it
// records.
//
//go:noinline
func attempt(ctx context.Context, uploadID string, page int) (out context.Context) {
	ctx, span := workerTracer.Start(ctx, "deliver", deliverSpan...)
	defer func() {
		if span.IsRecording() {
			span.SetAttributes(attribute.String("hookline.upload_id", uploadID), attribute.Int("hookline.page", page),
				attribute.Int("hookline.attempt", 1), attribute.String("hookline.outcome", "delivered"))
		}
		span.End()
	}()
	return ctx
}

// What tracing adds to a page when OTEL_EXPORTER_OTLP_ENDPOINT is unset, in
// a process set up as the worker and ingest are (Setup, no endpoint): the
// ticket's trace context injected at publish (queue.PublishTicket),
// extracted when a worker takes it (worker.Pool.process), and the span
// around the delivery attempt (worker.Deliverer.attempt) started from the
// tracer taken before Setup, against the same page's message with none of
// those calls. Run it with no test before it (-run '^$'): a test that calls
// Setup with an endpoint leaves the W3C propagator installed, which a
// process without traces does not have (the benchmark refuses to run then).
func BenchmarkPerPageOff(b *testing.B) {
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	shutdown, err := Setup(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	ctx := context.Background()
	if _, span := workerTracer.Start(ctx, "check"); span.IsRecording() {
		b.Fatal("the worker's tracer records: a test bound it to a recording provider (see keepEarlyTracersOff)")
	}
	if f := otel.GetTextMapPropagator().Fields(); len(f) > 0 {
		b.Fatalf("a test installed the propagator of %v, which a process without traces does not have: run the benchmark alone, -run '^$'", f)
	}
	for _, traced := range []bool{false, true} {
		b.Run(fmt.Sprintf("tracing=%v", map[bool]string{false: "none", true: "off"}[traced]), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msg := nats.NewMsg("hookline.deliveries.u")
				c := ctx
				if traced {
					Inject(ctx, msg.Header)
					c = attempt(Extract(c, msg.Header), "u", 1)
				}
				sink = c
			}
		})
	}
}

var sink context.Context
