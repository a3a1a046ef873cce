package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// poster sends webhook bodies to the receiver the way the bare HTTP baseline
// does: a keep-alive client with one idle connection per concurrent sender.
type poster struct {
	hc  *http.Client
	tr  *http.Transport
	url string
}

func newPoster(url string, concurrency int) *poster {
	tr := &http.Transport{MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency, IdleConnTimeout: time.Minute}
	return &poster{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, tr: tr, url: url}
}

// post sends body with the headers a worker sends, webhook-id id; false when
// the request failed or was not answered 200.
func (p *poster) post(ctx context.Context, id string, body []byte) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hookline/bench")
	req.Header.Set("X-API-KEY", authValue)
	req.Header.Set("webhook-id", id)
	resp, err := p.hc.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func (p *poster) close() { p.tr.CloseIdleConnections() }

// The floor's stream, apart from hookline's own.
const (
	floorStream  = "BENCH_FLOOR"
	floorSubject = "benchfloor"
)

// runFloor is the least a pipeline of hookline's shape can do per page: each
// page body is published to a JetStream stream with a file store (one
// publisher, asynchronous publishes), delivered from it by a pull consumer,
// POSTed by one of concurrency senders exactly as the bare HTTP baseline
// does, then acknowledged (with ack false, not even that: no redelivery is
// possible). Nothing else: no parsing, no Redis, no ordering or leases, no
// retry schedule, no failure log, no completion. It runs in the bench
// process, on the same nats-server as hookline, from the first publish to
// the last page received.
func runFloor(ctx context.Context, natsURL string, rc *receiver, bodies [][]byte, uploads, concurrency int, ack bool) (deliveryResult, error) {
	pages := len(bodies)
	total := uploads * pages
	pub, err := nats.Connect(natsURL, nats.Name("bench-floor-publisher"))
	if err != nil {
		return deliveryResult{}, err
	}
	defer pub.Close()
	sub, err := nats.Connect(natsURL, nats.Name("bench-floor-consumer"))
	if err != nil {
		return deliveryResult{}, err
	}
	defer sub.Close()
	pjs, err := jetstream.New(pub, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		return deliveryResult{}, err
	}
	sjs, err := jetstream.New(sub)
	if err != nil {
		return deliveryResult{}, err
	}
	_ = sjs.DeleteStream(ctx, floorStream) // left by an interrupted run
	stream, err := sjs.CreateStream(ctx, jetstream.StreamConfig{
		Name: floorStream, Subjects: []string{floorSubject + ".>"},
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
	})
	if err != nil {
		return deliveryResult{}, fmt.Errorf("floor stream: %w", err)
	}
	defer func() { _ = sjs.DeleteStream(context.WithoutCancel(ctx), floorStream) }()
	cc := jetstream.ConsumerConfig{Durable: "floor", AckPolicy: jetstream.AckNonePolicy}
	if ack {
		cc.AckPolicy, cc.AckWait, cc.MaxAckPending = jetstream.AckExplicitPolicy, time.Minute, 4*concurrency
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return deliveryResult{}, fmt.Errorf("floor consumer: %w", err)
	}

	p := newPoster(rc.url, concurrency)
	defer p.close()
	rc.reset(int64(total))
	start := time.Now()

	it, err := cons.Messages(jetstream.PullMaxMessages(2 * concurrency))
	if err != nil {
		return deliveryResult{}, err
	}
	msgs := make(chan jetstream.Msg, concurrency)
	go func() {
		defer close(msgs)
		for {
			m, err := it.Next()
			if err != nil {
				return
			}
			msgs <- m
		}
	}()
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for m := range msgs {
				// benchfloor.<upload>.<page>
				rest := strings.TrimPrefix(m.Subject(), floorSubject+".")
				ok := p.post(ctx, "FLOOR"+rest, m.Data())
				if !ok {
					failed.Add(1)
				}
				switch {
				case ack && ok:
					_ = m.Ack()
				case ack:
					_ = m.Nak()
				}
			}
		})
	}
	defer func() { it.Stop(); wg.Wait() }()

	for u := range uploads {
		prefix := floorSubject + "." + strconv.Itoa(u) + "."
		for i, b := range bodies {
			if _, err := pjs.PublishAsync(prefix+strconv.Itoa(i+1), b); err != nil {
				return deliveryResult{}, fmt.Errorf("floor publish: %w", err)
			}
		}
	}
	select {
	case <-pjs.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return deliveryResult{}, errors.New("floor: publishes not acknowledged within a minute")
	}
	last, ok := rc.wait(5 * time.Minute)
	if !ok {
		return deliveryResult{}, fmt.Errorf("floor: %d of %d pages received (%d POSTs failed)", rc.count.Load(), total, failed.Load())
	}
	return deliveryResult{pages: total, elapsed: last.Sub(start), dups: rc.dups.Load()}, nil
}
