package main

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "results.jsonl")
	rows := `{"section":"info","label":"200 at 100 connections","values":{"nebula_rps":30000,"nginx_rps":36000,"bare_Go_rps":33000,"vs_nginx":0.833}}
{"section":"info","label":"304 at 100 connections","values":{"nebula_rps":33000,"nginx_rps":40000,"bare_Go_rps":35000,"vs_nginx":0.825}}
{"section":"replay","label":"rebuild from 1000 events","values":{"events":1000,"replay_per_s":25000,"raw_consume_per_s":1000000,"replay_vs_raw":0.025}}
`
	if err := os.WriteFile(in, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "docs")
	if err := run(in, out); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(out, "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| 200 at 100 connections |30000|36000|33000|0.833|", "| rebuild from 1000 events |1000|25000|1000000|0.025|",
		"![requests/s](bench/info.svg)", "_Not measured in this run._"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("benchmarks.md lacks %q:\n%s", want, md)
		}
	}
	svg, err := os.ReadFile(filepath.Join(out, "bench", "info.svg"))
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(string(svg)))
	rects := 0
	for {
		tok, err := d.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "rect" {
			rects++
		}
	}
	if rects < 1+6 { // background, 2 rows x 3 series
		t.Errorf("info.svg has %d rects:\n%s", rects, svg)
	}

	// Bad input: a clear error, nothing written.
	if err := os.WriteFile(in, []byte(rows+"{broken\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(in, filepath.Join(dir, "other")); err == nil || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("broken line: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "other", "benchmarks.md")); err == nil {
		t.Fatal("benchmarks.md written from a broken file")
	}
}
