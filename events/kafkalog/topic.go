package kafkalog

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
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
