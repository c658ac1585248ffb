package reporter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
)

// Reporter turns reports into device events.
type Reporter struct {
	router  *message.Router
	sub     *kafka.Subscriber
	pub     *kafka.Publisher
	now     func() time.Time
	tracker *tracker
	logger  *slog.Logger
	// refusedMu guards when a refused report was last logged and how
	// many were refused since (one line every 10 s at most).
	refusedMu      sync.Mutex
	refusedLogged  time.Time
	refusedSkipped int
	// SilentAfter: no report for this long and a device is silent;
	// SweepEvery: how often that is checked.
	SilentAfter, SweepEvery time.Duration
}

// New builds a reporter on the cluster cfg describes; Run starts it.
func New(cfg kafkalog.Config, n Names, logger *slog.Logger) (*Reporter, error) {
	if err := n.Validate(); err != nil {
		return nil, err
	}
	n = n.WithDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	wl := watermill.NewSlogLogger(logger)
	sc, err := saramaConfig(cfg, kafka.DefaultSaramaSubscriberConfig())
	if err != nil {
		return nil, err
	}
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest // a new group reads what is there
	if n.FromLatest {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	sub, err := kafka.NewSubscriber(kafka.SubscriberConfig{Brokers: cfg.Brokers, Unmarshaler: marshaler,
		OverwriteSaramaConfig: sc, ConsumerGroup: n.Group}, wl)
	if err != nil {
		return nil, fmt.Errorf("reports subscriber: %w%s", err, saslHint(cfg, err))
	}
	pub, err := NewPublisher(cfg, logger)
	if err != nil {
		sub.Close()
		return nil, fmt.Errorf("device events publisher: %w", err)
	}
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, wl)
	if err != nil {
		return nil, err
	}
	// A report that cannot be accepted goes to the poison topic at once,
	// with the reason; anything else (the cluster) is retried.
	poison, err := middleware.PoisonQueueWithFilter(pub, n.Poison(), func(err error) bool { return errors.Is(err, events.ErrInvalid) })
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{MaxRetries: 8, InitialInterval: 100 * time.Millisecond, MaxInterval: 5 * time.Second, Multiplier: 2,
		ShouldRetry: func(p middleware.RetryParams) bool { return !errors.Is(p.Err, events.ErrInvalid) }, Logger: wl}
	router.AddMiddleware(poison, retry.Middleware, middleware.Recoverer)
	r := &Reporter{router: router, sub: sub, pub: pub, now: time.Now, tracker: newTracker(), logger: logger,
		SilentAfter: DefaultSilentAfter, SweepEvery: 10 * time.Second}
	router.AddHandler("reports", n.Reports, sub, DeviceEventsTopic, pub, r.handle)
	return r, nil
}

// handle turns one report into a DeviceReported event. The event's ID is
// the message's, so a redelivered report makes an event the projections
// recognise as the same.
func (r *Reporter) handle(m *message.Message) ([]*message.Message, error) {
	if events.IsHeartbeat(m.Payload) {
		return r.handleHeartbeat(m)
	}
	rep, err := events.DecodeReport(m.Payload)
	if err != nil {
		r.logRefused(m, err)
		return nil, err
	}
	// Our publishers name the device in a header; a 2.7 worker writing
	// straight to the topic sends none (its identity is derived).
	if d := m.Metadata.Get(metaDevice); d != "" && d != rep.DeviceID {
		return nil, fmt.Errorf("%w: report of device %q arrived keyed as device %q", events.ErrInvalid, rep.DeviceID, d)
	}
	id := messageID(m)
	ev := events.DeviceEvent{Type: events.DeviceReported, ID: id, DeviceID: rep.DeviceID, DeviceGroup: rep.DeviceGroup,
		Time: r.now().UTC(), Report: &rep}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	out := message.NewMessage(id, b)
	out.Metadata.Set(metaDevice, rep.DeviceID)
	status, err := statusMessages(r.tracker.observe(rep, ev.Time), id)
	if err != nil {
		return nil, err
	}
	return append([]*message.Message{out}, status...), nil
}

// messageID names a message the same at every redelivery: its UUID, or,
// not written by watermill (a 2.7 worker's producer), its place in the
// topic.
func messageID(m *message.Message) string {
	if m.UUID != "" {
		return m.UUID
	}
	p, _ := kafka.MessagePartitionFromCtx(m.Context())
	o, _ := kafka.MessagePartitionOffsetFromCtx(m.Context())
	return fmt.Sprintf("kafka-%d-%d", p, o)
}

// handleHeartbeat turns a heartbeat (nothing changed since the device's
// last full report) into a device.heartbeat event, and an online one if
// the device was silent.
func (r *Reporter) handleHeartbeat(m *message.Message) ([]*message.Message, error) {
	h, err := events.DecodeHeartbeat(m.Payload)
	if err != nil {
		r.logRefused(m, err)
		return nil, err
	}
	if d := m.Metadata.Get(metaDevice); d != "" && d != h.DeviceID {
		return nil, fmt.Errorf("%w: heartbeat of device %q arrived keyed as device %q", events.ErrInvalid, h.DeviceID, d)
	}
	id := messageID(m)
	ev := events.DeviceEvent{Type: events.DeviceHeartbeat, ID: id, DeviceID: h.DeviceID, DeviceGroup: h.DeviceGroup, Time: r.now().UTC(), Version: h.AppliedVersion}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	out := message.NewMessage(id, b)
	out.Metadata.Set(metaDevice, h.DeviceID)
	status, err := statusMessages(r.tracker.heartbeat(h, ev.Time), id)
	if err != nil {
		return nil, err
	}
	return append([]*message.Message{out}, status...), nil
}

// logRefused says that a report goes to the poison topic, at most once
// every 10 s (with how many were not said): GET /api/v2/reports/refused
// on any manager lists them.
func (r *Reporter) logRefused(m *message.Message, err error) {
	r.refusedMu.Lock()
	now := r.now()
	log := now.Sub(r.refusedLogged) >= 10*time.Second
	skipped := r.refusedSkipped
	if log {
		r.refusedLogged, r.refusedSkipped = now, 0
	} else {
		r.refusedSkipped++
	}
	r.refusedMu.Unlock()
	if log {
		r.logger.Warn("report refused, sent to the poison topic (GET /api/v2/reports/refused lists them)", "reason", err,
			"device_id", m.Metadata.Get(metaDevice), "refused_since_last_line", skipped)
	}
}

// Run consumes until ctx ends, then closes the router (in-flight
// messages are finished and their offsets committed).
func (r *Reporter) Run(ctx context.Context) error {
	sweepCtx, stop := context.WithCancel(ctx)
	defer stop()
	go r.watchSilence(sweepCtx)
	err := r.router.Run(ctx)
	r.pub.Close()
	return err
}

// Running is closed once the router consumes.
func (r *Reporter) Running() <-chan struct{} { return r.router.Running() }
