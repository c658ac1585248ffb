package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/reporter"
	"github.com/nebula-orchestrator/nebula-go/worker"
	"github.com/nebula-orchestrator/nebula-go/worker/dockerengine"
)

// workerSettings are the worker's flags (Nebula 2.7's worker variables).
type workerSettings struct {
	labels                              string
	cfg                                 worker.Config
	kafka                               kafkaFlags
	host, protocol, uri                 string
	port                                int
	registryUser, registryPass, regHost string
	pull                                string
	longPoll                            bool
}

func addWorkerFlags(f *flags, w *workerSettings) {
	f.String(&w.cfg.Group, "device-group", "", "the device group of this device (required)", "DEVICE_GROUP")
	f.String(&w.uri, "manager-uri", "", "manager base URI, e.g. https://h:8080/nebula (wins over host/port/protocol)", "NEBULA_MANAGER_URI")
	f.String(&w.host, "manager-host", "", "manager host name or IP", "NEBULA_MANAGER_HOST")
	f.Int(&w.port, "manager-port", 80, "manager port", "NEBULA_MANAGER_PORT")
	f.String(&w.protocol, "manager-protocol", "http", "http or https", "NEBULA_MANAGER_PROTOCOL")
	f.String(&w.cfg.User, "manager-auth-user", "", "Basic user", "NEBULA_MANAGER_AUTH_USER")
	f.String(&w.cfg.Password, "manager-auth-password", "", "Basic password (prefer the environment variable)", "NEBULA_MANAGER_AUTH_PASSWORD")
	f.String(&w.cfg.Token, "manager-auth-token", "", "Bearer token, wins over Basic (prefer the environment variable)", "NEBULA_MANAGER_AUTH_TOKEN")
	f.Duration(&w.cfg.RequestTimeout, "manager-request-timeout", 60*time.Second, "timeout of one request", "NEBULA_MANAGER_REQUEST_TIMEOUT")
	f.Duration(&w.cfg.CheckIn, "manager-check-in-time", 30*time.Second, "time between polls (with a manager that long-polls: the longest wait)", "NEBULA_MANAGER_CHECK_IN_TIME")
	f.String(&w.registryUser, "registry-auth-user", "", `registry user for pulls ("skip": none)`, "REGISTRY_AUTH_USER")
	f.String(&w.registryPass, "registry-auth-password", "", `registry password ("skip": none)`, "REGISTRY_AUTH_PASSWORD")
	f.String(&w.regHost, "registry-host", "https://index.docker.io/v1/", "registry the credentials are for", "REGISTRY_HOST")
	f.String(&w.pull, "pull", "always", "when images are pulled: always (at every new version of an app, as 2.7), missing (only images the host lacks: images loaded by hand), never", "NEBULA_PULL")
	f.Bool(&w.longPoll, "long-poll", true, "hold each poll open until the config changes (false: poll every check-in time, as 2.7)", "NEBULA_LONG_POLL")
	f.Duration(&w.cfg.ReportInterval, "report-interval", 30*time.Second, "a status report to the manager after each change and at least this often (0: none)", "NEBULA_REPORT_INTERVAL")
	f.Bool(&w.cfg.ReportOnUpdateOnly, "report-on-update-only", false, "report only after changes", "REPORT_ON_UPDATE_ONLY")
	f.Duration(&w.cfg.FullReportEvery, "full-report-every", 10*time.Minute, "when nothing changed, a report is a heartbeat (who the device is, its version); "+
		"a full report goes at least this often (0: full reports only, as 2.7's workers)", "NEBULA_FULL_REPORT_EVERY")
	f.String(&w.labels, "device-labels", "", "labels of this device, key=value,...: a rollout puts the devices with its canary labels in its first wave (e.g. ring=canary,site=berlin)", "NEBULA_DEVICE_LABELS")
	f.String(&w.cfg.Host.NamePrefix, "container-name-prefix", "", "prefix of container names (several workers on one engine)", "NEBULA_CONTAINER_NAME_PREFIX")
	f.Duration(&w.cfg.MaxRestartWait, "max-restart-wait", 0, "random wait up to this before an app's containers are replaced", "MAX_RESTART_WAIT_IN_SECONDS")
}

// config returns the validated worker configuration.
func (w *workerSettings) config(dataDir string) (worker.Config, error) {
	cfg := w.cfg
	cfg.NoLongPoll = !w.longPoll
	var errs []error
	if labels, err := events.ParseLabels(w.labels); err != nil {
		errs = append(errs, fmt.Errorf("device labels: %w", err))
	} else if len(labels) > 0 {
		cfg.Labels = labels
	}
	if cfg.Group == "" {
		errs = append(errs, errors.New("no device group: give --device-group or DEVICE_GROUP"))
	} else if err := events.ValidateName(events.KindDeviceGroup, cfg.Group); err != nil {
		errs = append(errs, fmt.Errorf("device group %q: %w (the manager has no group of that name)", cfg.Group, err))
	}
	switch {
	case w.uri != "":
		u, err := url.Parse(w.uri)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("manager URI %q is not an http(s) URL", w.uri))
		}
		cfg.Manager = w.uri
	case w.host != "":
		if w.protocol != "http" && w.protocol != "https" {
			errs = append(errs, fmt.Errorf("manager protocol %q is not http or https", w.protocol))
		}
		if w.port < 1 || w.port > 65535 {
			errs = append(errs, fmt.Errorf("manager port %d is not 1-65535", w.port))
		}
		cfg.Manager = w.protocol + "://" + net.JoinHostPort(w.host, strconv.Itoa(w.port))
	default:
		errs = append(errs, errors.New("no manager: give --manager-uri, or --manager-host (NEBULA_MANAGER_URI, NEBULA_MANAGER_HOST)"))
	}
	if p := cfg.Host.NamePrefix; p != "" {
		// Container names are the prefix, then the app's name.
		if err := events.ValidateName(events.KindApp, p); err != nil {
			errs = append(errs, fmt.Errorf("container name prefix %q: %w (Docker would refuse every container's name)", p, err))
		}
	}
	if cfg.CheckIn <= 0 || cfg.RequestTimeout <= 0 {
		errs = append(errs, errors.New("check-in time and request timeout must be positive"))
	}
	if cfg.ReportInterval < 0 || cfg.FullReportEvery < 0 {
		errs = append(errs, errors.New("report interval and full report interval must not be negative"))
	}
	if cfg.MaxRestartWait < 0 {
		errs = append(errs, errors.New("max restart wait is negative"))
	}
	if w.registryUser != "" && w.registryUser != "skip" && w.registryPass != "skip" {
		cfg.Registry = &worker.RegistryAuth{Host: w.regHost, User: w.registryUser, Password: w.registryPass}
	}
	pull, err := worker.ParsePullPolicy(w.pull)
	if err != nil {
		errs = append(errs, err)
	}
	cfg.Pull = pull
	cfg.StateDir = dataDir
	return cfg, errors.Join(errs...)
}

func runWorker(ctx context.Context, args []string, stdout io.Writer, logger *slog.Logger) error {
	var w workerSettings
	var dataDir string
	f := newFlags("worker", "Runs the device agent: polls DEVICE_GROUP's config from the manager and reconciles the local\n"+
		"Docker engine to it (DOCKER_HOST, or the local socket). App containers outlive the agent.", args)
	addWorkerFlags(f, &w)
	// Nebula 2.7's reporting settings: with KAFKA_BOOTSTRAP_SERVERS set,
	// reports go straight to Kafka instead of the manager.
	addKafkaFlags(f, &w.kafka)
	var reports reportsFlags
	addReportsTopicFlag(f, &reports)
	f.String(&dataDir, "data-dir", "nebula-worker", "directory of the device ID and the last config (for offline restarts)", "NEBULA_DATA_DIR")
	if err := f.Parse(args); err != nil {
		return usageError{err}
	}
	cfg, err := w.config(dataDir)
	if err != nil {
		return usageError{err}
	}
	if w.kafka.brokers != "" {
		kcfg, err := w.kafka.config()
		if err != nil {
			return usageError{err}
		}
		kcfg.Topic = ""
		names, err := reports.config()
		if err != nil {
			return usageError{err}
		}
		names = names.WithDefaults()
		pub, err := reporter.NewPublisher(kcfg, logger.With("component", "reports"))
		if err != nil {
			return err
		}
		defer pub.Close()
		cfg.ReportSink = reporter.NewSink(pub, names)
		fmt.Fprintf(stdout, "nebula worker: reports go to Kafka at %v (topic %s)\n", kcfg.Brokers, names.Reports)
	}
	return serveWorker(ctx, cfg, stdout, logger)
}

// serveWorker runs the agent against the local Docker engine.
func serveWorker(ctx context.Context, cfg worker.Config, stdout io.Writer, logger *slog.Logger) error {
	engine, err := dockerengine.New()
	if err != nil {
		return err
	}
	defer engine.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = engine.Ping(pingCtx)
	cancel()
	if err != nil {
		return err
	}
	id, err := worker.DeviceID(cfg.StateDir)
	if err != nil {
		return fmt.Errorf("device ID in %s: %w", cfg.StateDir, err)
	}
	if cfg.Host.CPUs == 0 {
		prefix := cfg.Host.NamePrefix
		cfg.Host = worker.DetectHost()
		cfg.Host.NamePrefix = prefix
	}
	cfg.Logger = logger.With("device_id", id)
	cfg.DeviceID = id
	fmt.Fprintf(stdout, "nebula worker: device %s in group %s, manager %s, %.1f CPUs, %d MiB\n", id, cfg.Group, cfg.Manager, cfg.Host.CPUs, cfg.Host.MemoryMB)
	err = worker.NewAgent(cfg, engine).Run(ctx)
	fmt.Fprintln(stdout, "nebula worker: stopping (app containers keep running)")
	return err
}
