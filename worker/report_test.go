package worker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestReportQueue: reports that cannot be sent wait on disk (bounded) and
// go, in order, once the manager answers again.
func TestReportQueue(t *testing.T) {
	var mu sync.Mutex
	up := false
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !up {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got = append(got, string(b))
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	a := NewAgent(Config{Group: "g", Manager: srv.URL, StateDir: t.TempDir(), RequestTimeout: time.Second}, nil)
	ctx := context.Background()
	for i := range maxQueuedReports + 5 {
		a.sendReports(ctx, []byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	mu.Lock()
	up = true
	mu.Unlock()
	a.sendReports(ctx, []byte(`{"n":"last"}`))
	if len(got) != maxQueuedReports+1 {
		t.Fatalf("%d reports arrived, want %d (the queue keeps the newest %d)", len(got), maxQueuedReports+1, maxQueuedReports)
	}
	if got[0] != `{"n":5}` || got[len(got)-1] != `{"n":"last"}` {
		t.Fatalf("order: first %s last %s", got[0], got[len(got)-1])
	}
	if q := readQueue(a.cfg.StateDir + "/" + queueFile); len(q) != 0 {
		t.Fatalf("%d reports left in the queue", len(q))
	}
}
