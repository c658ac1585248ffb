package kafkalog_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
)

// brokerSetup starts a broker and returns its address.
type brokerSetup func(t *testing.T) string

func inProcess(t *testing.T) string { return testenv.StartBroker(t, t.TempDir()).Addr() }

var listening = regexp.MustCompile(`broker listening on (\S+)`)

func separateProcess(t *testing.T) string {
	p := testenv.Start(t, nil, "kafka", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	return p.WaitLine(t, listening, 30*time.Second)[1]
}

// TestConformance runs the same suite against every way of running the
// broker: in-process and as the `nebula kafka` process.
func TestConformance(t *testing.T) {
	for name, setup := range map[string]brokerSetup{"in-process": inProcess, "nebula-kafka-process": separateProcess} {
		t.Run(name, func(t *testing.T) {
			t.Run("offsets increase", func(t *testing.T) { testOffsetsIncrease(t, setup(t)) })
			t.Run("read from exact offset", func(t *testing.T) { testReadFrom(t, setup(t)) })
			t.Run("out of range never rewinds", func(t *testing.T) { testOutOfRange(t, setup(t)) })
			t.Run("bootstrap", func(t *testing.T) { testBootstrap(t, setup(t)) })
		})
	}
}

func open(t *testing.T, addr, topic string) *kafkalog.Log {
	t.Helper()
	l, err := kafkalog.Open(testenv.Context(t, 30*time.Second), kafkalog.Config{Brokers: []string{addr}, Topic: topic, ProduceTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open log at %s: %v", addr, err)
	}
	t.Cleanup(l.Close)
	return l
}

func appEvent(name, cmd string) events.Envelope {
	return events.Envelope{
		Type: events.AppRestarted, Aggregate: events.Aggregate{Kind: events.KindApp, Name: name},
		Actor: "test", CommandID: cmd, Time: time.Now(), Payload: events.AppRestartedV{},
	}
}

func testOffsetsIncrease(t *testing.T, addr string) {
	a, b := open(t, addr, "events"), open(t, addr, "events")
	ctx := testenv.Context(t, 60*time.Second)
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for w, l := range []*kafkalog.Log{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := int64(-1)
			for i := range 100 {
				off, err := l.Append(ctx, appEvent("web", fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				if off <= last {
					t.Errorf("writer %d: offset %d after %d", w, off, last)
				}
				last = off
				mu.Lock()
				if seen[off] {
					t.Errorf("offset %d returned twice", off)
				}
				seen[off] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	offs, err := a.AppendBatch(ctx, []events.Envelope{appEvent("a", "b1"), appEvent("b", "b2"), appEvent("c", "b3")})
	if err != nil {
		t.Fatal(err)
	}
	if offs[0] != 200 || offs[1] != 201 || offs[2] != 202 {
		t.Fatalf("batch offsets %v, want 200..202 after 200 appends", offs)
	}
	if len(seen) != 200 {
		t.Fatalf("%d distinct offsets, want 200", len(seen))
	}
	if _, end, err := a.Bounds(ctx); err != nil || end != 203 {
		t.Fatalf("end offset %d (%v), want 203", end, err)
	}
}

func testReadFrom(t *testing.T, addr string) {
	l := open(t, addr, "events")
	ctx := testenv.Context(t, 60*time.Second)
	for i := range 10 {
		if _, err := l.Append(ctx, appEvent("web", fmt.Sprintf("c%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	r, err := l.NewReader(4)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got []events.Record
	for len(got) < 6 {
		recs, err := r.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		got = append(got, recs...)
	}
	for i, rec := range got {
		want := int64(4 + i)
		if rec.Offset != want || rec.CommandID != fmt.Sprintf("c%d", want) {
			t.Fatalf("record %d: offset %d command %q, want %d c%d", i, rec.Offset, rec.CommandID, want, want)
		}
		env, err := events.Decode(rec.Value)
		if err != nil || env.CommandID != rec.CommandID {
			t.Fatalf("record %d decodes to %+v, %v", i, env, err)
		}
	}
	// The reader then waits for new records instead of ending.
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if recs, err := r.Fetch(short); len(recs) != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fetch at the end: %d records, %v", len(recs), err)
	}
}

func testOutOfRange(t *testing.T, addr string) {
	l := open(t, addr, "events")
	ctx := testenv.Context(t, 30*time.Second)
	for i := range 3 {
		if _, err := l.Append(ctx, appEvent("web", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	r, err := l.NewReader(10) // past the end: the log lost records we had
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	recs, err := r.Fetch(ctx)
	if !errors.Is(err, kafkalog.ErrOffsetOutOfRange) {
		t.Fatalf("fetch past the end = %d records, %v; want ErrOffsetOutOfRange", len(recs), err)
	}
}

func testBootstrap(t *testing.T, addr string) {
	ctx := testenv.Context(t, 30*time.Second)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	// A topic someone created with finite retention gets it repaired.
	if _, err := adm.CreateTopic(ctx, 1, -1, map[string]*string{"retention.ms": kadm.StringPtr("60000")}, "finite"); err != nil {
		t.Fatal(err)
	}
	open(t, addr, "finite")
	open(t, addr, "fresh")
	for _, topic := range []string{"finite", "fresh"} {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := rcs.On(topic, nil)
		got := map[string]string{}
		for _, c := range rc.Configs {
			got[c.Key] = c.MaybeValue()
		}
		if got["retention.ms"] != "-1" || got["retention.bytes"] != "-1" {
			t.Errorf("topic %s: retention.ms=%q retention.bytes=%q, want -1 -1", topic, got["retention.ms"], got["retention.bytes"])
		}
	}
	// A multi-partition topic would lose the total order: refuse it.
	if _, err := adm.CreateTopic(ctx, 3, -1, nil, "wide"); err != nil {
		t.Fatal(err)
	}
	if _, err := kafkalog.Open(ctx, kafkalog.Config{Brokers: []string{addr}, Topic: "wide"}); err == nil {
		t.Fatal("Open accepted a 3-partition event topic")
	}
	// Identity is stable across clients and names the topic incarnation.
	a, b := open(t, addr, "fresh"), open(t, addr, "fresh")
	ia, err := a.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ib, _ := b.Identity(ctx)
	if ia != ib || ia.ClusterID == "" || ia.TopicID == "" || ia.TopicID == (kadm.TopicID{}).String() {
		t.Fatalf("identities %+v and %+v", ia, ib)
	}
}

// TestSurvivesKill appends to `nebula kafka`, kills it with SIGKILL,
// restarts it on the same data directory and finds every record, with the
// next append continuing the offsets.
func TestSurvivesKill(t *testing.T) {
	dir := t.TempDir()
	p := testenv.Start(t, nil, "kafka", "--listen", "127.0.0.1:0", "--data-dir", dir)
	addr := p.WaitLine(t, listening, 30*time.Second)[1]
	l := open(t, addr, "events")
	ctx := testenv.Context(t, 60*time.Second)
	before, _ := l.Identity(ctx)
	const n = 500
	for i := range n {
		if _, err := l.Append(ctx, appEvent("web", fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	p.Kill()

	p2 := testenv.Start(t, nil, "kafka", "--listen", addr, "--data-dir", dir)
	p2.WaitLine(t, listening, 30*time.Second)
	l2 := open(t, addr, "events")
	after, err := l2.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Fatalf("identity changed across a restart: %+v -> %+v", before, after)
	}
	off, err := l2.Append(ctx, appEvent("web", "after"))
	if err != nil {
		t.Fatal(err)
	}
	if off != n {
		t.Fatalf("first append after kill -9 got offset %d, want %d", off, n)
	}
	r, err := l2.NewReader(0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	count := 0
	for count < n+1 {
		recs, err := r.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if rec.Offset != int64(count) {
				t.Fatalf("record %d has offset %d", count, rec.Offset)
			}
			count++
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	bad := kafkalog.Config{
		Brokers: []string{"nohost"},
		TLS:     kafkalog.TLSConfig{CertFile: "c.pem"},
		SASL:    kafkalog.SASLConfig{Mechanism: "GSSAPI"},
	}
	err := bad.Validate()
	for _, want := range []string{"not host:port", "certificate and key", "TLS is not enabled", "GSSAPI"} {
		if err == nil || !regexp.MustCompile(regexp.QuoteMeta(want)).MatchString(err.Error()) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	good := kafkalog.Config{Brokers: []string{"a:9092", "b:9093"}, SASL: kafkalog.SASLConfig{Mechanism: kafkalog.SASLScramSHA512, User: "u", Password: "p"}}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}
