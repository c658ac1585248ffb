// Package broker runs the embedded Kafka-protocol broker (franz-go's kfake)
// that `nebula dev` and `nebula kafka` use when no Kafka cluster is given.
// It is one broker, one event loop and no replication: right for one
// machine and for tests. Past one machine, run Apache Kafka (deploy/kafka)
// and point --kafka-brokers at it; nothing else changes.
package broker

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/nebula-orchestrator/nebula-go/internal/netlimit"
)

// Config of the embedded broker.
type Config struct {
	// Listen is host:port. The host must be a concrete address (clients
	// connect to the address the broker advertises, which is this one);
	// port 0 picks a free port.
	Listen string
	// DataDir holds the log. Empty means in memory (tests only).
	DataDir string
	// SyncWrites fsyncs every batch: slower appends, nothing lost on power
	// failure. Without it a kill -9 loses nothing (the page cache keeps
	// the writes) but a power cut may lose the last writes.
	SyncWrites bool
	// MaxConnections caps the connections the broker holds
	// (DefaultMaxConnections when 0).
	MaxConnections int
	// SASLUser and SASLPassword, when set, make every client authenticate
	// (SASL SCRAM-SHA-512) as this user. They are required when Listen is
	// not a loopback address: whoever can write the event log can make
	// any change, users and permissions included.
	SASLUser, SASLPassword string
	Logger                 *slog.Logger
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	var errs []error
	host, port, err := net.SplitHostPort(c.Listen)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("broker listen address %q: %w", c.Listen, err))
	case net.ParseIP(host) == nil && host != "localhost":
		errs = append(errs, fmt.Errorf("broker listen address %q: host must be an IP address (it is what clients are told to connect to)", c.Listen))
	case net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified():
		errs = append(errs, fmt.Errorf("broker listen address %q: cannot advertise %s to clients; give the address they should use", c.Listen, host))
	case port == "":
		errs = append(errs, fmt.Errorf("broker listen address %q has no port", c.Listen))
	case c.SASLUser == "" && !loopback(host):
		errs = append(errs, fmt.Errorf("broker listen address %q is reachable beyond this machine: give a SASL user and password "+
			"(--sasl-user, NEBULA_KAFKA_SASL_PASSWORD); whoever can write the event log can make any change, users and permissions included", c.Listen))
	}
	if c.SASLUser != "" && len(c.SASLPassword) < MinSASLPassword {
		errs = append(errs, fmt.Errorf("broker SASL password: at least %d characters", MinSASLPassword))
	}
	return errors.Join(errs...)
}

// DefaultMaxConnections is how many connections the embedded broker
// holds at most; past it, a new connection is closed at once.
const DefaultMaxConnections = 1024

// MinSASLPassword is the shortest SASL password the broker takes.
const MinSASLPassword = 12

// SASLMechanism is the mechanism of the broker's SASL user.
const SASLMechanism = "SCRAM-SHA-512"

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Broker is a running embedded broker.
type Broker struct {
	c    *kfake.Cluster
	addr string
}

// clusterIDFile keeps the cluster ID chosen at the first start, so that
// the ID names this data directory's log and no other.
const clusterIDFile = "nebula-cluster-id"

// Start starts the broker; it serves until Close.
func Start(cfg Config) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	id, err := clusterID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID(id),
		// A second guard under the topic's own retention.ms=-1.
		kfake.BrokerConfigs(map[string]string{"log.retention.ms": "-1", "log.retention.bytes": "-1"}),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			l, err := net.Listen(network, cfg.Listen)
			if err != nil {
				return nil, err
			}
			// kfake returns from its accept loop on the first Accept
			// error (out of file descriptors) and never accepts again.
			return netlimit.New(l, cmp.Or(cfg.MaxConnections, DefaultMaxConnections), "the embedded broker", nil, cfg.Logger), nil
		}),
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(filepath.Join(cfg.DataDir, "log")))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	if cfg.SASLUser != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(SASLMechanism, cfg.SASLUser, cfg.SASLPassword))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s (data in %s): %w", cfg.Listen, cfg.DataDir, err)
	}
	addrs := c.ListenAddrs()
	return &Broker{c: c, addr: addrs[0]}, nil
}

// clusterID reads the data directory's cluster ID, creating it on first
// use. kfake persists the ID it was started with, but only after the first
// write, so it is kept here as well.
func clusterID(dir string) (string, error) {
	if dir == "" {
		return randomID(), nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("broker data dir: %w", err)
	}
	path := filepath.Join(dir, clusterIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil && len(b) > 0:
		return string(b), nil
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("broker cluster ID: %w", err)
	}
	id := randomID()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id), 0o640); err != nil {
		return "", fmt.Errorf("broker cluster ID: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("broker cluster ID: %w", err)
	}
	return id, nil
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "nebula-" + hex.EncodeToString(b)
}

// Addr is the host:port clients connect to.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker and flushes its data directory.
func (b *Broker) Close() { b.c.Close() }
