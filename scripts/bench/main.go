// Command bench measures hookline end to end on loopback: it builds and
// starts nats-server, redis-server, ingest and worker processes and a
// receiver, then measures delivery throughput against a bare HTTP baseline,
// the ingest of a large CSV against an in-process parse-and-encode baseline
// (with ingest's peak memory), the latency of a 1-page upload, and delivery
// with 1, 2 and 4 workers, and (step 5) the ingest of an XLSX file against
// excelize's own streaming read, with ingest's peak memory at two sizes, and
// a CSV import with a recordFormat against one without. It prints one table and writes it into
// docs/benchmarks.md.
//
// Settings (environment):
//
//	BENCH_QUICK=1            smaller sizes, finishes in under a minute
//	BENCH_ROWS=N             rows of the CSV of step 2 (default 1,000,000; quick 100,000)
//	BENCH_UPLOADS, BENCH_PAGES  the delivery workload of step 1 (default 200 × 50)
//	BENCH_WORKERS=1,2,4      worker counts of step 4
//	BENCH_LATENCY_SAMPLES=N  1-page uploads of step 3 (default 200)
//	BENCH_CONCURRENCY=N      HOOKLINE_WORKER_CONCURRENCY of each worker (default 64)
//	BENCH_XLSX_ROWS=N        rows of the XLSX of step 5 (default 1,000,000, also half that; quick 50,000)
//	BENCH_STEPS=1,2,3,4,5    which steps to run
//	BENCH_SOAK=10m           also run a soak of that length, sampling worker RSS every 10 s
//	BENCH_SOAK_RATE=500      pages a second the soak imports (paced, so a shared machine stays usable)
//	BENCH_PERF=DIR           record perf profiles (all CPUs) during steps 1 and 2 into DIR
//	BENCH_DOC=PATH|off       where to write the table (default docs/benchmarks.md)
//	BENCH_IDLE_WAIT=90s      before each measured step, wait up to this long for the CPUs to be idle (quick: 5s)
//	BENCH_KEEP=1             keep the temp dir (binaries, stores, service logs)
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchDir is this module's directory (where nats-server is built from).
var benchDir string

type settings struct {
	quick                bool
	custom               bool // a size or step was set by hand
	steps                []int
	uploads, pages       int
	perPage, maxInFlight int
	importers            int
	scaleUploads         int
	scalePages           int
	workerCounts         []int
	concurrency          int
	rows                 int
	xlsxRows             int
	latencySamples       int
	soak                 time.Duration
	soakRate             int
	perfDir              string
	doc                  string
	keep                 bool
}

func envInt(key string, def int, custom *bool) int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.ReplaceAll(v, "_", ""))
	if err != nil || n < 1 {
		fatalf("%s must be a positive whole number, got %q", key, v)
	}
	*custom = true
	return n
}

func envInts(key string, def []int, custom *bool) []int {
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fatalf("%s must be a list of positive numbers such as 1,2,4, got %q", key, v)
		}
		out = append(out, n)
	}
	*custom = true
	return out
}

func loadSettings(root string) settings {
	s := settings{
		quick:   os.Getenv("BENCH_QUICK") == "1",
		steps:   []int{1, 2, 3, 4, 5, 6},
		perPage: 100, maxInFlight: 4, importers: 8,
		uploads: 200, pages: 50, scaleUploads: 100, scalePages: 50,
		workerCounts: []int{1, 2, 4}, concurrency: 64,
		rows: 1_000_000, xlsxRows: 1_000_000, latencySamples: 200,
		doc:  filepath.Join(root, "docs", "benchmarks.md"),
		keep: os.Getenv("BENCH_KEEP") == "1",
	}
	if s.quick {
		s.uploads, s.pages, s.scaleUploads, s.scalePages = 40, 20, 40, 20
		s.workerCounts, s.rows, s.latencySamples = []int{1, 2}, 100_000, 50
		s.xlsxRows = 50_000
	}
	c := &s.custom
	s.steps = envInts("BENCH_STEPS", s.steps, c)
	s.uploads = envInt("BENCH_UPLOADS", s.uploads, c)
	s.pages = envInt("BENCH_PAGES", s.pages, c)
	s.workerCounts = envInts("BENCH_WORKERS", s.workerCounts, c)
	s.latencySamples = envInt("BENCH_LATENCY_SAMPLES", s.latencySamples, c)
	s.concurrency = envInt("BENCH_CONCURRENCY", s.concurrency, c)
	s.rows = envInt("BENCH_ROWS", s.rows, c)
	s.xlsxRows = envInt("BENCH_XLSX_ROWS", s.xlsxRows, c)
	s.soakRate = envInt("BENCH_SOAK_RATE", 500, new(bool))
	if v := os.Getenv("BENCH_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second {
			fatalf("BENCH_SOAK must be a duration of at least 30s such as 10m, got %q", v)
		}
		s.soak = d
		s.custom = true
	}
	s.perfDir = os.Getenv("BENCH_PERF")
	if s.quick {
		idleWait = 5 * time.Second // stay under a minute on a busy machine too
	}
	if v := os.Getenv("BENCH_IDLE_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			fatalf("BENCH_IDLE_WAIT must be a duration such as 90s (0 to not wait), got %q", v)
		}
		idleWait = d
	}
	switch v := os.Getenv("BENCH_DOC"); v {
	case "":
	case "off", "0":
		s.doc = ""
	default:
		s.doc = v
	}
	return s
}

func (s settings) has(step int) bool { return slices.Contains(s.steps, step) }

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// findRoot walks up from the working directory to the repository root (the
// directory with go.work and services/ingest).
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "services", "ingest")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the bench from inside the hookline repository (no go.work with services/ingest found above the working directory)")
		}
		dir = parent
	}
}

func main() {
	root, err := findRoot()
	if err != nil {
		fatalf("%v", err)
	}
	benchDir = filepath.Join(root, "scripts", "bench")
	s := loadSettings(root)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := run(ctx, root, s)
	if err != nil {
		fatalf("%v", err)
	}
	md := rep.markdown()
	fmt.Println()
	fmt.Print(md)
	if s.doc != "" {
		key := "full"
		switch {
		case s.custom:
			key = rep.title // one section per combination of settings
		case s.quick:
			key = "quick"
		}
		if err := writeDoc(s.doc, key, md); err != nil {
			fatalf("write %s: %v", s.doc, err)
		}
		fmt.Fprintf(os.Stderr, "\nwritten to %s (section %q)\n", s.doc, key)
	}
}

func run(ctx context.Context, root string, s settings) (*report, error) {
	began := time.Now()
	dir, err := os.MkdirTemp("", "hookline-bench-")
	if err != nil {
		return nil, err
	}
	if s.keep {
		progress("temp dir %s kept", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	rep := &report{title: "Full run", rev: revision(root)}
	switch {
	case s.custom:
		var set []string
		for _, kv := range os.Environ() {
			k, _, _ := strings.Cut(kv, "=")
			switch k {
			case "BENCH_QUICK", "BENCH_ROWS", "BENCH_UPLOADS", "BENCH_PAGES", "BENCH_WORKERS",
				"BENCH_LATENCY_SAMPLES", "BENCH_CONCURRENCY", "BENCH_STEPS", "BENCH_SOAK":
				set = append(set, kv)
			}
		}
		slices.Sort(set)
		rep.title = "Custom run (" + strings.Join(set, " ") + ")"
	case s.quick:
		rep.title = "Quick run (BENCH_QUICK=1)"
	}

	progress("building ingest, worker and nats-server")
	bin, err := build(root, dir)
	if err != nil {
		return nil, err
	}
	rc, err := startReceiver()
	if err != nil {
		return nil, err
	}
	defer rc.close()
	c, err := newCluster(dir, bin, s.concurrency)
	if err != nil {
		return nil, err
	}
	defer c.close()
	if err := c.startIngest(ctx); err != nil {
		return nil, err
	}
	a := newAPI(c.ingestAddr)
	for _, t := range []struct {
		code          string
		chunk, window int
	}{
		{"BENCH_DELIVERY", s.perPage, s.maxInFlight},
		{"BENCH_LATENCY", 100, 1},
		{"BENCH_INGEST", 1000, 1},
	} {
		if err := a.putTemplate(ctx, t.code, rc.url, t.chunk, t.window); err != nil {
			return nil, err
		}
	}
	if err := c.setWorkers(ctx, 1); err != nil {
		return nil, err
	}
	progress("services up: nats-server, redis-server, ingest, 1 worker (concurrency %d); receiver %s", s.concurrency, rc.url)

	// Warm-up: connections, JIT-free but lazy things (scripts loaded in Redis,
	// streams' first blocks). Not measured.
	oneLatency := importBody("BENCH_LATENCY", 10)
	if _, _, err := runLatency(ctx, a, rc, oneLatency, 5); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if _, _, err := runDelivery(ctx, a, rc, importBody("BENCH_DELIVERY", 10*s.perPage), 8, 10, s.importers); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}

	// 3. Latency at idle (first, while the system is idle and small).
	if s.has(3) {
		progress("step 3: latency of %d 1-page uploads, one at a time", s.latencySamples)
		time.Sleep(500 * time.Millisecond)
		waitIdle("step 3")
		cw := startCPU(c)
		lat, ids, err := runLatency(ctx, a, rc, oneLatency, s.latencySamples)
		cpuNote(rep, "step 3", cw.end())
		if err != nil {
			return nil, fmt.Errorf("step 3: %w", err)
		}
		if err := a.verify(ctx, ids); err != nil {
			return nil, fmt.Errorf("step 3: %w", err)
		}
		p99 := percentile(lat.toPage, 99)
		rep.add(row{"3", fmt.Sprintf("Import → page received, 1-page upload (10 records), idle, %d samples", s.latencySamples),
			fmt.Sprintf("p50 %s, p99 %s", ms(percentile(lat.toPage, 50)), ms(p99)), "—", "—", "p99 < 20 ms", yesNo(p99 < 20*time.Millisecond)})
		rep.note("Step 3: the import call alone (request sent → 202 read) took p50 %s, p99 %s; max import → page %s.",
			ms(percentile(lat.to202, 50)), ms(percentile(lat.to202, 99)), ms(percentile(lat.toPage, 100)))
	}

	deliveryBody := importBody("BENCH_DELIVERY", s.pages*s.perPage)
	baselines := map[[3]int]deliveryResult{}
	baseline := func(uploads, pages, concurrency int) (deliveryResult, error) {
		k := [3]int{uploads, pages, concurrency}
		if r, ok := baselines[k]; ok {
			return r, nil
		}
		progress("  baseline: bare HTTP, %d × %d POSTs, %d concurrent", uploads, pages, concurrency)
		bodies := webhookBodies("BENCH_DELIVERY", pages, s.perPage)
		waitIdle("the baseline")
		cw := startCPU(c)
		r, err := runBareHTTP(ctx, rc, bodies, uploads, concurrency)
		cpuNote(rep, fmt.Sprintf("bare HTTP baseline (%d concurrent)", concurrency), cw.end())
		if err == nil {
			baselines[k] = r
		}
		return r, err
	}

	// 1. Delivery throughput.
	if s.has(1) {
		progress("step 1: %d uploads × %d pages × %d records, maxInFlight %d, from %d import clients; 1 worker",
			s.uploads, s.pages, s.perPage, s.maxInFlight, s.importers)
		var pr *perfRecorder
		if s.perfDir != "" {
			if pr, err = startPerf(s.perfDir); err != nil {
				return nil, err
			}
		}
		waitIdle("step 1")
		nats0, _ := c.natsConns()
		cw := startCPU(c)
		res, ids, err := runDelivery(ctx, a, rc, deliveryBody, s.uploads, s.pages, s.importers)
		cpuNote(rep, "step 1", cw.end())
		if nats1, nerr := c.natsConns(); nerr == nil && nats0 != nil && err == nil {
			w0, w1 := nats0["hookline-worker"], nats1["hookline-worker"]
			rep.note("Step 1: the worker sent %.2f NATS messages per page delivered (pull requests, direct gets, tickets, acks, completion events, purges) and received %.2f.",
				float64(w1[0]-w0[0])/float64(res.pages), float64(w1[1]-w0[1])/float64(res.pages))
		}
		if pr != nil {
			if perr := pr.stop([]string{"worker", "ingest", "nats-server", "redis-server", "bench"}); perr != nil {
				return nil, perr
			}
			progress("  perf reports in %s", s.perfDir)
			rep.note("perf was recording every CPU during step 1 (BENCH_PERF): its figures are lower than without.")
		}
		if err != nil {
			return nil, fmt.Errorf("step 1: %w", err)
		}
		if err := a.verify(ctx, ids); err != nil {
			return nil, fmt.Errorf("step 1: %w", err)
		}
		base, err := baseline(s.uploads, s.pages, s.concurrency)
		if err != nil {
			return nil, fmt.Errorf("step 1: %w", err)
		}
		ratio := res.rate() / base.rate()
		rep.add(row{"1", fmt.Sprintf("Delivery: %d uploads × %d pages × %d records (%s B bodies), maxInFlight %d, 1 worker × concurrency %d",
			s.uploads, s.pages, s.perPage, num(float64(len(webhookBodies("BENCH_DELIVERY", 1, s.perPage)[0]))), s.maxInFlight, s.concurrency),
			num(res.rate()) + " pages/s", fmt.Sprintf("%s pages/s (bare HTTP, %d concurrent)", num(base.rate()), s.concurrency),
			fmt.Sprintf("%.2f", ratio), "≥ 0.50", yesNo(ratio >= 0.5)})
		// Delivery alone: the same uploads imported first, workers stopped.
		progress("step 1: delivery only: the same uploads imported first, then the worker started")
		var cw2 *cpuWindow
		var pr2 *perfRecorder
		only, oids, err := runDeliveryOnly(ctx, c, a, rc, deliveryBody, s.uploads, s.pages, s.importers, 1, func() func() {
			waitIdle("delivery only")
			if s.perfDir != "" {
				var perr error
				if pr2, perr = startPerf(filepath.Join(s.perfDir, "delivery-only")); perr != nil {
					progress("perf: %v", perr)
				}
			}
			cw2 = startCPU(c)
			return func() { cpuNote(rep, "step 1, delivery only", cw2.end()) }
		})
		if pr2 != nil {
			if perr := pr2.stop([]string{"worker", "nats-server", "redis-server", "bench"}); perr != nil {
				return nil, perr
			}
		}
		if err != nil {
			return nil, fmt.Errorf("step 1 (delivery only): %w", err)
		}
		if err := a.verify(ctx, oids); err != nil {
			return nil, fmt.Errorf("step 1 (delivery only): %w", err)
		}
		rep.add(row{"1", "Delivery only: the same uploads imported first (worker stopped), then 1 worker; first page received → last",
			num(only.rate()) + " pages/s", fmt.Sprintf("%s pages/s (same baseline)", num(base.rate())),
			fmt.Sprintf("%.2f", only.rate()/base.rate()), "—", "—"})
		// The design's floor: JetStream alone between the sender and the
		// receiver, what any pipeline of this shape must spend.
		floorBodies := webhookBodies("BENCH_DELIVERY", s.pages, s.perPage)
		var floor deliveryResult
		for _, ack := range []bool{true, false} {
			what, desc := "design floor", "Design floor: the same pages stored in a JetStream stream (file store), delivered by a pull consumer, POSTed as by the baseline and acknowledged; no parsing, no Redis"
			if !ack {
				what, desc = "design floor, no acks", "Design floor, not even acknowledged (no redelivery possible): stored, delivered, POSTed"
			}
			progress("step 1: %s: %d × %d pages through a JetStream stream, %d concurrent POSTs", what, s.uploads, s.pages, s.concurrency)
			waitIdle(what)
			cwf := startCPU(c)
			r, err := runFloor(ctx, c.natsURL, rc, floorBodies, s.uploads, s.concurrency, ack)
			cpuNote(rep, what, cwf.end())
			if err != nil {
				return nil, fmt.Errorf("step 1 (%s): %w", what, err)
			}
			rep.add(row{"1", desc, num(r.rate()) + " pages/s", fmt.Sprintf("%s pages/s (same baseline)", num(base.rate())),
				fmt.Sprintf("%.2f", r.rate()/base.rate()), "—", "—"})
			if ack {
				floor = r
			}
		}
		rep.note("Step 1: hookline delivered at %.2f of the design floor's rate with ingest running, %.2f delivery only.",
			res.rate()/floor.rate(), only.rate()/floor.rate())
		rep.note("Step 1: %s pages in %.2f s from the first import sent to the last page received; every import was accepted after %.2f s (%d import clients); "+
			"after the last 202 the remaining %s pages went at %s pages/s; %d duplicate deliveries.",
			num(float64(res.pages)), res.elapsed.Seconds(), res.importsDone.Seconds(), s.importers,
			num(float64(int64(res.pages)-res.pagesAt202)), num(res.tailRate()), res.dups)
	}

	// 4. Delivery with 1, 2, 4 workers.
	if s.has(4) {
		for _, n := range s.workerCounts {
			progress("step 4: %d worker(s), %d uploads × %d pages", n, s.scaleUploads, s.scalePages)
			if err := c.setWorkers(ctx, n); err != nil {
				return nil, err
			}
			body := deliveryBody
			if s.scalePages != s.pages {
				body = importBody("BENCH_DELIVERY", s.scalePages*s.perPage)
			}
			waitIdle(fmt.Sprintf("step 4 (%d workers)", n))
			cw := startCPU(c)
			res, ids, err := runDelivery(ctx, a, rc, body, s.scaleUploads, s.scalePages, s.importers)
			cpuNote(rep, fmt.Sprintf("step 4 (%d workers)", n), cw.end())
			if err != nil {
				return nil, fmt.Errorf("step 4 (%d workers): %w", n, err)
			}
			if err := a.verify(ctx, ids); err != nil {
				return nil, fmt.Errorf("step 4 (%d workers): %w", n, err)
			}
			base, err := baseline(s.scaleUploads, s.scalePages, n*s.concurrency)
			if err != nil {
				return nil, err
			}
			rep.add(row{"4", fmt.Sprintf("Delivery with %d worker process(es) × concurrency %d: %d uploads × %d pages", n, s.concurrency, s.scaleUploads, s.scalePages),
				num(res.rate()) + " pages/s", fmt.Sprintf("%s pages/s (bare HTTP, %d concurrent)", num(base.rate()), n*s.concurrency),
				fmt.Sprintf("%.2f", res.rate()/base.rate()), "—", "—"})
			rep.note("Step 4, %d worker(s): %.2f s in all, imports accepted after %.2f s, then %s pages/s; %d duplicates.",
				n, res.elapsed.Seconds(), res.importsDone.Seconds(), num(res.tailRate()), res.dups)
		}
	}

	// 6. Noisy neighbour: one tenant's flood against small imports of others.
	if s.has(6) {
		progress("step 6: tenant B's %d-page upload and %d tenants' 1-page uploads, alone and behind tenant A's %d × %d pages; 2 workers",
			smallPages, neighbours, floodUploads, floodPages)
		if err := noisyStep(ctx, c, a, rc, s, rep); err != nil {
			return nil, fmt.Errorf("step 6: %w", err)
		}
	}

	// Soak: worker memory over a long run.
	if s.soak > 0 {
		if err := c.setWorkers(ctx, 1); err != nil {
			return nil, err
		}
		progress("soak: %s of 10-page uploads at about %d pages/s, worker RSS sampled every 10 s", s.soak, s.soakRate)
		res, err := runSoak(ctx, c, a, rc, importBody("BENCH_DELIVERY", 10*s.perPage), 10, s.soakRate, s.soak)
		if err != nil {
			return nil, fmt.Errorf("soak: %w", err)
		}
		addSoak(rep, res, s.soak, s.soakRate)
	} else if s.has(1) || s.has(4) {
		rep.note("Worker memory over a long run: not measured in this run (BENCH_SOAK unset).")
	}

	// 2. Ingest of a large CSV, last: its upload stays undelivered (workers
	// stopped) and would otherwise compete with later steps.
	if s.has(2) {
		if err := ingestStep(ctx, c, rc, s, rep); err != nil {
			return nil, fmt.Errorf("step 2: %w", err)
		}
	}
	// 5. Files as users have them: XLSX, and a CSV with a recordFormat.
	if s.has(5) {
		if err := filesStep(ctx, c, rc, s, rep); err != nil {
			return nil, fmt.Errorf("step 5: %w", err)
		}
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	slices.SortStableFunc(rep.rows, func(x, y row) int { return strings.Compare(x.step, y.step) })
	if s.has(1) || s.has(4) {
		rep.note("Workers: HOOKLINE_WORKER_CONCURRENCY=%d each; the bare HTTP baseline runs as many concurrent POSTs as the workers' total concurrency, "+
			"with the same bodies (built once with webhook.AppendBody) and headers, to the same receiver. Everything, the receiver and the load included, shares this machine's CPUs.", s.concurrency)
	}
	rep.note("Whole bench: %.0f s.", time.Since(began).Seconds())
	return rep, nil
}

func ingestStep(ctx context.Context, c *cluster, rc *receiver, s settings, rep *report) error {
	path := filepath.Join(c.dir, "bench.csv")
	progress("step 2: writing a %s-row CSV", num(float64(s.rows)))
	size, err := writeCSV(path, s.rows)
	if err != nil {
		return err
	}
	c.stopWorkers() // delivery does not compete with the import
	if err := c.startIngest(ctx); err != nil {
		return err
	}
	a := newAPI(c.ingestAddr)
	idle, _ := procStatus(c.ingest.pid(), "VmHWM")
	progress("step 2: importing %s (%s) into a fresh ingest process, chunkSize 1000, workers stopped", filepath.Base(path), mb(size))
	waitIdle("step 2")
	var pr *perfRecorder
	if s.perfDir != "" {
		if pr, err = startPerf(filepath.Join(s.perfDir, "ingest-csv")); err != nil {
			return err
		}
	}
	cw := startCPU(c)
	heap := samplePeaks("http://"+c.ingestAddr+"/metrics", 100*time.Millisecond,
		"go_memstats_heap_inuse_bytes", "go_memstats_next_gc_bytes", "go_memstats_sys_bytes")
	start := time.Now()
	acc, err := a.importFile(ctx, "BENCH_INGEST", authValue, path)
	took := time.Since(start)
	peaks := heap.end()
	cpuNote(rep, "step 2 (import)", cw.end())
	if pr != nil {
		if perr := pr.stop([]string{"ingest", "nats-server", "bench"}); perr != nil {
			return perr
		}
		rep.note("perf was recording every CPU during the step 2 import (BENCH_PERF): its figures are lower than without.")
	}
	if err != nil {
		return err
	}
	if acc.TotalRecords != s.rows {
		return fmt.Errorf("import accepted %d records, want %d", acc.TotalRecords, s.rows)
	}
	hwm, err := procStatus(c.ingest.pid(), "VmHWM")
	if err != nil {
		return err
	}
	rss, _ := procStatus(c.ingest.pid(), "VmRSS")
	progress("step 2: baseline: parse + encode in-process")
	waitIdle("the step 2 baseline")
	cw = startCPU(c)
	bstart := time.Now()
	n, encoded, err := parseAndEncode(path, 1000)
	btook := time.Since(bstart)
	cpuNote(rep, "step 2 baseline", cw.end())
	if err != nil {
		return err
	}
	if n != s.rows {
		return fmt.Errorf("baseline read %d records, want %d", n, s.rows)
	}
	rate, brate := float64(s.rows)/took.Seconds(), float64(n)/btook.Seconds()
	ratio := rate / brate
	rep.add(row{"2", fmt.Sprintf("Ingest: %s-row, 10-column CSV (%s), multipart, chunkSize 1000: rows/s until the 202", num(float64(s.rows)), mb(size)),
		num(rate) + " rows/s", num(brate) + " rows/s (pkg/records parse + JSON page + protobuf, in-process)",
		fmt.Sprintf("%.2f", ratio), "≥ 0.50", yesNo(ratio >= 0.5)})
	rep.add(row{"2", fmt.Sprintf("Ingest peak RSS (VmHWM of a fresh ingest process) for the %s-row import", num(float64(s.rows))),
		mb(hwm), "—", "—", "≤ 100 MB (1M rows), same for 10M", rssMet(hwm, s.rows)})
	rep.note("Step 2: %s pages (%s of protobuf) in %.2f s; the baseline took %.2f s. Ingest's VmHWM was %s when idle before the import, VmRSS %s after it; "+
		"sampled every 100 ms from its /metrics, the Go heap in use peaked at %s, the GC goal at %s, memory obtained from the OS at %s. Workers were stopped during this step.",
		num(float64(acc.TotalPages)), mb(encoded), took.Seconds(), btook.Seconds(), mb(idle), mb(rss),
		mb(int64(peaks["go_memstats_heap_inuse_bytes"])), mb(int64(peaks["go_memstats_next_gc_bytes"])), mb(int64(peaks["go_memstats_sys_bytes"])))
	return nil
}

func addSoak(rep *report, res soakResult, d time.Duration, rate int) {
	if len(res.samples) < 4 {
		rep.note("Soak: too few samples (%d).", len(res.samples))
		return
	}
	// Per worker: mean of the samples in the second tenth of the run (after
	// warm-up) against the mean of the last tenth.
	n := len(res.samples)
	early := res.samples[max(n/10, 1):max(n/5, 2)]
	late := res.samples[n-max(n/10, 1):]
	mean := func(ss [][]int64, w int) float64 {
		var t float64
		for _, s := range ss {
			t += float64(s[w])
		}
		return t / float64(len(ss))
	}
	var parts []string
	ok := true
	for w := range res.samples[0] {
		e, l := mean(early, w), mean(late, w)
		var peak int64
		for _, s := range res.samples {
			peak = max(peak, s[w])
		}
		grow := l - e
		if grow > max(0.05*e, 4e6) {
			ok = false
		}
		parts = append(parts, fmt.Sprintf("%s → %s (max %s)", mb(int64(e)), mb(int64(l)), mb(peak)))
	}
	rep.add(row{"soak", fmt.Sprintf("Worker VmRSS over a %s soak (10-page uploads at about %d pages/s, %s pages delivered), early → late", d, rate, num(float64(res.pages))),
		strings.Join(parts, "; "), "—", "—", "no growth (late ≤ early + max(5 %, 4 MB))", yesNo(ok)})
	var line []string
	for i, s := range res.samples {
		var v []string
		for _, x := range s {
			v = append(v, fmt.Sprintf("%.1f", float64(x)/1e6))
		}
		line = append(line, fmt.Sprintf("%.0fs:%s", res.at[i].Seconds(), strings.Join(v, "/")))
	}
	rep.note("Soak: %s uploads; worker VmRSS samples (MB): %s.", num(float64(res.uploads)), strings.Join(line, " "))
}

// cpuNote records where the CPU time of a step went, and warns when other
// processes on the machine took a share large enough to skew the figures.
func cpuNote(rep *report, step string, sh cpuShare) {
	warn := ""
	if sh.other > 0.05 {
		warn = fmt.Sprintf(" **Other processes used %.0f%% of the CPUs: this step's figures are not reliable.**", 100*sh.other)
		progress("WARNING: during %s other processes used %.0f%% of the CPUs", step, 100*sh.other)
	}
	rep.cpu = append(rep.cpu, fmt.Sprintf("%s: %s.%s", step, sh, warn))
}

// rssMet judges the peak RSS against the 100 MB target, which is set for
// files of 1M rows and more.
func rssMet(hwm int64, rows int) string {
	if rows < 1_000_000 {
		return "n/a (target set for 1M rows)"
	}
	return yesNo(hwm <= 100e6)
}
