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
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func TestOffWithoutEndpoint(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	otel.SetTracerProvider(noop.NewTracerProvider())
	shutdown, err := Setup(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	_, span := otel.Tracer("t").Start(context.Background(), "x")
	defer span.End()
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Fatal("a span is recorded without OTEL_EXPORTER_OTLP_ENDPOINT")
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

// What tracing adds to a page when OTEL_EXPORTER_OTLP_ENDPOINT is unset:
// the ticket's trace context injected at publish (queue.PublishTicket),
// extracted when a worker takes it (worker.Pool.process), and the span
// around the delivery attempt (worker.Deliverer.attempt), against the same
// page's message with none of those calls. The global provider and
// propagator are left as a process without Setup has them: run it alone
// (-run '^$'), since TestOffWithoutEndpoint replaces the global provider.
func BenchmarkPerPageOff(b *testing.B) {
	b.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	b.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	shutdown, err := Setup(context.Background(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = shutdown(context.Background()) }()
	tracer := otel.Tracer("github.com/hookline/hookline/services/worker") // as the worker takes it, before Setup
	ctx := context.Background()
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)} // the worker's deliverSpan
	for _, traced := range []bool{false, true} {
		b.Run(fmt.Sprintf("tracing=%v", map[bool]string{false: "none", true: "off"}[traced]), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				msg := nats.NewMsg("hookline.deliveries.u")
				if traced {
					Inject(ctx, msg.Header)
				}
				c := ctx
				if traced {
					c = Extract(c, msg.Header)
				}
				if traced {
					var span trace.Span
					c, span = tracer.Start(c, "deliver", opts...)
					if span.IsRecording() {
						span.SetAttributes(attribute.String("hookline.upload_id", "u"), attribute.Int("hookline.page", 1))
					}
					span.End()
				}
				sink = c
			}
		})
	}
}

var sink context.Context
