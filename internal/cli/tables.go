package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Text forms of the answers that are lists of records (devices, an app's
// versions, a rollout's slowest devices): one aligned row per record.
// -o json gives the whole answer.

func table(w io.Writer, header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

func records(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// ago is a time as how long before now, to the second.
func ago(v any) string {
	t, err := time.Parse(time.RFC3339Nano, scalar(v))
	if err != nil {
		return scalar(v)
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func joined(v any) string {
	var parts []string
	for _, x := range v.([]any) {
		parts = append(parts, scalar(x))
	}
	return strings.Join(parts, "; ")
}

func errorsOf(m map[string]any) string {
	if _, ok := m["errors"].([]any); !ok {
		return ""
	}
	return joined(m["errors"])
}

func printDevices(w io.Writer, m map[string]any) {
	tw := table(w, "DEVICE", "GROUP", "HOSTNAME", "APPLIED", "CONVERGED", "LAST SEEN", "STATUS", "ERRORS")
	for _, d := range records(m["devices"]) {
		status := "ok"
		switch {
		case d["silent"] == true:
			status = "silent"
		case d["failure"] != nil && d["failure"] != "":
			status = "failed"
		}
		row(tw, scalar(d["device_id"]), scalar(d["device_group"]), scalar(d["hostname"]), scalar(d["applied_version"]),
			scalar(d["converged_version"]), ago(d["last_seen"]), status, errorsOf(d))
	}
	tw.Flush()
	if last, ok := m["last_id"].(string); ok {
		fmt.Fprintf(w, "more: --last-id %s\n", last)
	}
	incomplete(w, m)
}

// incomplete says when the manager has not folded every device event yet.
func incomplete(w io.Writer, m map[string]any) {
	if m["reports_complete"] == false {
		fmt.Fprintf(w, "incomplete: this manager is still folding device events (%s left)\n", scalar(m["device_events_left"]))
	}
}

func printHistory(w io.Writer, m map[string]any) {
	tw := table(w, "VERSION", "TIME", "ACTOR", "TYPE", "CHANGES")
	for _, v := range records(m["versions"]) {
		changes, _ := v["changes"].(map[string]any)
		fields := make([]string, 0, len(changes))
		for f := range changes {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		var cs []string
		for _, f := range fields {
			c, _ := changes[f].(map[string]any)
			switch {
			case c["to"] == nil:
				// gone with the object: its type says so
			case c["from"] == nil:
				cs = append(cs, f+"="+short(c["to"]))
			default:
				cs = append(cs, f+": "+short(c["from"])+" -> "+short(c["to"]))
			}
		}
		at := scalar(v["time"])
		if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
			at = t.UTC().Format("2006-01-02 15:04:05Z")
		}
		row(tw, scalar(v["version"]), at, scalar(v["actor"]), scalar(v["type"]), strings.Join(cs, ", "))
	}
	tw.Flush()
}

// short is a value in at most 60 characters.
func short(v any) string {
	s := scalar(v)
	if r := []rune(s); len(r) > 60 {
		return string(r[:57]) + "..."
	}
	return s
}

func printRollout(w io.Writer, m map[string]any) {
	fmt.Fprintf(w, "device group %s at version %s: %s devices, %s converged, %s pending, %s failed, %s silent\n",
		scalar(m["device_group"]), scalar(m["device_group_id"]), scalar(m["devices"]), scalar(m["converged"]),
		scalar(m["pending"]), scalar(m["failed"]), scalar(m["silent"]))
	incomplete(w, m)
	if ro, ok := m["rollout"].(map[string]any); ok {
		fmt.Fprintf(w, "rollout of version %s (stable %s): %s, wave %s\n", scalar(ro["target"]), scalar(ro["stable"]), scalar(ro["state"]), scalar(ro["active_wave"]))
		tw := table(w, "WAVE", "PERCENT", "STATE", "DEVICES", "HEALTHY", "PENDING", "FAILED", "SILENT")
		for _, wv := range records(ro["waves"]) {
			row(tw, scalar(wv["wave"]), scalar(wv["percent"])+"%", scalar(wv["state"]), scalar(wv["devices"]), scalar(wv["healthy"]),
				scalar(wv["pending"]), scalar(wv["failed"]), scalar(wv["silent"]))
		}
		tw.Flush()
		if ds := records(ro["decisions"]); len(ds) > 0 {
			fmt.Fprintln(w, "decisions:")
			tw := table(w, "OFFSET", "TIME", "ACTOR", "DECISION", "WAVE", "REASON")
			for _, d := range ds {
				decision := scalar(d["decision"])
				if d["revert"] == true {
					decision += " (revert)"
				}
				row(tw, scalar(d["offset"]), scalar(d["time"]), scalar(d["actor"]), decision, scalar(d["wave"]), scalar(d["reason"]))
			}
			tw.Flush()
		}
	}
	slow := records(m["slowest"])
	if len(slow) == 0 {
		return
	}
	fmt.Fprintln(w, "slowest:")
	tw := table(w, "DEVICE", "HOSTNAME", "STATUS", "APPLIED", "LAST SEEN", "ERRORS")
	for _, d := range slow {
		row(tw, scalar(d["device_id"]), scalar(d["hostname"]), scalar(d["status"]), scalar(d["applied_version"]), ago(d["last_seen"]), errorsOf(d))
	}
	tw.Flush()
}
