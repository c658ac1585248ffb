package worker

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"
)

// Config is the worker's configuration (Nebula 2.7's worker settings).
type Config struct {
	Group string
	// Manager is the manager's base URI (NEBULA_MANAGER_URI, or built from
	// NEBULA_MANAGER_PROTOCOL/HOST/PORT); /api/v2/... is appended.
	Manager string
	// Credentials: Token (Bearer) wins over User/Password (Basic).
	User, Password, Token string
	// CheckIn is the time between polls of a manager without long-poll,
	// and the longest wait of one long-poll.
	CheckIn time.Duration
	// NoLongPoll polls every CheckIn as Nebula 2.7 did, instead of
	// holding a request open until the config changes (for proxies
	// that cut long requests, and to measure plain polling).
	NoLongPoll bool
	// RequestTimeout bounds one request (plus CheckIn for a long-poll).
	RequestTimeout time.Duration
	// Registry, when set, are the credentials of pulls.
	Registry *RegistryAuth
	// Pull says when images are pulled: PullAlways ("" too), PullMissing
	// or PullNever.
	Pull PullPolicy
	// MaxRestartWait: each app waits a random time up to this before its
	// running containers are replaced or restarted, so that the devices
	// of a group do not all restart at once.
	MaxRestartWait time.Duration
	// StateDir keeps the device ID, the last config and unsent reports
	// ("" keeps nothing: simulated devices).
	StateDir string
	// HTTPClient, when set, is used for the manager (simulations share
	// one); RequestTimeout+CheckIn bounds a request otherwise.
	HTTPClient *http.Client
	// DeviceID identifies the device in its reports and polls.
	DeviceID string
	// Labels describe the device (NEBULA_DEVICE_LABELS): a rollout puts
	// the devices with its canary labels in its first wave.
	Labels map[string]string
	// ReportInterval: a report after each change and at least this often
	// (0: no reports). ReportOnUpdateOnly: only after changes.
	ReportInterval     time.Duration
	ReportOnUpdateOnly bool
	// FullReportEvery: between full reports, a report due when nothing
	// changed since the last one is a heartbeat (identity and applied
	// version, a few dozen bytes); a full one goes at least this often (0:
	// full reports only, as 2.7's workers). A manager that refuses
	// heartbeats (older than they) gets full reports from then on.
	FullReportEvery time.Duration
	// ReportSink, when set, takes the reports instead of the manager's
	// HTTP endpoint (straight to Kafka, as Nebula 2.7's workers did).
	ReportSink interface {
		Publish(ctx context.Context, deviceID string, report []byte) error
	}
	Host   Host
	Logger *slog.Logger
}

// PullPolicy says when the worker pulls an app's image.
type PullPolicy string

// Pull policies.
const (
	// PullAlways pulls at every new version of an app (a tag pushed
	// again is picked up), and retries a failed pull until it works, as
	// Nebula 2.7 pulled at every change.
	PullAlways PullPolicy = "always"
	// PullMissing pulls only images the host does not have: for images
	// loaded by hand (docker load) on sites with no registry, and links
	// that should not carry pulls of what is there.
	PullMissing PullPolicy = "missing"
	// PullNever never pulls: every image is loaded by hand.
	PullNever PullPolicy = "never"
)

// ParsePullPolicy reads a pull policy ("" is PullAlways).
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch p := PullPolicy(s); p {
	case "", PullAlways:
		return PullAlways, nil
	case PullMissing, PullNever:
		return p, nil
	}
	return "", fmt.Errorf("pull policy %q: must be always, missing or never", s)
}

// wantsPull says whether policy p pulls an image the host has (found)
// or not, at a new version of its app (changed), or when a pull of it
// failed before (pending).
func (p PullPolicy) wantsPull(found, changed, pending bool) bool {
	switch p {
	case PullNever:
		return false
	case PullMissing:
		return !found
	}
	return !found || changed || pending
}
