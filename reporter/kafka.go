package reporter

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
)

// Topics beside the event log.
const (
	ReportsTopic      = "nebula-reports"
	DeviceEventsTopic = "nebula-device-events"
	PoisonTopic       = "nebula-reports-poison"
	ConsumerGroup     = "nebula-reporter-group"
	// Partitions of the reports and device events topics: the most
	// reporters (and ingesting managers) that share the work.
	Partitions = 12
)

// EnsureTopics creates the reports, device events and poison topics.
// Reports and device events are kept a day (the projections hold what
// the queries need, with their own retention).
func EnsureTopics(ctx context.Context, cfg kafkalog.Config) error {
	day := map[string]string{"retention.ms": fmt.Sprint((24 * time.Hour).Milliseconds())}
	for _, t := range []string{ReportsTopic, DeviceEventsTopic} {
		if err := kafkalog.EnsureTopic(ctx, cfg, t, Partitions, day); err != nil {
			return err
		}
	}
	return kafkalog.EnsureTopic(ctx, cfg, PoisonTopic, 1, map[string]string{"retention.ms": fmt.Sprint((7 * 24 * time.Hour).Milliseconds())})
}

// saramaConfig maps the Kafka settings onto sarama's. sarama is pinned
// (see STACK.md): its protocol version is set explicitly.
func saramaConfig(cfg kafkalog.Config, base *sarama.Config) (*sarama.Config, error) {
	c := base
	c.Version = sarama.V3_0_0_0
	c.ClientID = "nebula-reporter"
	tc, err := cfg.TLSClientConfig()
	if err != nil {
		return nil, err
	}
	if tc != nil {
		c.Net.TLS.Enable, c.Net.TLS.Config = true, tc
	}
	switch cfg.SASL.Mechanism {
	case "":
	case kafkalog.SASLPlain:
		c.Net.SASL.Enable, c.Net.SASL.Mechanism = true, sarama.SASLTypePlaintext
		c.Net.SASL.User, c.Net.SASL.Password = cfg.SASL.User, cfg.SASL.Password
	default:
		return nil, fmt.Errorf("reports over Kafka support SASL %s only so far, not %s", kafkalog.SASLPlain, cfg.SASL.Mechanism)
	}
	return c, nil
}

// marshaler keys messages by their device_id metadata.
var marshaler = kafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) {
	return m.Metadata.Get(metaDevice), nil
})

const (
	metaDevice = "device_id"
	metaReason = "reason_poisoned"
)

// NewPublisher returns a watermill publisher to the cluster.
func NewPublisher(cfg kafkalog.Config, logger *slog.Logger) (*kafka.Publisher, error) {
	sc, err := saramaConfig(cfg, kafka.DefaultSaramaSyncPublisherConfig())
	if err != nil {
		return nil, err
	}
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Producer.Idempotent = false
	return kafka.NewPublisher(kafka.PublisherConfig{Brokers: cfg.Brokers, Marshaler: marshaler, OverwriteSaramaConfig: sc},
		watermill.NewSlogLogger(logger))
}

// Sink publishes reports: the manager's side of ingestion.
type Sink struct{ pub message.Publisher }

// NewSink returns a sink over a publisher.
func NewSink(pub message.Publisher) *Sink { return &Sink{pub: pub} }

// Publish sends one validated report of a device.
func (s *Sink) Publish(_ context.Context, deviceID string, report []byte) error {
	m := message.NewMessage(watermill.NewUUID(), report)
	m.Metadata.Set(metaDevice, deviceID)
	if err := s.pub.Publish(ReportsTopic, m); err != nil {
		return fmt.Errorf("%w: publish report: %w", kafkalog.ErrUnavailable, err)
	}
	return nil
}
