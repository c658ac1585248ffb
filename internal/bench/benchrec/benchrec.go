// Package benchrec records benchmark results, one JSON line each, in
// $NEBULA_BENCH_OUT/results.jsonl (nothing when it is unset), for
// cmd/benchreport to turn into docs/benchmarks.md and its charts.
package benchrec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Row is one measured configuration of a section (e.g. "/info 200 at 1k
// connections"): its label and named values.
type Row struct {
	Section string             `json:"section"`
	Label   string             `json:"label"`
	Values  map[string]float64 `json:"values"`
}

// Record appends a row; it fails the benchmark if it cannot.
func Record(tb testing.TB, section, label string, values map[string]float64) {
	tb.Helper()
	dir := os.Getenv("NEBULA_BENCH_OUT")
	if dir == "" {
		return
	}
	b, err := json.Marshal(Row{Section: section, Label: label, Values: values})
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "results.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(b, '\n')); err != nil {
		tb.Fatal(err)
	}
}
