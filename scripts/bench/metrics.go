package main

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// scrape reads the unlabelled gauges and counters named in names from a
// Prometheus text endpoint.
func scrape(url string, names ...string) (map[string]float64, error) {
	resp, err := http.Get(url) // #nosec G107 -- the loopback /metrics of a service the bench started
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || !want[name] {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, sc.Err()
}

// peakSampler polls a /metrics endpoint and keeps the maximum of each metric.
type peakSampler struct {
	mu    sync.Mutex
	peaks map[string]float64
	stop  context.CancelFunc
	done  chan struct{}
}

func samplePeaks(url string, every time.Duration, names ...string) *peakSampler {
	ctx, cancel := context.WithCancel(context.Background())
	p := &peakSampler{peaks: map[string]float64{}, stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if m, err := scrape(url, names...); err == nil {
				p.mu.Lock()
				for k, v := range m {
					p.peaks[k] = max(p.peaks[k], v)
				}
				p.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakSampler) end() map[string]float64 {
	p.stop()
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peaks
}
