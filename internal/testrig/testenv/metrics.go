package testenv

import (
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"
)

func scrape(tb testing.TB, baseURL string) []byte {
	tb.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(baseURL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// Metric reads one unlabelled sample of a manager's /metrics.
func Metric(tb testing.TB, baseURL, name string) float64 {
	tb.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(scrape(tb, baseURL))
	if m == nil {
		tb.Fatalf("no %s in /metrics", name)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// Histogram reads a histogram of a manager's /metrics: its bucket bounds
// (+Inf last) and cumulative counts.
func Histogram(tb testing.TB, baseURL, name string) (bounds, counts []float64) {
	tb.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `_bucket\{le="([^"]+)"\} (\S+)$`)
	for _, m := range re.FindAllSubmatch(scrape(tb, baseURL), -1) {
		le := math.Inf(1)
		if string(m[1]) != "+Inf" {
			le, _ = strconv.ParseFloat(string(m[1]), 64)
		}
		n, _ := strconv.ParseFloat(string(m[2]), 64)
		bounds, counts = append(bounds, le), append(counts, n)
	}
	if len(bounds) == 0 {
		tb.Fatalf("no histogram %s in /metrics", name)
	}
	return bounds, counts
}

// Quantile is the smallest bucket bound under which the share q of the
// observations between two readings of a histogram fell.
func Quantile(bounds, before, after []float64, q float64) float64 {
	total := after[len(after)-1] - before[len(before)-1]
	for i := range bounds {
		if after[i]-before[i] >= q*total {
			return bounds[i]
		}
	}
	return math.Inf(1)
}
