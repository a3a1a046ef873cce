package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// cpuWindow accounts for the machine's CPU time over one step: how much each
// of the bench's processes used, how much stayed idle, and how much went to
// processes that are not the bench's (other work on the machine, which makes
// the figures of that step unreliable).
type cpuWindow struct {
	c           *cluster
	busy, total int64
	procs       map[int]string // pid → name
	ticks       map[int]int64
}

// readStat returns the busy and total ticks of all CPUs (/proc/stat).
func readStat() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected %q", line)
	}
	var v [8]int64
	for i := range v {
		v[i], _ = strconv.ParseInt(f[i+1], 10, 64)
	}
	// user nice system idle iowait irq softirq steal
	busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return busy, busy + v[3] + v[4], nil
}

// procTicks returns utime+stime of a process (/proc/<pid>/stat).
func procTicks(pid int) (int64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return u + st, true
}

// startCPU opens a window over the bench process and the cluster's processes.
func startCPU(c *cluster) *cpuWindow {
	w := &cpuWindow{c: c, procs: map[int]string{}, ticks: map[int]int64{}}
	w.addProcs()
	for pid := range w.procs {
		w.ticks[pid], _ = procTicks(pid)
	}
	w.busy, w.total, _ = readStat()
	return w
}

// addProcs adds the bench and the cluster's running processes; a process
// added after the window opened started within it, from zero ticks.
func (w *cpuWindow) addProcs() {
	w.procs[os.Getpid()] = "bench (load + receiver)"
	for _, p := range append([]*proc{w.c.nats, w.c.redis, w.c.ingest}, w.c.workerProcs()...) {
		if p != nil && !p.exited() {
			name := p.name
			if strings.HasPrefix(name, "worker-") {
				name = "worker"
			}
			w.procs[p.pid()] = name
		}
	}
}

// cpuShare is the outcome of a window, as shares of all CPUs' time.
type cpuShare struct {
	byName map[string]float64
	idle   float64
	other  float64
}

func (w *cpuWindow) end() cpuShare {
	w.addProcs()
	busy, total, _ := readStat()
	dt := float64(total - w.total)
	s := cpuShare{byName: map[string]float64{}}
	if dt <= 0 {
		return s
	}
	var ours int64
	for pid, name := range w.procs {
		t, ok := procTicks(pid)
		if !ok {
			continue
		}
		d := t - w.ticks[pid]
		ours += d
		s.byName[name] += float64(d) / dt
	}
	s.idle = 1 - float64(busy-w.busy)/dt
	s.other = max(float64(busy-w.busy-ours)/dt, 0)
	return s
}

// String reads like "worker 35%, ingest 30%, …, idle 2%, other processes 0%".
func (s cpuShare) String() string {
	type kv struct {
		k string
		v float64
	}
	var xs []kv
	for k, v := range s.byName {
		xs = append(xs, kv{k, v})
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].v > xs[j].v })
	var parts []string
	for _, x := range xs {
		parts = append(parts, fmt.Sprintf("%s %.0f%%", x.k, 100*x.v))
	}
	parts = append(parts, fmt.Sprintf("idle %.0f%%", 100*s.idle), fmt.Sprintf("other processes %.0f%%", 100*s.other))
	return strings.Join(parts, ", ")
}

// idleWait is how long waitIdle may wait for the machine to be quiet
// (BENCH_IDLE_WAIT, default 90s; 0 disables the wait).
var idleWait = 90 * time.Second

// waitIdle waits, up to idleWait, until the CPUs are at least 85% idle over
// half a second, so that a measured step does not start while other work
// (a build, a test suite) is running on the machine. The bench's own
// processes are idle when it is called.
func waitIdle(what string) {
	if idleWait <= 0 {
		return
	}
	deadline := time.Now().Add(idleWait)
	said := false
	for {
		b0, t0, err := readStat()
		if err != nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
		b1, t1, _ := readStat()
		busy := 0.0
		if t1 > t0 {
			busy = float64(b1-b0) / float64(t1-t0)
		}
		if busy < 0.15 {
			if said {
				progress("  the machine is quiet again")
			}
			return
		}
		if time.Now().After(deadline) {
			progress("  WARNING: the machine is still %.0f%% busy with other work; measuring %s anyway", 100*busy, what)
			return
		}
		if !said {
			progress("  the machine is %.0f%% busy with other work: waiting up to %s before %s", 100*busy, idleWait, what)
			said = true
		}
	}
}
