package manager_test

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// metricValue reads one unlabelled sample from the manager's /metrics.
func metricValue(t testing.TB, url, name string) int64 {
	t.Helper()
	resp, err := testClient.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + ` (-?\d+)$`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("no %s in /metrics", name)
	}
	v, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return v
}

func TestInfoCacheETagGzipAndLongPoll(t *testing.T) {
	c := newCluster(t)
	api := c.url + "/api/v2"
	call(t, "POST", api+"/apps/web", map[string]any{"docker_image": "nginx"}).expect(t, 200, nil)
	call(t, "POST", api+"/device_groups/edge", map[string]any{"apps": []any{"web"}}).expect(t, 200, nil)
	info := api + "/device_groups/edge/info"

	first := call(t, "GET", info, nil)
	first.expect(t, 200, nil)
	etag := first.header.Get("ETag")
	if etag != `"`+strconv.FormatInt(first.num(t, "device_group_id"), 10)+`"` {
		t.Fatalf("ETag %q is not the group's version %v", etag, first.body["device_group_id"])
	}
	if r := call(t, "GET", info, nil, "If-None-Match", etag); r.status != 304 || len(r.raw) != 0 || r.header.Get("ETag") != etag {
		t.Fatalf("If-None-Match with the current version: %d %q %q", r.status, r.raw, r.header.Get("ETag"))
	}
	if r := call(t, "GET", info, nil, "If-None-Match", `"1", W/`+etag); r.status != 304 {
		t.Fatalf("If-None-Match list with a weak match: %d", r.status)
	}
	if r := call(t, "GET", info, nil, "If-None-Match", `"999999"`); r.status != 200 {
		t.Fatalf("If-None-Match with another version: %d", r.status)
	}
	call(t, "GET", info+"?wait=forever", nil).expect(t, 400, nil)
	call(t, "GET", info+"?wait=10m", nil).expect(t, 400, nil)

	// gzip when asked (the transport would add Accept-Encoding and
	// decompress itself; ask explicitly to see the encoding).
	req, _ := http.NewRequest("GET", info, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	resp.Body.Close()
	var decoded map[string]any
	if err := json.Unmarshal(plain, &decoded); err != nil || decoded["device_group_id"] != first.body["device_group_id"] {
		t.Fatalf("gzipped body %s: %v", plain, err)
	}

	// Many devices polling: the projection is read once per TTL (1 minute
	// here) and per change, not per request.
	reads := metricValue(t, c.url, "nebula_info_backend_reads_total")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for range 25 {
				resp, err := http.Get(info)
				if err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	if got := metricValue(t, c.url, "nebula_info_backend_reads_total") - reads; got > 1 {
		t.Fatalf("500 polls read the projection %d times", got)
	}

	// Long-poll: returns as soon as the version passes the client's.
	type result struct {
		r   response
		dur time.Duration
	}
	done := make(chan result, 1)
	go func() {
		start := time.Now()
		r := call(t, "GET", info+"?wait=20s", nil, "If-None-Match", etag)
		done <- result{r, time.Since(start)}
	}()
	time.Sleep(200 * time.Millisecond)
	call(t, "POST", api+"/apps/web/restart", nil).expect(t, 202, nil)
	select {
	case res := <-done:
		res.r.expect(t, 200, nil)
		if res.r.header.Get("ETag") == etag || res.dur > 10*time.Second {
			t.Fatalf("long-poll answered %s after %v", res.r.header.Get("ETag"), res.dur)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("long-poll did not return after the change")
	}
	// A long-poll for a group that does not exist yet returns when it is
	// created (a device set up before its group), or 403 after the wait.
	created := make(chan response, 1)
	go func() { created <- call(t, "GET", api+"/device_groups/later/info?wait=20s", nil) }()
	time.Sleep(200 * time.Millisecond)
	call(t, "POST", api+"/device_groups/later", map[string]any{"apps": []any{"web"}}).expect(t, 200, nil)
	select {
	case r := <-created:
		r.expect(t, 200, map[string]any{"apps_list": []any{"web"}})
	case <-time.After(15 * time.Second):
		t.Fatal("long-poll on a missing group did not return when it was created")
	}
	call(t, "GET", api+"/device_groups/never/info?wait=200ms", nil).expect(t, 403, map[string]any{"device_group_exists": false})

	// And answers 304 when the wait ends with no change.
	cur := call(t, "GET", info, nil).header.Get("ETag")
	start := time.Now()
	r := call(t, "GET", info+"?wait=300ms", nil, "If-None-Match", cur)
	if r.status != 304 || time.Since(start) < 250*time.Millisecond {
		t.Fatalf("long-poll without change: %d after %v", r.status, time.Since(start))
	}
}
