package reporter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
)

// Topics beside the event log, and the reporters' consumer group: the
// defaults of Nebula 2.7's KAFKA_TOPIC and KAFKA_GROUP_ID.
const (
	ReportsTopic      = "nebula-reports"
	DeviceEventsTopic = "nebula-device-events"
	ConsumerGroup     = "nebula-reporter-group"
	// Partitions of the reports and device events topics: the most
	// reporters (and ingesting managers) that share the work.
	Partitions = 12
)

// Names say where reports go and who reads them. The zero value means
// the defaults; Nebula 2.7's KAFKA_TOPIC, KAFKA_GROUP_ID and
// KAFKA_AUTO_OFFSET_RESET set them.
type Names struct {
	// Reports is the topic devices and managers publish reports to;
	// reports that cannot be accepted go to Reports+"-poison".
	Reports string
	// Group is the reporters' consumer group.
	Group string
	// FromLatest makes a new consumer group start at the end of the
	// reports topic instead of its beginning.
	FromLatest bool
}

// WithDefaults fills the unset names.
func (n Names) WithDefaults() Names {
	if n.Reports == "" {
		n.Reports = ReportsTopic
	}
	if n.Group == "" {
		n.Group = ConsumerGroup
	}
	return n
}

// Poison is the topic of the reports the reporter cannot accept.
func (n Names) Poison() string { return n.WithDefaults().Reports + "-poison" }

// Validate checks the names are usable Kafka topic and group names.
func (n Names) Validate() error {
	n = n.WithDefaults()
	if err := kafkalog.ValidTopic(n.Reports); err != nil {
		return fmt.Errorf("reports topic: %w", err)
	}
	if err := kafkalog.ValidTopic(n.Poison()); err != nil {
		return fmt.Errorf("reports topic: %w", err)
	}
	if n.Reports == DeviceEventsTopic {
		return fmt.Errorf("reports topic %q is the device events topic", n.Reports)
	}
	if len(n.Group) > 255 || strings.TrimSpace(n.Group) != n.Group {
		return fmt.Errorf("consumer group %q is not a usable group name", n.Group)
	}
	return nil
}

// EnsureTopics creates the reports, device events and poison topics.
// Reports and device events are kept a day (the projections hold what
// the queries need, with their own retention).
func EnsureTopics(ctx context.Context, cfg kafkalog.Config, n Names) error {
	n = n.WithDefaults()
	day := map[string]string{"retention.ms": fmt.Sprint((24 * time.Hour).Milliseconds())}
	for _, t := range []string{n.Reports, DeviceEventsTopic} {
		if err := kafkalog.EnsureTopic(ctx, cfg, t, Partitions, day); err != nil {
			return err
		}
	}
	return kafkalog.EnsureTopic(ctx, cfg, n.Poison(), 1, map[string]string{"retention.ms": fmt.Sprint((7 * 24 * time.Hour).Milliseconds())})
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
	case kafkalog.SASLScramSHA256, kafkalog.SASLScramSHA512:
		c.Net.SASL.Enable, c.Net.SASL.User, c.Net.SASL.Password = true, cfg.SASL.User, cfg.SASL.Password
		c.Net.SASL.Mechanism = sarama.SASLMechanism(cfg.SASL.Mechanism)
		sha512 := cfg.SASL.Mechanism == kafkalog.SASLScramSHA512
		c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{sha512: sha512} }
	default:
		return nil, fmt.Errorf("reports over Kafka: SASL mechanism %q is not supported", cfg.SASL.Mechanism)
	}
	return c, nil
}

// scramClient runs franz-go's SCRAM implementation (the one the event
// log uses) under sarama's SCRAMClient interface.
type scramClient struct {
	sha512 bool
	mech   sasl.Mechanism
	sess   sasl.Session
	done   bool
}

func (c *scramClient) Begin(user, password, authzID string) error {
	a := scram.Auth{User: user, Pass: password, Zid: authzID}
	c.mech = a.AsSha256Mechanism()
	if c.sha512 {
		c.mech = a.AsSha512Mechanism()
	}
	return nil
}

// Step answers the server's challenge; the first call (with no
// challenge) gives the client-first message.
func (c *scramClient) Step(challenge string) (string, error) {
	if c.sess == nil {
		sess, first, err := c.mech.Authenticate(context.Background(), "")
		c.sess = sess
		return string(first), err
	}
	done, resp, err := c.sess.Challenge([]byte(challenge))
	c.done = done
	return string(resp), err
}

func (c *scramClient) Done() bool { return c.done }

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
	pub, err := kafka.NewPublisher(kafka.PublisherConfig{Brokers: cfg.Brokers, Marshaler: marshaler, OverwriteSaramaConfig: sc},
		watermill.NewSlogLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("reports to kafka at %v: %w%s", cfg.Brokers, err, saslHint(cfg, err))
	}
	return pub, nil
}

// saslHint explains a connection the brokers closed during SASL.
func saslHint(cfg kafkalog.Config, err error) string {
	if cfg.SASL.Mechanism != "" && (errors.Is(err, io.EOF) || strings.HasSuffix(err.Error(), "EOF")) {
		return " (the brokers closed the connection: check the SASL user and password)"
	}
	return ""
}

// Sink publishes reports: the manager's side of ingestion.
type Sink struct {
	pub   message.Publisher
	topic string
}

// NewSink returns a sink that publishes to the reports topic of n.
func NewSink(pub message.Publisher, n Names) *Sink {
	return &Sink{pub: pub, topic: n.WithDefaults().Reports}
}

// Publish sends one validated report of a device.
func (s *Sink) Publish(_ context.Context, deviceID string, report []byte) error {
	m := message.NewMessage(watermill.NewUUID(), report)
	m.Metadata.Set(metaDevice, deviceID)
	if err := s.pub.Publish(s.topic, m); err != nil {
		return fmt.Errorf("%w: publish report: %w", kafkalog.ErrUnavailable, err)
	}
	return nil
}
