package kafkalog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// EnsureTopic creates topic with the partitions and configs if it does
// not exist (an existing topic is left as it is). For the partitioned
// topics beside the event log (device reports and events).
func EnsureTopic(ctx context.Context, cfg Config, topic string, partitions int32, configs map[string]string) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	opts, err := cfg.clientOpts()
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	rf := cfg.ReplicationFactor
	if rf == 0 {
		rf = -1
	}
	c := map[string]*string{}
	for k, v := range configs {
		c[k] = kadm.StringPtr(v)
	}
	_, err = kadm.NewClient(cl).CreateTopic(ctx, partitions, rf, c, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("%w: create topic %s: %w", ErrUnavailable, topic, err)
	}
	return nil
}

// TLSClientConfig is the TLS configuration the settings describe (nil
// when TLS is off), for clients other than franz-go.
func (c Config) TLSClientConfig() (*tls.Config, error) {
	if !c.TLS.Enabled {
		return nil, nil
	}
	return c.TLS.build()
}

// TopicReader reads every partition of a topic from given offsets.
type TopicReader struct {
	cl    *kgo.Client
	topic string
}

// topicFetchBytes bounds a TopicReader's fetch (compressed bytes).
const topicFetchBytes = 512 << 10

// NewTopicReader reads topic; from holds the next offset per partition
// (partitions missing from it are read from their start).
func NewTopicReader(ctx context.Context, cfg Config, topic string, from map[int32]int64) (*TopicReader, error) {
	cfg.setDefaults()
	opts, err := cfg.clientOpts()
	if err != nil {
		return nil, err
	}
	meta, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	md, err := kadm.NewClient(meta).Metadata(ctx, topic)
	meta.Close()
	if err != nil {
		return nil, fmt.Errorf("%w: metadata of %s: %w", ErrUnavailable, topic, err)
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return nil, fmt.Errorf("%w: topic %s: %v", ErrUnavailable, topic, td.Err)
	}
	parts := map[int32]kgo.Offset{}
	for p := range td.Partitions {
		o := kgo.NewOffset().AtStart()
		if next, ok := from[p]; ok {
			o = kgo.NewOffset().At(next)
		}
		parts[p] = o
	}
	cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
		// Retention deletes old device records: start from what is left.
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(time.Second),
		// A fetch is decompressed and decoded whole before it is folded,
		// and the client holds the next one meanwhile: its size bounds the
		// reader's memory. It counts compressed bytes, and reports
		// compress about tenfold: the default, 50 MiB, took hundreds of
		// MiB; 4 MiB still held 80-90 MB of decompressed reports (issue 21).
		kgo.FetchMaxBytes(topicFetchBytes), kgo.FetchMaxPartitionBytes(topicFetchBytes/4))...)
	if err != nil {
		return nil, err
	}
	return &TopicReader{cl: cl, topic: topic}, nil
}

// Bounds returns, per partition of the topic, the first offset still
// held (retention deletes older records) and the end offset (the next to
// be written).
func (r *TopicReader) Bounds(ctx context.Context) (starts, ends map[int32]int64, err error) {
	adm := kadm.NewClient(r.cl)
	list := func(f func(context.Context, ...string) (kadm.ListedOffsets, error)) (map[int32]int64, error) {
		lo, err := f(ctx, r.topic)
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: offsets of %s: %w", ErrUnavailable, r.topic, err)
		}
		out := map[int32]int64{}
		lo.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
		return out, nil
	}
	if starts, err = list(adm.ListStartOffsets); err != nil {
		return nil, nil, err
	}
	ends, err = list(adm.ListEndOffsets)
	return starts, ends, err
}

// Fetch blocks until records arrive or ctx ends.
func (r *TopicReader) Fetch(ctx context.Context) ([]events.Record, error) {
	fs := r.cl.PollFetches(ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, fe := range fs.Errors() {
		return nil, fmt.Errorf("%w: fetch: %w", ErrUnavailable, fe.Err)
	}
	var out []events.Record
	fs.EachRecord(func(rec *kgo.Record) {
		out = append(out, events.Record{Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Value: rec.Value, Timestamp: rec.Timestamp})
	})
	return out, nil
}

// Close releases the client.
func (r *TopicReader) Close() { r.cl.Close() }

// ValidTopic checks name against Kafka's rules for topic names: 1 to 249
// of a-z, A-Z, 0-9, '.', '_' and '-', and not "." or "..".
func ValidTopic(name string) error {
	if name == "" || len(name) > 249 || name == "." || name == ".." {
		return fmt.Errorf("%q is not a Kafka topic name (1 to 249 characters, not . or ..)", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q is not a Kafka topic name (only letters, digits, '.', '_' and '-')", name)
		}
	}
	return nil
}

// TailRecord is a record of a topic's tail, with its headers.
type TailRecord struct {
	events.Record
	Headers map[string]string
}

// TopicTail returns the last n records of each partition of topic (fewer
// if it holds fewer), oldest first per partition: for a look at a topic
// people read rarely (the reports refused into the poison topic), without
// a Kafka client.
func TopicTail(ctx context.Context, cfg Config, topic string, n int) ([]TailRecord, error) {
	probe, err := NewTopicReader(ctx, cfg, topic, nil)
	if err != nil {
		return nil, err
	}
	starts, ends, err := probe.Bounds(ctx)
	probe.Close()
	if err != nil {
		return nil, err
	}
	from := map[int32]int64{}
	left := 0
	for p, end := range ends {
		from[p] = max(starts[p], end-int64(n))
		left += int(end - from[p])
	}
	if left == 0 {
		return nil, nil
	}
	r, err := NewTopicReader(ctx, cfg, topic, from)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []TailRecord
	for len(out) < left && ctx.Err() == nil {
		fs := r.cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			if ctx.Err() == nil {
				return out, fmt.Errorf("%w: fetch: %w", ErrUnavailable, fe.Err)
			}
		}
		fs.EachRecord(func(rec *kgo.Record) {
			if rec.Offset >= ends[rec.Partition] {
				return
			}
			h := make(map[string]string, len(rec.Headers))
			for _, kv := range rec.Headers {
				h[kv.Key] = string(kv.Value)
			}
			out = append(out, TailRecord{Record: events.Record{Partition: rec.Partition, Offset: rec.Offset, Key: rec.Key, Value: rec.Value,
				Timestamp: rec.Timestamp}, Headers: h})
		})
	}
	return out, ctx.Err()
}
