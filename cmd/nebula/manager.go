//go:build !agent

package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/events/chain"
	"github.com/nebula-orchestrator/nebula-go/events/kafkalog"
	"github.com/nebula-orchestrator/nebula-go/events/signing"
	"github.com/nebula-orchestrator/nebula-go/internal/diskspace"
	"github.com/nebula-orchestrator/nebula-go/internal/rollouts"
	"github.com/nebula-orchestrator/nebula-go/manager"
	"github.com/nebula-orchestrator/nebula-go/projections"
	"github.com/nebula-orchestrator/nebula-go/projections/past"
	"github.com/nebula-orchestrator/nebula-go/projections/reports"
	"github.com/nebula-orchestrator/nebula-go/reporter"
)

type managerSettings struct {
	listen, dataDir string
	maxConnections  int
	recordKey       string // file of the ed25519 seed records are signed with
	trustedKeys     string // more public keys whose records the fold accepts
	recordSeed      string // or the seed itself, in hex
	unsigned        bool   // run without a record key, knowingly
	kafka           kafkalog.Config
	cacheTime       time.Duration
	cacheMaxSize    int
	reportTTL       time.Duration
	checkpointKey   string
	checkpointEvery time.Duration
	debugListen     string
	auth            manager.Auth
	reports         reportsFlags
	limits          manager.Limits
	minFreeDisk     string
	memoryLimit     string
	trustedProxies  string
	// ready, when set, is called once the API serves (with its base URL).
	ready func(url string)
}

// addAPIFlags adds the settings of the API that `nebula dev` and `nebula
// manager` share, with the original manager's variable names.
func addAPIFlags(f *flags, m *managerSettings) {
	f.Int(&m.limits.FailedAuthBurst, "failed-login-burst", manager.DefaultFailedAuthBurst, "failed logins one address may make at once (then one per --failed-login-every; past that 429)", "NEBULA_FAILED_LOGIN_BURST")
	f.Duration(&m.limits.FailedAuthEvery, "failed-login-every", manager.DefaultFailedAuthEvery, "one more failed login allowed per address this often", "NEBULA_FAILED_LOGIN_EVERY")
	f.Float(&m.limits.RequestsPerSecond, "rate-limit", 0, "requests per second per credential (burst: twice that; 0: no limit; devices sharing a token share it)", "NEBULA_RATE_LIMIT")
	f.String(&m.minFreeDisk, "min-free-disk", "512MiB", "refuse writes (507) and pause folding while the data directory has less free (0: never)", "NEBULA_MIN_FREE_DISK")
	f.String(&m.memoryLimit, "memory-limit", "0", "the Go runtime's soft memory limit (e.g. 192MiB on a small VM): the garbage collector works harder as the "+
		"manager's heap nears it, so that a burst of writes does not double it; it costs throughput when thousands of connections "+
		"keep the heap near it (0: none; GOMEMLIMIT, when set, wins)", "NEBULA_MEMORY_LIMIT")
	f.Int(&m.maxConnections, "max-connections", manager.DefaultMaxConnections(), "API connections open at once; past it a new one is answered 503 (default: the file descriptor limit less 2048)", "NEBULA_MAX_CONNECTIONS")
	f.String(&m.trustedProxies, "trusted-proxies", "", "CIDRs of load balancers whose X-Forwarded-For names the client (e.g. 10.0.0.0/8)", "NEBULA_TRUSTED_PROXIES")
	addReportsTopicFlag(f, &m.reports)
	f.Duration(&m.cacheTime, "cache-time", manager.DefaultCacheTime, "how long a device group's /info is served from memory; 0 turns the cache off", "NEBULA_CACHE_TIME", "CACHE_TIME")
	f.String(&m.recordKey, "record-key", "", "file of an ed25519 seed (64 hex digits), the same on every manager of the cluster: "+
		"records are signed with it and the fold rejects records no trusted key signed (without it, whoever can write the event topic is admin)", "NEBULA_RECORD_KEY")
	f.String(&m.recordSeed, "record-key-seed", "", "the record key itself (64 hex digits) instead of --record-key's file, for containers (prefer the environment variable)", "NEBULA_RECORD_KEY_SEED")
	f.Bool(&m.unsigned, "unsigned-records", false, "run without --record-key: records are not signed and whoever can write the event topic can make any change, users included", "NEBULA_UNSIGNED_RECORDS")
	f.String(&m.trustedKeys, "record-trusted-keys", "", "more ed25519 public keys (hex, comma-separated) whose signed records are accepted: the old key while keys are rotated", "NEBULA_RECORD_TRUSTED_KEYS")
	f.String(&m.checkpointKey, "checkpoint-key", "", "file of an ed25519 seed (64 hex digits): sign checkpoints of the log's hash chain", "NEBULA_CHECKPOINT_KEY")
	f.String(&m.debugListen, "debug-listen", "", "serve Go's profiler (/debug/pprof/) on this host:port (off when empty)", "NEBULA_DEBUG_LISTEN")
	f.Duration(&m.checkpointEvery, "checkpoint-every", time.Hour, "how often to append a signed checkpoint", "NEBULA_CHECKPOINT_EVERY")
	f.Duration(&m.reportTTL, "report-ttl", time.Hour, "how long device reports are kept for GET /reports", "NEBULA_REPORT_TTL", "MONGO_REPORT_TTL")
	f.Int(&m.cacheMaxSize, "cache-max-size", manager.DefaultCacheMaxSize, "device groups whose /info is kept in memory", "NEBULA_CACHE_MAX_SIZE", "CACHE_MAX_SIZE")
	f.Bool(&m.auth.Enabled, "auth-enabled", true, "require credentials (false: only behind an authenticating proxy)", "NEBULA_AUTH_ENABLED", "AUTH_ENABLED")
	f.String(&m.auth.User, "basic-auth-user", "", "local admin user (Basic)", "NEBULA_BASIC_AUTH_USER", "BASIC_AUTH_USER")
	f.String(&m.auth.Password, "basic-auth-password", "", "local admin password (prefer the environment variable)", "NEBULA_BASIC_AUTH_PASSWORD", "BASIC_AUTH_PASSWORD")
	f.String(&m.auth.Token, "auth-token", "", "local admin Bearer token (prefer the environment variable)", "NEBULA_AUTH_TOKEN", "AUTH_TOKEN")
}

// validate checks the settings (and parses the trusted proxies).
func (m *managerSettings) validate() error {
	if m.cacheTime < 0 {
		return fmt.Errorf("cache time %v is negative", m.cacheTime)
	}
	if m.maxConnections < 1 {
		return fmt.Errorf("--max-connections %d: at least 1", m.maxConnections)
	}
	if _, err := signing.ParsePublicKeys(m.trustedKeys); err != nil {
		return err
	}
	keys := 0
	for _, set := range []bool{m.recordKey != "", m.recordSeed != "", m.unsigned} {
		if set {
			keys++
		}
	}
	if keys > 1 {
		return errors.New("--record-key, --record-key-seed and --unsigned-records: choose one")
	}
	if m.recordSeed != "" {
		if _, err := signing.ParseSeed(m.recordSeed); err != nil {
			return fmt.Errorf("--record-key-seed: %w", err)
		}
	}
	if keys == 0 {
		return errors.New("records must be signed, or whoever can write the event topic is admin: give every manager of the cluster " +
			"the same --record-key (make one with `nebula record-key new FILE`), or run with --unsigned-records to accept that risk")
	}
	if m.trustedKeys != "" && m.unsigned {
		return errors.New("--record-trusted-keys needs --record-key: a manager that checks signatures signs its own records")
	}
	if m.checkpointEvery <= 0 {
		return fmt.Errorf("checkpoint interval %v is not positive", m.checkpointEvery)
	}
	if m.reportTTL < time.Minute {
		return fmt.Errorf("report TTL %v is under a minute", m.reportTTL)
	}
	if _, err := m.reports.config(); err != nil {
		return err
	}
	if m.limits.FailedAuthBurst < 1 || m.limits.FailedAuthEvery <= 0 || m.limits.RequestsPerSecond < 0 {
		return fmt.Errorf("failed-login burst must be at least 1, failed-login-every positive, and the rate limit not negative")
	}
	if _, err := diskspace.ParseBytes(m.minFreeDisk); err != nil {
		return fmt.Errorf("min free disk: %w", err)
	}
	if _, err := diskspace.ParseBytes(m.memoryLimit); err != nil {
		return fmt.Errorf("memory limit: %w", err)
	}
	m.limits.TrustedProxies = nil
	for _, c := range splitList(m.trustedProxies) {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			if a, aerr := netip.ParseAddr(c); aerr == nil {
				p, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			return fmt.Errorf("trusted proxy %q is not an address or CIDR", c)
		}
		m.limits.TrustedProxies = append(m.limits.TrustedProxies, p)
	}
	if m.cacheMaxSize < 1 {
		return fmt.Errorf("cache max size %d must be at least 1", m.cacheMaxSize)
	}
	if (m.auth.User == "") != (m.auth.Password == "") {
		return fmt.Errorf("give both the basic auth user and password of the local admin, or neither")
	}
	for what, v := range map[string]string{"basic auth password": m.auth.Password, "auth token": m.auth.Token} {
		if v != "" && len(v) < 8 {
			return fmt.Errorf("the local admin's %s must have at least 8 characters", what)
		}
	}
	return nil
}

func runManager(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	var m managerSettings
	var k kafkaFlags
	f := newFlags("manager", "Runs the manager: the /api/v2 REST API, served from a projection of the Kafka event log\n"+
		"kept in DATA_DIR/projection (a cache: delete it and it is rebuilt from the log).\n"+
		"Any number of managers can run against one Kafka cluster.", args)
	f.String(&m.listen, "listen", ":80", "HTTP API address host:port (the original manager's port is 80)", "NEBULA_LISTEN")
	f.String(&m.dataDir, "data-dir", "nebula-data", "directory of the projection", "NEBULA_DATA_DIR")
	addKafkaFlags(f, &k)
	addAPIFlags(f, &m)
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	if err := m.validate(); err != nil {
		return usageError{err}
	}
	cfg, err := k.config()
	if err != nil {
		if len(cfg.Brokers) == 0 {
			err = fmt.Errorf("%w (give --kafka-brokers, or run `nebula dev` for the embedded broker)", err)
		}
		return usageError{err}
	}
	m.kafka = cfg
	return serveManager(ctx, m, stdout, logger)
}

// poisonedReports lists what the reporters refused, for the manager.
func poisonedReports(cfg kafkalog.Config, names reporter.Names) manager.PoisonedReports {
	return func(ctx context.Context, n int) ([]manager.Refusal, error) {
		ps, err := reporter.RecentPoisoned(ctx, cfg, names, n)
		out := make([]manager.Refusal, len(ps))
		for i, p := range ps {
			out[i] = manager.Refusal{Time: p.Time, Reason: "poisoned", Detail: p.Reason, DeviceID: p.DeviceID, DeviceGroup: p.DeviceGroup, Hostname: p.Hostname}
		}
		return out, err
	}
}

// signingKey is the record key the settings give (validated).
func (m *managerSettings) signingKey() (ed25519.PrivateKey, error) {
	if m.recordSeed != "" {
		return signing.ParseSeed(m.recordSeed)
	}
	return signing.LoadKey(m.recordKey)
}

// serveManager opens the event log and the projection, keeps the
// projection folded, and serves the API until ctx ends.
func serveManager(ctx context.Context, m managerSettings, stdout io.Writer, logger *slog.Logger) error {
	if limit, _ := diskspace.ParseBytes(m.memoryLimit); limit > 0 && os.Getenv("GOMEMLIMIT") == "" { // validated
		debug.SetMemoryLimit(int64(limit))
	}
	plain, err := net.Listen("tcp", m.listen)
	if err != nil {
		return fmt.Errorf("manager listen: %w", err)
	}
	defer plain.Close()
	ln := manager.LimitListener(plain, m.maxConnections, logger.With("component", "api"))
	debugCtx, stopDebug := context.WithCancel(ctx)
	defer stopDebug()
	if err := serveDebug(debugCtx, m.debugListen, stdout); err != nil {
		return err
	}

	m.kafka.Logger = logger.With("component", "kafka")
	m.kafka.ClientID = "nebula-manager"
	var trust *signing.Trust
	var consoleKey []byte // nil: a random one (sessions good on this manager only)
	if !m.unsigned {
		key, err := m.signingKey()
		if err != nil {
			return err
		}
		// The console's sessions are signed with a key derived from the
		// record key, which every manager of the cluster holds: a
		// session works behind a load balancer.
		ck := sha256.Sum256(append([]byte("nebula console sessions\x00"), key.Seed()...))
		consoleKey = ck[:]
		signer := signing.NewSigner(key)
		extra, _ := signing.ParsePublicKeys(m.trustedKeys) // validated
		trust = signing.NewTrust(append(extra, signer.Public())...)
		m.kafka.Sign = signer.Sign
		logger.Info("records are signed; the fold rejects records no trusted key signed", "key_id", signing.KeyID(signer.Public()), "trusted", trust.Fingerprint())
	} else {
		logger.Warn("records are not signed (--unsigned-records): whoever can write the event topic can make any change; keep the broker's ACLs tight (deploy/kafka/README.md)")
	}
	openCtx, cancel := context.WithTimeout(ctx, time.Minute)
	log, err := kafkalog.Open(openCtx, m.kafka)
	cancel()
	if err != nil {
		return fmt.Errorf("open the event log at %v: %w", m.kafka.Brokers, err)
	}
	defer log.Close()

	projDir := filepath.Join(m.dataDir, "projection")
	store, err := projections.Open(projDir, logger.With("component", "projection"))
	if err != nil {
		return err
	}
	defer store.Close()
	store.SetTrust(trust)

	// Reporting: the topics, the publisher of incoming reports, and the
	// projection of the device events the reporter writes.
	names, err := m.reports.config()
	if err != nil {
		return err
	}
	topicsCtx, cancelTopics := context.WithTimeout(ctx, time.Minute)
	err = reporter.EnsureTopics(topicsCtx, m.kafka, names)
	cancelTopics()
	if err != nil {
		return err
	}
	pub, err := reporter.NewPublisher(m.kafka, logger.With("component", "reports"))
	if err != nil {
		return err
	}
	defer pub.Close()
	reportStore, err := reports.Open(filepath.Join(m.dataDir, "reports"), m.reportTTL, logger.With("component", "reports"))
	if err != nil {
		return err
	}
	defer reportStore.Close()

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	reportsDone := make(chan struct{})
	go func() {
		defer close(reportsDone)
		reports.Follow(runCtx, reportStore, func(from map[int32]int64) (*kafkalog.TopicReader, error) {
			return kafkalog.NewTopicReader(runCtx, m.kafka, reporter.DeviceEventsTopic, from)
		})
	}()
	defer func() { <-reportsDone }()
	projErr := make(chan error, 1)
	proj := projections.NewProjector(store, log, func(from int64) (projections.RecordReader, error) {
		return log.NewReader(from)
	}, logger.With("component", "projection"))
	minFree, _ := diskspace.ParseBytes(m.minFreeDisk) // validated
	disk := &diskspace.Guard{Dir: m.dataDir, Min: minFree}
	proj.Hold = disk.Check
	history := past.New(store)
	cmds := commands.New(log, store, history)
	controller := &rollouts.Controller{Proj: store, Devices: reportStore, Logger: logger.With("component", "rollouts"),
		Ready:  func() bool { catchingUp, _ := reportStore.CatchingUp(); return proj.Serving() && !catchingUp },
		Decide: rollouts.DecideWith(cmds)}
	api := manager.New(manager.Config{Projection: store, Commands: cmds, Log: log, Logger: logger,
		CacheTime: m.cacheTime, CacheMaxSize: m.cacheMaxSize, Auth: m.auth, Serving: proj.Serving, Rebuilds: proj.Rebuilds, RebuildingAside: proj.RebuildingAside,
		Reports: reportStore, ReportSink: reporter.NewSink(pub, names), EventLog: log, Past: history, Limits: m.limits, Storage: disk.Check,
		Poisoned: poisonedReports(m.kafka, names), ConsoleKey: consoleKey})
	store.OnCommit(api.Invalidate)
	store.OnReset(api.InvalidateAll)
	go func() { projErr <- proj.Run(runCtx) }()
	go controller.Run(runCtx)
	go store.RunGC(runCtx, 10*time.Minute)
	go store.RunVerify(runCtx, projections.DefaultVerifyEvery)
	if m.checkpointKey != "" {
		key, err := signing.LoadKey(m.checkpointKey)
		if err != nil {
			return err
		}
		keyID := hex.EncodeToString(key.Public().(ed25519.PublicKey))[:16]
		go chain.Checkpoint(runCtx, log, store, key, keyID, m.checkpointEvery, logger.With("component", "checkpoints"))
	}

	srv := manager.HTTPServer(api, logger)
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	if m.auth.Enabled && m.auth.User == "" && m.auth.Token == "" {
		logger.Warn("authentication is on and no local admin is configured: only users already in the event log can log in (set BASIC_AUTH_USER and BASIC_AUTH_PASSWORD, or AUTH_TOKEN)")
	}
	if !m.auth.Enabled {
		logger.Warn("authentication is off: anyone who reaches the API is the admin")
	}
	fmt.Fprintf(stdout, "nebula manager: API on http://%s/api/v2 (event log %s on %v, projection in %s)\n",
		ln.Addr(), log.Topic(), m.kafka.Brokers, projDir)
	fmt.Fprintf(stdout, "nebula manager: web console on http://%s/ui/\n", ln.Addr())

	go func() {
		select {
		case <-proj.Ready():
			fmt.Fprintf(stdout, "nebula manager: ready (projection at offset %d)\n", store.Applied())
			if m.ready != nil {
				m.ready("http://" + ln.Addr().String())
			}
		case <-runCtx.Done():
		}
	}()

	var runErr error
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case err := <-srvErr:
			runErr, done = fmt.Errorf("manager HTTP server: %w", err), true
		case err := <-projErr:
			projErr = nil // Run returns once
			if err != nil {
				// Keep serving what is folded: reads stay correct up to
				// the failed offset; writes report the error.
				logger.Error("the projection stopped; serving it as it is until the event log is fixed", "err", err)
			}
		}
	}
	fmt.Fprintln(stdout, "nebula manager: stopping")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Warn("HTTP shutdown", "err", err)
	}
	stop()
	if projErr != nil {
		<-projErr
	}
	return runErr
}
