package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// perfRecorder samples every CPU of the machine (perf record -a -g) while a
// step runs, so the report can say which process, and which functions in
// it, the CPU time went to.
type perfRecorder struct {
	dir  string
	data string
	cmd  *exec.Cmd
	done chan struct{}
}

func startPerf(dir string) (*perfRecorder, error) {
	if _, err := exec.LookPath("perf"); err != nil {
		return nil, fmt.Errorf("BENCH_PERF: perf is not installed (Debian: apt-get install linux-perf)")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	p := &perfRecorder{dir: dir, data: filepath.Join(dir, "perf.data"), done: make(chan struct{})}
	log, err := os.Create(filepath.Join(dir, "perf-record.log")) // #nosec G304 -- BENCH_PERF, the directory its user chose
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command("perf", "record", "-a", "-g", "-F", "499", "-o", p.data) // #nosec G204 -- perf, with an output file in BENCH_PERF
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		_ = log.Close()
		return nil, err
	}
	go func() { _ = p.cmd.Wait(); _ = log.Close(); close(p.done) }()
	time.Sleep(300 * time.Millisecond) // let it attach before the step starts
	return p, nil
}

// stop ends the recording and writes the reports: CPU by process, then for
// each of comms the functions by self time and by cumulative time.
func (p *perfRecorder) stop(comms []string) error {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	reports := map[string][]string{
		"by-process.txt": {"--no-children", "--sort", "comm", "-g", "none", "--percent-limit", "0.3"},
		"by-dso.txt":     {"--no-children", "--sort", "comm,dso", "-g", "none", "--percent-limit", "0.3"},
	}
	for _, c := range comms {
		// Percentages relative to the process's own samples.
		reports[c+"-self.txt"] = []string{"--no-children", "--comm", c, "--percentage", "relative", "--sort", "sym", "-g", "none", "--percent-limit", "0.5"}
		reports[c+"-cumulative.txt"] = []string{"--children", "--comm", c, "--percentage", "relative", "--sort", "sym", "-g", "none", "--percent-limit", "2"}
	}
	for name, args := range reports {
		args = append([]string{"report", "-i", p.data, "--stdio"}, args...)
		var out, errb bytes.Buffer
		cmd := exec.Command("perf", args...) // #nosec G204 -- perf report on the bench's own recording
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("perf %v: %w: %s", args, err, errb.String())
		}
		if err := os.WriteFile(filepath.Join(p.dir, name), out.Bytes(), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// soakResult is the workers' memory over a long run.
type soakResult struct {
	samples [][]int64 // per sample, VmRSS of each worker (bytes)
	at      []time.Duration
	pages   int64
	uploads int
}

// runSoak keeps the pipeline busy for d with imports of pagesPer-page
// uploads at about rate pages a second (and at most backlog pages not yet
// delivered), and samples every worker's VmRSS every 10 s.
func runSoak(ctx context.Context, c *cluster, a *api, rc *receiver, body []byte, pagesPer, rate int, d time.Duration) (soakResult, error) {
	const backlog = 2000
	var res soakResult
	rc.reset(1 << 62)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var sent atomic.Int64
	var mu sync.Mutex
	var ids []string
	var firstErr error
	var wg sync.WaitGroup
	begun := time.Now()
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				ahead := float64(sent.Load()) - float64(rate)*time.Since(begun).Seconds()
				if ahead > 0 || sent.Load()-rc.count.Load() > backlog {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				acc, err := a.importJSON(ctx, body)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						cancel()
					}
					return
				}
				sent.Add(int64(acc.TotalPages))
				mu.Lock()
				ids = append(ids, acc.UploadID)
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	sample := func() error {
		var s []int64
		for _, w := range c.workers {
			rss, err := procStatus(w.pid(), "VmRSS")
			if err != nil {
				return err
			}
			s = append(s, rss)
		}
		res.samples, res.at = append(res.samples, s), append(res.at, time.Since(start))
		return nil
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			if err := sample(); err != nil {
				return res, err
			}
			if err := c.check(); err != nil {
				return res, err
			}
		}
	}
	wg.Wait()
	if firstErr != nil {
		return res, firstErr
	}
	deadline := time.Now().Add(2 * time.Minute)
	for rc.count.Load() < sent.Load() {
		if time.Now().After(deadline) {
			return res, fmt.Errorf("soak: %d of %d pages received", rc.count.Load(), sent.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := sample(); err != nil {
		return res, err
	}
	res.pages, res.uploads = rc.count.Load(), len(ids)
	return res, a.verify(context.Background(), ids)
}
