// Package kafkalog is the event log on Kafka: topic bootstrap, Append
// returning the record offset (the version of whatever the event changed),
// and readers from an exact offset that never silently rewind. It is the
// only code that speaks the Kafka protocol for the event log.
package kafkalog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/signing"
)

// HeaderCommandID is the record header carrying the envelope's command ID,
// so that de-duplication and tools need not decode the value.
const HeaderCommandID = "nebula-command-id"

var (
	// ErrUnavailable: the log could not be reached in time. Nothing is
	// known to have been appended (the caller may retry with the same
	// command ID; the fold discards the duplicate). It reports
	// Temporary() true, so callers can recognise it without importing
	// this package.
	ErrUnavailable error = unavailable{}
	// ErrOffsetOutOfRange: a reader asked for an offset the log does not
	// hold (past its end: the log was wiped; before its start: records
	// were deleted). Readers never rewind on their own.
	ErrOffsetOutOfRange = errors.New("offset out of range of the event log")
)

type unavailable struct{}

func (unavailable) Error() string   { return "event log unavailable" }
func (unavailable) Temporary() bool { return true }

// Log appends to and reads the event topic. It is safe for concurrent use.
type Log struct {
	cfg Config
	cl  *kgo.Client
	adm *kadm.Client
	// lastFailure is the last append that failed (nil: none since the
	// last one that worked).
	lastFailure atomic.Pointer[appendFailure]
}

type appendFailure struct {
	at  time.Time
	err error
}

// WritableWindow is how long a failed append makes Writable report the log
// as not writable (unless an append works meanwhile): long enough for a
// health check to see it, short enough that a manager taken out of a load
// balancer's rotation, which gets no more writes to try, comes back.
const WritableWindow = 30 * time.Second

// Writable reports the last append's failure, if it failed within
// WritableWindow and none has worked since. Reads (Bounds) can work while
// appends fail: franz-go produces on connections of its own.
func (l *Log) Writable() error {
	f := l.lastFailure.Load()
	if f == nil || time.Since(f.at) > WritableWindow {
		return nil
	}
	return f.err
}

// Open connects to the brokers and bootstraps the event topic: created if
// missing with one partition (total order) and infinite retention, and its
// retention repaired if someone changed it. Every start does this.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts, err := cfg.clientOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		// An append must fail in bounded time when the brokers are gone.
		// An idempotent producer cannot fail a request that got no
		// answer (it would break its sequence numbers), so it waits for
		// the broker forever: idempotence is off. A retried append may
		// then be written twice; both records carry the command ID and
		// the fold keeps the first (the second is a duplicate).
		kgo.DisableIdempotentWrite(),
		kgo.RecordDeliveryTimeout(cfg.ProduceTimeout),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	l := &Log{cfg: cfg, cl: cl, adm: kadm.NewClient(cl)}
	if err := reach(ctx, cl, cfg.Brokers, cfg.SASL.Mechanism != ""); err != nil {
		cl.Close()
		return nil, err
	}
	if err := l.bootstrap(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	return l, nil
}

// reach waits until a broker answers. Brokers that are not up yet are
// waited for (until ctx ends); credentials or certificates the cluster
// refuses fail at once. Either way the error says why, rather than only
// that time ran out.
func reach(ctx context.Context, cl *kgo.Client, brokers []string, sasl bool) error {
	var last error
	for {
		err := cl.Ping(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			last = err
		}
		if refused(err) {
			return fmt.Errorf("%w: kafka at %v refused this client: %w", ErrUnavailable, brokers, err)
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			if sasl && (errors.Is(last, io.EOF) || errors.Is(last, io.ErrUnexpectedEOF)) {
				return fmt.Errorf("%w: kafka at %v closed every connection (%w): check the SASL user and password", ErrUnavailable, brokers, last)
			}
			return fmt.Errorf("%w: kafka at %v: %w", ErrUnavailable, brokers, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// refused: an error that retrying cannot fix (credentials, certificates).
func refused(err error) bool {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke {
		case kerr.SaslAuthenticationFailed, kerr.UnsupportedSaslMechanism, kerr.IllegalSaslState:
			return true
		}
	}
	var verr *tls.CertificateVerificationError
	var rerr revokedError
	return errors.As(err, &verr) || errors.As(err, &rerr)
}

var retention = map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}

func (l *Log) bootstrap(ctx context.Context) error {
	topic := l.cfg.Topic
	rf := l.cfg.ReplicationFactor
	if rf == 0 {
		rf = -1
	}
	configs := map[string]*string{}
	for k, v := range retention {
		configs[k] = kadm.StringPtr(v)
	}
	_, err := l.adm.CreateTopic(ctx, 1, rf, configs, topic)
	switch {
	case err == nil:
		l.cfg.Logger.Info("created event topic", "topic", topic)
	case errors.Is(err, kerr.TopicAlreadyExists):
	default:
		return fmt.Errorf("%w: create topic %s at %v: %w", ErrUnavailable, topic, l.cfg.Brokers, err)
	}
	md, err := l.adm.Metadata(ctx, topic)
	if err != nil {
		return fmt.Errorf("%w: metadata of %s: %w", ErrUnavailable, topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return fmt.Errorf("%w: topic %s: %v", ErrUnavailable, topic, td.Err)
	}
	if n := len(td.Partitions); n != 1 {
		return fmt.Errorf("event topic %s has %d partitions; it must have exactly 1 (the log's total order is the version order)", topic, n)
	}
	rcs, err := l.adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("%w: describe %s configs: %w", ErrUnavailable, topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return fmt.Errorf("describe %s configs: %w", topic, err)
	}
	var fix []kadm.AlterConfig
	for k, want := range retention {
		got := ""
		for _, c := range rc.Configs {
			if c.Key == k {
				got = c.MaybeValue()
			}
		}
		if got != want {
			l.cfg.Logger.Warn("event topic retention is finite; setting it to infinite", "topic", topic, "config", k, "was", got)
			fix = append(fix, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(want)})
		}
	}
	if len(fix) > 0 {
		resps, err := l.adm.AlterTopicConfigs(ctx, fix, topic)
		if err == nil {
			_, err = resps.On(topic, nil)
		}
		if err != nil {
			return fmt.Errorf("set infinite retention on %s: %w", topic, err)
		}
	}
	return nil
}

// Topic is the event topic's name.
func (l *Log) Topic() string { return l.cfg.Topic }

// Append encodes env and appends it; the returned offset is the event's
// version. It returns once the brokers acknowledged the record (acks=all),
// or ErrUnavailable after the produce timeout. (The producer is not
// idempotent, so that this timeout holds: a retried record may be written
// twice, and the fold drops the second by its command ID.)
func (l *Log) Append(ctx context.Context, env events.Envelope) (int64, error) {
	value, err := events.Encode(env)
	if err != nil {
		return 0, err
	}
	return l.produce(ctx, l.record(value, env.CommandID))
}

// AppendRaw appends an already encoded record. Tools and tests use it; the
// API appends envelopes through Append.
func (l *Log) AppendRaw(ctx context.Context, value []byte, commandID string) (int64, error) {
	return l.produce(ctx, l.record(value, commandID))
}

// produce appends one record. Its timestamp is the time of the append,
// not its event's time: the client times a record out from its
// timestamp, and an event may be old (imports keep their records'
// original timestamps). The projection keeps its own time index of the
// events (projections.Reader.OffsetAt).
func (l *Log) produce(ctx context.Context, rec *kgo.Record) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.ProduceTimeout)
	defer cancel()
	r, err := l.cl.ProduceSync(ctx, rec).First()
	if err != nil {
		return 0, l.produceErr(err)
	}
	l.lastFailure.Store(nil)
	return r.Offset, nil
}

// AppendBatch appends several envelopes in one round trip and returns their
// offsets in order. They are consecutive unless another writer interleaves.
func (l *Log) AppendBatch(ctx context.Context, envs []events.Envelope) ([]int64, error) {
	recs := make([]events.Record, len(envs))
	for i, env := range envs {
		value, err := events.Encode(env)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		recs[i] = events.Record{Value: value, CommandID: env.CommandID}
	}
	return l.AppendRecords(ctx, recs)
}

// AppendRecords appends records exactly as given (value, command ID,
// signature and timestamp; a zero timestamp is the time of the append; a
// record without a signature is signed when the log signs) in one round
// trip, and returns their offsets: the restore of a backup (`nebula events
// import`) checks each is the original's.
func (l *Log) AppendRecords(ctx context.Context, recs []events.Record) ([]int64, error) {
	krs := make([]*kgo.Record, len(recs))
	for i, r := range recs {
		if r.Signature != nil {
			krs[i] = l.rawRecord(r.Value, r.CommandID, r.Signature)
		} else {
			krs[i] = l.record(r.Value, r.CommandID)
		}
		krs[i].Timestamp = r.Timestamp
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.ProduceTimeout)
	defer cancel()
	results := l.cl.ProduceSync(ctx, krs...)
	if err := results.FirstErr(); err != nil {
		return nil, l.produceErr(err)
	}
	l.lastFailure.Store(nil)
	offsets := make([]int64, len(results))
	for i, r := range results {
		offsets[i] = r.Record.Offset
	}
	return offsets, nil
}

func (l *Log) record(value []byte, commandID string) *kgo.Record {
	var sig []byte
	if l.cfg.Sign != nil {
		sig = l.cfg.Sign(value)
	}
	return l.rawRecord(value, commandID, sig)
}

// rawRecord is a record with exactly these headers.
func (l *Log) rawRecord(value []byte, commandID string, sig []byte) *kgo.Record {
	r := &kgo.Record{Value: value, Partition: 0, Topic: l.cfg.Topic}
	if commandID != "" {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: HeaderCommandID, Value: []byte(commandID)})
	}
	if sig != nil {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: signing.Header, Value: sig})
	}
	return r
}

func (l *Log) produceErr(err error) error {
	if errors.Is(err, kerr.UnknownTopicID) || errors.Is(err, kerr.UnknownTopicOrPartition) {
		// The topic was deleted and created again (a log wiped or
		// restored): the producer keeps the old topic's ID and would
		// fail forever. Forget it; the next append learns the new one.
		l.cl.PurgeTopicsFromProducing(l.cfg.Topic)
	}
	err = l.classify(err)
	l.lastFailure.Store(&appendFailure{at: time.Now(), err: err})
	return err
}

func (l *Log) classify(err error) error {
	var netErr net.Error
	// A retriable broker error (the topic re-created under the producer,
	// UNKNOWN_TOPIC_ID, until its metadata is refreshed) is "try again".
	var kErr *kerr.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries) ||
		errors.As(err, &netErr) || errors.As(err, &kErr) && kErr.Retriable {
		return fmt.Errorf("%w: append to %s: %w", ErrUnavailable, l.cfg.Topic, err)
	}
	return fmt.Errorf("append to %s: %w", l.cfg.Topic, err)
}

// Identity returns the cluster ID and topic ID of the log.
func (l *Log) Identity(ctx context.Context) (events.LogIdentity, error) {
	md, err := l.adm.Metadata(ctx, l.cfg.Topic)
	if err != nil {
		return events.LogIdentity{}, fmt.Errorf("%w: metadata: %w", ErrUnavailable, err)
	}
	td, ok := md.Topics[l.cfg.Topic]
	if !ok || td.Err != nil {
		return events.LogIdentity{}, fmt.Errorf("%w: topic %s: %v", ErrUnavailable, l.cfg.Topic, td.Err)
	}
	return events.LogIdentity{ClusterID: md.Cluster, Topic: l.cfg.Topic, TopicID: td.ID.String()}, nil
}

// Bounds returns the log's first offset and the offset the next record
// will get (start == end when empty).
func (l *Log) Bounds(ctx context.Context) (start, end int64, err error) {
	get := func(list func(context.Context, ...string) (kadm.ListedOffsets, error)) (int64, error) {
		lo, err := list(ctx, l.cfg.Topic)
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			return 0, fmt.Errorf("%w: list offsets: %w", ErrUnavailable, err)
		}
		o, ok := lo.Lookup(l.cfg.Topic, 0)
		if !ok {
			return 0, fmt.Errorf("%w: no offsets for %s", ErrUnavailable, l.cfg.Topic)
		}
		return o.Offset, nil
	}
	if start, err = get(l.adm.ListStartOffsets); err != nil {
		return 0, 0, err
	}
	end, err = get(l.adm.ListEndOffsets)
	return start, end, err
}

// Ping checks that a broker answers within the context's deadline.
func (l *Log) Ping(ctx context.Context) error {
	if err := l.cl.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Close releases the client. Readers have their own clients.
func (l *Log) Close() { l.cl.Close() }

// Reader reads the log in order from an exact offset. It is not safe for
// concurrent use.
type Reader struct {
	cl    *kgo.Client
	topic string
}

// NewReader returns a reader whose first record is at offset from. Asking
// for an offset the log does not hold makes Fetch return
// ErrOffsetOutOfRange; it never rewinds.
func (l *Log) NewReader(from int64) (*Reader, error) { return l.newReader(from) }

// newReader is NewReader with more client options (smaller fetches).
func (l *Log) newReader(from int64, more ...kgo.Opt) (*Reader, error) {
	opts, err := l.cfg.clientOpts()
	if err != nil {
		return nil, err
	}
	opts = append(append(opts, more...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{l.cfg.Topic: {0: kgo.NewOffset().At(from)}}),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		kgo.FetchMaxWait(time.Second),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka reader: %w", err)
	}
	return &Reader{cl: cl, topic: l.cfg.Topic}, nil
}

// Fetch blocks until records are available or ctx ends and returns them in
// offset order.
func (r *Reader) Fetch(ctx context.Context) ([]events.Record, error) {
	fs := r.cl.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, fe := range fs.Errors() {
		switch {
		case errors.Is(fe.Err, kerr.OffsetOutOfRange):
			return nil, fmt.Errorf("%w: %s: %w", ErrOffsetOutOfRange, r.topic, fe.Err)
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded):
			return nil, fe.Err
		default:
			return nil, fmt.Errorf("%w: fetch %s: %w", ErrUnavailable, r.topic, fe.Err)
		}
	}
	out := make([]events.Record, 0, fs.NumRecords())
	fs.EachRecord(func(rec *kgo.Record) {
		er := events.Record{Offset: rec.Offset, Value: rec.Value, Timestamp: rec.Timestamp}
		for _, h := range rec.Headers {
			switch h.Key {
			case HeaderCommandID:
				er.CommandID = string(h.Value)
			case signing.Header:
				er.Signature = h.Value
			}
		}
		out = append(out, er)
	})
	return out, nil
}

// Close releases the reader's client.
func (r *Reader) Close() { r.cl.Close() }

// Fetch sizes of the reads that serve a request: a fetch answers with as
// much of the log as it may (the projector's reader takes 50 MB at a
// time), and a read that needs a few records must not decode a million.
const (
	scanFetchBytes = 256 << 10 // Scan: a short read, or a long one a fetch at a time
	pickFetchBytes = 64 << 10  // ReadOffsets: records here and there
)

func smallFetches(n int32) []kgo.Opt {
	return []kgo.Opt{kgo.FetchMaxBytes(n), kgo.FetchMaxPartitionBytes(n)}
}

// Scan calls fn with each record from offset from up to the log's end as
// it is when called (it does not wait for new records), through one
// reader, until fn returns false.
func (l *Log) Scan(ctx context.Context, from int64, fn func(events.Record) bool) error {
	_, end, err := l.Bounds(ctx)
	if err != nil || from >= end {
		return err
	}
	r, err := l.newReader(from, smallFetches(scanFetchBytes)...)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		recs, err := r.Fetch(ctx)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if rec.Offset >= end || !fn(rec) {
				return nil
			}
			if rec.Offset == end-1 {
				return nil
			}
		}
	}
}

// ReadOffsets calls fn with the record at each of offsets (ascending), in
// order, until fn returns false; offsets the log does not hold (past its
// end) are skipped. It reads through small gaps and jumps over large ones,
// so reading one object's events costs about a fetch per event at worst,
// not a read of the log between them.
func (l *Log) ReadOffsets(ctx context.Context, offsets []int64, fn func(events.Record) bool) error {
	if len(offsets) == 0 {
		return nil
	}
	_, end, err := l.Bounds(ctx)
	if err != nil {
		return err
	}
	for len(offsets) > 0 && offsets[len(offsets)-1] >= end {
		offsets = offsets[:len(offsets)-1]
	}
	if len(offsets) == 0 {
		return nil
	}
	r, err := l.newReader(offsets[0], smallFetches(pickFetchBytes)...)
	if err != nil {
		return err
	}
	defer r.Close()
	const readThrough = 256 // a gap this small is read, not jumped
	next := int64(-1)       // the offset the reader is at
	for i := 0; i < len(offsets); {
		if next >= 0 && offsets[i]-next > readThrough {
			r.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{r.topic: {0: {Epoch: -1, Offset: offsets[i]}}})
		}
		recs, err := r.Fetch(ctx)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			for i < len(offsets) && offsets[i] < rec.Offset {
				i++ // not in the log (a compacted or lost record)
			}
			if i == len(offsets) {
				return nil
			}
			if rec.Offset == offsets[i] {
				if !fn(rec) {
					return nil
				}
				i++
			}
			next = rec.Offset + 1
		}
	}
	return nil
}
