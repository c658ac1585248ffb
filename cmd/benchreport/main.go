// Command benchreport turns the rows `make bench` recorded
// (NEBULA_BENCH_OUT/results.jsonl, see internal/bench/benchrec) into
// docs/benchmarks.md and SVG charts next to it.
//
//	benchreport -in bench-out/results.jsonl -out docs
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

type row struct {
	Section string             `json:"section"`
	Label   string             `json:"label"`
	Values  map[string]float64 `json:"values"`
}

// section says how one benchmark's rows are shown.
type section struct {
	id, title, text string
	cols            []string // table columns, in order
	chart           []string // series of the bar chart (none: no chart)
	chartTitle      string
}

var sections = []section{
	{id: "info_wrk", title: "1. `/info` under wrk: the manager vs nginx vs a bare Go handler",
		text: "`BenchmarkInfoWrk` (`internal/bench/fleetbench`): GET of a device group's config (3 apps) measured by Debian's `wrk` " +
			"(C, one thread: a load generator nobody here wrote), the median of three rounds of 3 s per server and row (this machine drifts), 200 and 304 (If-None-Match), 100 and 1,000 keep-alive " +
			"connections, a device's credentials as Bearer (its token) and Basic (its user's password), checked on every request by " +
			"the manager (`nebula manager`). nginx (Debian's nginx-light, one worker: wrk takes the other core) serves the same " +
			"bytes as a static file; the bare Go handler writes them from memory, in net/http configured as the manager's listener " +
			"is (`manager.HTTPServer`: the read, write and idle timeouts a server facing devices needs; net/http without them served " +
			"about 6% more 304s under wrk, a margin no deployed server gets): it is how far Go's net/http itself goes on this " +
			"machine. Each server is its own process. Target (issue 21): >= 0.8x nginx.",
		cols:  []string{"nebula_rps", "nginx_rps", "bare_Go_rps", "vs_nginx", "vs_bare_go", "nebula_p99_ms", "nginx_p99_ms", "bare_Go_p99_ms"},
		chart: []string{"nebula_rps", "nginx_rps", "bare_Go_rps"}, chartTitle: "requests/s (wrk)"},
	{id: "info", title: "1b. `/info` at 10,000 connections (our Go load generator)",
		text: "`BenchmarkInfoVsNginx` (`internal/bench/fleetbench`): the same GET over 10,000 keep-alive " +
			"connections for 3 s, 200 and 304 (If-None-Match), against the same three servers (nginx with 2 workers here). The load " +
			"generator is the project's own (Go, same machine, `internal/bench/loadgen`): it takes a large share of the 2 cores, which " +
			"compresses the differences, so section 1 is the headline; this one shows 10,000 connections held.",
		cols:  []string{"nebula_rps", "nginx_rps", "bare_Go_rps", "vs_nginx", "vs_bare_go", "nebula_p99_ms", "nginx_p99_ms", "bare_Go_p99_ms"},
		chart: []string{"nebula_rps", "nginx_rps", "bare_Go_rps"}, chartTitle: "requests/s"},
	{id: "polls", title: "2. Fleet poll load and plain-polling fan-out",
		text: "`BenchmarkFleetPolls` (`internal/bench/fleetbench`): simulated devices (`nebula sim`'s code: the real worker over an " +
			"in-memory engine) polling plainly every 30 s (2.7's way) through 256 shared connections, against `nebula manager` in its " +
			"own process (the broker is another). Measured over 30 s of steady state: `manager_p99_ms` is " +
			"the bucket of the manager's own request-duration histogram under which 99% of requests fell (0.5 ms is its smallest); `poll_p99_ms` is seen " +
			"by the simulated devices and includes the simulator's own scheduling (100,000 goroutines on the same 2 cores). Then one API call " +
			"and the time until 50/99/100% of the devices applied it (bounded by the check-in time). Projection reads stay at " +
			"groups/CACHE_TIME (1 group / 10 s) whatever the number of devices.",
		cols:  []string{"devices", "polls_per_s", "manager_cpu_pct", "manager_rss_mb", "manager_p99_ms", "poll_p99_ms", "projection_reads_s", "fanout_50_s", "fanout_99_s", "fanout_100_s"},
		chart: []string{"manager_cpu_pct", "manager_rss_mb"}, chartTitle: "manager CPU % and RSS MB"},
	{id: "fanout", title: "3. Fan-out with long-poll",
		text: "One API call, then the time until 50%, 99% and 100% of the simulated devices (each holding a long-poll) applied " +
			"the new version. 10,000 devices on one manager: `BenchmarkFanout` (`worker/sim`); target: 99% within 2 s. " +
			"100,000 devices: `BenchmarkFanoutScaleOut` (`internal/bench/fleetbench`): a process may hold 20,000 files on this machine " +
			"(a hard limit it cannot raise), so 100,000 open long-polls take several managers, as a deployment would run them: " +
			"6 managers on one broker, 6 simulator processes (`nebula sim`) of 16,667 devices each; the change goes through " +
			"manager 1 and the others fold it from the log. All of it shares the 2 cores, and the 100,000 simulated devices take " +
			"most of them (each wakes, decodes the config, reconciles its in-memory engine and polls again): at this size the " +
			"numbers are those of the machine, not of the managers (one manager serves 10,000 in about a second). Plain polling: section 2.",
		cols: []string{"devices", "managers", "p50_s", "p99_s", "all_s"}, chart: []string{"p50_s", "p99_s", "all_s"}, chartTitle: "seconds after the API call"},
	{id: "commands", title: "4. Commands through the HTTP API",
		text: "`BenchmarkCommands` (`internal/bench/fleetbench`): a burst of 100,000 commands from 16 clients updating apps through " +
			"the API; each answer comes after the event is appended and folded (read-your-writes). Baseline: appends of the same events " +
			"straight to the log with the same concurrency, in the same run. `peak_rss_mb` is the manager's highest resident memory " +
			"(VmHWM) by the burst's end (target, issue 21: under 256 MB); `idle_rss_mb` is its peak before the burst.",
		cols:  []string{"clients", "commands", "commands_per_s", "p50_ms", "p99_ms", "raw_appends_per_s", "vs_raw", "peak_rss_mb", "peak_anon_mb", "idle_rss_mb"},
		chart: []string{"commands_per_s", "raw_appends_per_s"}, chartTitle: "per second"},
	{id: "replay", title: "5. Replay: rebuilding the projection from the log",
		text: "`BenchmarkReplay` (`projections`): a full rebuild of the projection (decode, fold, Badger) from the event log, " +
			"next to a raw consume of the same log (the same reader, doing nothing with the records), for two logs: creates " +
			"of distinct apps, and a fleet's mix (patches, stops, group changes, command IDs). Target (issue 20): above 100,000 " +
			"events/s for the mix (issue 2's 0.5x of a raw consume is dropped: see the note below the table). `decode_only_vs_raw` " +
			"is reading ahead alone, in the same run: fetch, decode and validate, hash chain, with nothing folded or stored. " +
			"`cpu_us_per_event` is the process's CPU time (both cores: fold, Badger, the in-process broker) over the rebuild per event, " +
			"`allocs_per_event` its heap allocations per event: they move less than the rate with the VM's speed. Each log is " +
			"rebuilt `rebuilds` times, each into an empty store: the row is the median rebuild, `replay_min_per_s` and " +
			"`replay_max_per_s` the slowest and the fastest (the VM's speed drifts from minute to minute).",
		cols:  []string{"events", "replay_per_s", "raw_consume_per_s", "replay_vs_raw", "decode_only_vs_raw", "cpu_us_per_event", "allocs_per_event", "rebuilds", "replay_min_per_s", "replay_max_per_s"},
		chart: []string{"replay_per_s", "raw_consume_per_s"}, chartTitle: "events/s"},
	{id: "memory", title: "6. Memory",
		text: "`BenchmarkReportsMemory` (`internal/bench/fleetbench`): the manager's resident memory (`nebula manager` alone, its broker " +
			"in another process) with 0, 100,000 and 200,000 devices known to the reports projection (one report each), split " +
			"into anonymous memory (Go heap: mostly Badger's memtables and table builders, bounded by configuration) and file-backed " +
			"pages (Badger's tables, mapped: page cache the kernel reclaims under pressure). What a device costs is the growth over " +
			"the second 100,000. The reports (about 2.5 KB: five apps and their containers) are produced to the device events " +
			"topic as fast as the broker takes them: `folded_per_s_*` is each 100,000 over the time from the first produced to the " +
			"last stored, `peak_anon_mb` the manager's highest anonymous memory through the flood (sampled; target, issue 21: under " +
			"256 MB), and `peak_rss_mb` its highest resident memory (VmHWM), which also counts the pages of the files Badger maps. " +
			"Worker RSS from `BenchmarkWorker` (section 9).",
		cols: []string{"anon_0_mb", "anon_100k_mb", "anon_200k_mb", "anon_mb_per_100k_devices", "file_0_mb", "file_200k_mb", "file_mb_per_100k_devices",
			"folded_per_s_first_100k", "folded_per_s_second_100k", "peak_anon_mb", "peak_rss_mb"}},
	{id: "append", title: "7. Appends", text: "`BenchmarkAppend` (`events/kafkalog`): events appended to the embedded broker.",
		cols: []string{"one_at_a_time_per_s", "batched_per_s", "batched_vs_one"}},
	{id: "applied", title: "8. Append to applied", text: "`BenchmarkAppendToApplied` (`projections`): from an append to the fold having applied it. Target: p99 < 5 ms.",
		cols: []string{"p50_ms", "p99_ms", "max_ms"}},
	{id: "worker", title: "9. Worker", text: "`BenchmarkWorker` (`cmd/nebula`): a config change to 20 running containers under `nebula worker` vs the same containers with `docker run -d` in parallel; the worker's RSS at rest, as `nebula worker` and as the device agent's build (`make agent`: `nebula-agent worker`, the worker alone) restarted on the same device (target: under 25 MB).",
		cols: []string{"docker_run_s", "worker_s", "worker_vs_docker_run", "worker_rss_mb", "agent_rss_mb"}},
	{id: "reports", title: "10. Reports", text: "`BenchmarkReports` (`manager`): reports posted over HTTP until queryable, next to raw produce to the same broker.",
		cols: []string{"end_to_end_per_s", "raw_produce_per_s", "end_to_end_vs_raw"}},
	{id: "rollouts", title: "11. Safe rollouts", text: "`BenchmarkSafeRollout` (`internal/bench/fleetbench`): simulated devices (1 in 100 " +
		"labelled canary) long-polling `nebula manager` (a `nebula reporter` and the broker in their own processes), reporting every 10 s " +
		"and after each change, on a group with 4 waves (1, 10, 50, 100%) and `min_healthy_time` 2 s. A good version: API call to " +
		"completion (`good_complete_s`) against the sum of the waves' minimum healthy times (`min_healthy_sum_s`, no rollout can be " +
		"faster). A bad version (its containers exit): from the failures crossing the threshold, as GET .../rollout first shows them, " +
		"to a canary being served the stable version again (`revert_after_cross_ms`, target < 1 s; polled every 20 ms), and the " +
		"devices it was served to (the waves active at the abort: the canaries and the first wave's 1%).",
		cols: []string{"devices", "good_complete_s", "min_healthy_sum_s", "good_vs_baseline", "revert_after_cross_ms", "bad_served_devices", "canary_devices", "first_wave_devices"}},
	{id: "history", title: "12. Audit reads as the log grows", text: "`BenchmarkHistory` (`manager`): a fleet's log (2,000 apps, " +
		"200 groups, patches, restarts, group changes, deletes and re-creates) of 10,000 and 1,000,000 events, folded by a manager " +
		"(`testmanager`, the broker in the same process); a device of the group reports the group's last 50 versions. After 5 s for " +
		"the store's compactions and 50 reads of warm-up, each read is timed 1,000 times over HTTP, one at a time, on both logs in turn " +
		"(both served at once, so that the machine's drift weighs on both alike). `p99_vs_smallest_log` is each p99 against the same read's on the 10,000-event log " +
		"(target: under 2, and every p99 under 50 ms).",
		cols: []string{"events", "p50_ms", "p99_ms", "p99_vs_smallest_log"}},
	{id: "console", title: "13. The web console's device group page", text: "`BenchmarkGroupStanding` (`manager`): computing where a " +
		"group's devices stand (what its page and the page's live part show) from the report store's counters on disk, at 1,000, 10,000 and " +
		"100,000 devices in the group, against the baseline of the same answer from the group's whole inventory (how it was computed " +
		"before the counters), in the same run. Target (issue 19): every page under 50 ms at 100,000 devices.",
		cols: []string{"devices", "ms_per_page", "ms_inventory_read", "x_faster"}},
	{id: "heartbeats", title: "14. A fleet's steady state: heartbeats", text: "`BenchmarkHeartbeats` (`projections/reports`): 100,000 " +
		"devices send a full report each (about 2.5 KB), then two heartbeats (nothing changed: identity, applied version) 30 s apart; " +
		"the report store (on disk) folds them in fetches of 5,000. Baseline, same run: a second full report from every device. " +
		"Target (issue 21): >= 50,000 steady-state device events folded per second; `devices_at_30s_one_manager` is how many " +
		"devices heartbeating every 30 s that rate keeps up with.",
		cols: []string{"devices", "heartbeats_per_s", "full_reports_per_s", "vs_full_reports", "devices_at_30s_one_manager"}},
}

func main() {
	in := flag.String("in", "bench-out/results.jsonl", "rows recorded by make bench")
	out := flag.String("out", "docs", "directory of benchmarks.md (charts go to OUT/bench/)")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	rows, err := readRows(in)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("%s has no rows: run `make bench`", in)
	}
	if err := os.MkdirAll(filepath.Join(out, "bench"), 0o755); err != nil {
		return err
	}
	var md strings.Builder
	fmt.Fprintf(&md, "# Benchmarks\n\nWritten by `make bench` on %s (do not edit: run it again). Machine: %s.\n\n",
		time.Now().UTC().Format("2006-01-02"), machine())
	fmt.Fprintf(&md, "Every number comes with the command that measures it and, where there is one, a baseline measured in the same run.\n\n")
	for _, s := range sections {
		var rs []row
		for _, r := range rows {
			if r.Section == s.id {
				rs = append(rs, r)
			}
		}
		fmt.Fprintf(&md, "## %s\n\n%s\n\n", s.title, s.text)
		if len(rs) == 0 {
			fmt.Fprintf(&md, "_Not measured in this run._\n\n")
			continue
		}
		table(&md, s, rs)
		if s.id == "replay" {
			md.WriteString("A raw consume costs about 0.5 µs of CPU per record (batches the broker holds in memory); a replay " +
				"decodes and validates each event, chains its hash, folds it (sequentially: state lookups, documents, every " +
				"version kept, verdicts) and commits it to Badger, so a ratio to the raw consume says little, and issue 20 " +
				"dropped it. Its target is the mix's events per second; the fold and the commit each take most of a core. " +
				"[projections.md](projections.md) has the breakdown and how the applier pipelines it.\n\n")
		}
		if len(s.chart) > 0 {
			name := s.id + ".svg"
			if err := os.WriteFile(filepath.Join(out, "bench", name), []byte(barChart(s.chartTitle, s.chart, rs)), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(&md, "![%s](bench/%s)\n\n", s.chartTitle, name)
		}
	}
	return os.WriteFile(filepath.Join(out, "benchmarks.md"), []byte(md.String()), 0o644)
}

func readRows(path string) ([]row, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		var r row
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, n, err)
		}
		if r.Section == "" || r.Label == "" {
			return nil, fmt.Errorf("%s line %d: no section or label", path, n)
		}
		rows = append(rows, r)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return rows, nil
}

func table(w io.Writer, s section, rs []row) {
	cols := s.cols
	fmt.Fprintf(w, "| |%s|\n|---|%s\n", strings.Join(cols, "|"), strings.Repeat("---:|", len(cols)))
	for _, r := range rs {
		cells := make([]string, len(cols))
		for i, c := range cols {
			if v, ok := r.Values[c]; ok {
				cells[i] = format(v)
			}
		}
		fmt.Fprintf(w, "| %s |%s|\n", r.Label, strings.Join(cells, "|"))
	}
	fmt.Fprintln(w)
}

func format(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

var palette = []string{"#3b6ea8", "#d1822f", "#5b9e55", "#a04a6b"}

// barChart draws one group of bars per row, one bar per series.
func barChart(title string, series []string, rs []row) string {
	const width, height, left, bottom, top = 760, 340, 70, 90, 40
	plotW, plotH := float64(width-left-20), float64(height-bottom-top)
	maxV := 0.0
	for _, r := range rs {
		for _, s := range series {
			maxV = max(maxV, r.Values[s])
		}
	}
	if maxV == 0 {
		maxV = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="20" font-size="14">%s</text>`+"\n", left, html.EscapeString(title))
	for i := 0; i <= 4; i++ {
		y := float64(top) + plotH - plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, y, width-20, y, left-5, y+4, format(maxV*float64(i)/4))
	}
	group := plotW / float64(len(rs))
	bar := group * 0.8 / float64(len(series))
	for gi, r := range rs {
		x0 := float64(left) + group*float64(gi) + group*0.1
		for si, s := range series {
			h := plotH * r.Values[s] / maxV
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>`+"\n",
				x0+bar*float64(si), float64(top)+plotH-h, bar-1, h, palette[si%len(palette)], html.EscapeString(r.Label), s, format(r.Values[s]))
		}
		// Slanted, so that long labels of neighbouring groups do not overlap.
		lx, ly := x0+group*0.4, height-bottom+14
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="end" transform="rotate(-12 %.1f %d)">%s</text>`+"\n", lx, ly, lx, ly, html.EscapeString(r.Label))
	}
	for si, s := range series {
		x := left + si*170
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x, height-25, palette[si%len(palette)], x+14, height-16, html.EscapeString(s))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

// machine describes where the numbers were measured.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB", kb/1024/1024)
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s, %s/%s", runtime.NumCPU(), model, mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
