package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// row is one line of the results table.
type row struct {
	step, figure, hookline, baseline, ratio, target, met string
}

// report collects the table and the notes under it.
type report struct {
	title string
	rev   string
	rows  []row
	notes []string
	cpu   []string // CPU split per step
}

func (r *report) add(x row) { r.rows = append(r.rows, x) }
func (r *report) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func machine() string {
	return fmt.Sprintf("%d cores (%s), %s %s/%s, %s", runtime.NumCPU(), cpuModel(), runtime.Version(),
		runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
}

// revision names the commit the services were built from, and whether the
// work tree had uncommitted changes to tracked files.
func revision(root string) string {
	out, err := exec.Command("git", "-C", root, "--no-optional-locks", "rev-parse", "--short", "HEAD").Output() // #nosec G204 -- git in the repository the bench runs in
	if err != nil {
		return "unknown commit"
	}
	rev := "commit " + strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", root, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no").Output() // #nosec G204 -- see above
	if err == nil && len(bytes.TrimSpace(st)) > 0 {
		rev += " plus uncommitted changes"
	}
	return rev
}

// markdown renders the report: title, machine line, table, notes.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", r.title)
	fmt.Fprintf(&b, "Machine: %s. Services built from %s.\n\n", machine(), r.rev)
	b.WriteString("| # | Figure | hookline | Baseline | Ratio | Target | Met |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, x := range r.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", x.step, x.figure, x.hookline, x.baseline, x.ratio, x.target, x.met)
	}
	if len(r.notes) > 0 {
		b.WriteString("\n")
		for _, n := range r.notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	if len(r.cpu) > 0 {
		b.WriteString("\nShare of the machine's CPU time (all cores) during each step, from /proc:\n\n")
		for _, n := range r.cpu {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// writeDoc puts the report into path between the markers of section key,
// replacing what was there; other sections and the text around them stay.
func writeDoc(path, key, body string) error {
	begin := "<!-- BEGIN bench:" + key + " (written by scripts/bench) -->"
	end := "<!-- END bench:" + key + " -->"
	block := begin + "\n" + body + end
	old, err := os.ReadFile(path) // #nosec G304 -- docs/benchmarks.md or the BENCH_DOC its user chose
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + block + s[j+len(end):]
	case s == "":
		s = "# Benchmarks\n\n" + block + "\n"
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + block + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644) // #nosec G306 G703 -- a document of the repository, readable like the others
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// num formats n with thousands separators.
func num(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func mb(n int64) string {
	if n >= 1e9 {
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
