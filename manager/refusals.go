package manager

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// A report the manager refuses is never silent: it is counted by reason
// (nebula_reports_refused_total in /metrics), logged (at most one line per
// reason every RefusalLogEvery, with how many were not logged), and kept
// among the last RecentRefusals for GET /api/v2/reports/refused. Reports
// written straight to Kafka are refused by the reporter, which sends them
// to the poison topic with the reason (docs/reports.md).

// Refusal reasons.
const (
	refusedInvalid   = "invalid"      // the body is not a report we accept
	refusedForbidden = "forbidden"    // the credentials may not report for the group
	refusedMoves     = "moves_device" // it names another group's device (rw needed)
	refusedTooLarge  = "too_large"    // over the body limit
)

// RecentRefusals is how many refused reports a manager keeps.
const RecentRefusals = 100

// RefusalLogEvery is how often a reason is logged at most.
const RefusalLogEvery = 10 * time.Second

// PoisonedReports reads the last n reports the reporters refused (the
// poison topic), newest first, as Refusals.
type PoisonedReports func(ctx context.Context, n int) ([]Refusal, error)

// Refusal is one refused report.
type Refusal struct {
	Time        time.Time `json:"time"`
	Reason      string    `json:"reason"`
	Detail      string    `json:"detail"`
	DeviceID    string    `json:"device_id,omitempty"`
	DeviceGroup string    `json:"device_group,omitempty"`
	Hostname    string    `json:"hostname,omitempty"`
	Actor       string    `json:"actor,omitempty"`
	Remote      string    `json:"remote,omitempty"`
}

type refusals struct {
	logger     *slog.Logger
	mu         sync.Mutex
	counts     map[string]uint64
	recent     []Refusal // oldest first, at most RecentRefusals
	lastLog    map[string]time.Time
	suppressed map[string]int
}

func newRefusals(logger *slog.Logger) *refusals {
	return &refusals{logger: logger, counts: map[string]uint64{}, lastLog: map[string]time.Time{}, suppressed: map[string]int{}}
}

// add records a refusal and logs it unless its reason was logged less
// than RefusalLogEvery ago.
func (f *refusals) add(r Refusal) {
	f.mu.Lock()
	f.counts[r.Reason]++
	if len(f.recent) == RecentRefusals {
		f.recent = f.recent[1:]
	}
	f.recent = append(f.recent, r)
	log := r.Time.Sub(f.lastLog[r.Reason]) >= RefusalLogEvery
	skipped := f.suppressed[r.Reason]
	if log {
		f.lastLog[r.Reason], f.suppressed[r.Reason] = r.Time, 0
	} else {
		f.suppressed[r.Reason]++
	}
	f.mu.Unlock()
	if log {
		f.logger.Warn("report refused", "reason", r.Reason, "detail", r.Detail, "device_id", r.DeviceID, "device_group", r.DeviceGroup,
			"hostname", r.Hostname, "actor", r.Actor, "remote", r.Remote, "refused_since_last_line", skipped)
	}
}

// list is the recent refusals, newest first.
func (f *refusals) list() []Refusal {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.recent)
	slices.Reverse(out)
	return out
}

// writeMetrics writes nebula_reports_refused_total by reason.
func (f *refusals) writeMetrics(w io.Writer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	header(w, "nebula_reports_refused_total", "counter", "Reports this manager refused over HTTP, by reason (GET /api/v2/reports/refused lists the last ones).")
	for _, reason := range []string{refusedInvalid, refusedForbidden, refusedMoves, refusedTooLarge} {
		fmt.Fprintf(w, "nebula_reports_refused_total{reason=%q} %d\n", reason, f.counts[reason])
	}
}

// refusedReports is GET /api/v2/reports/refused (admin): the reports this
// manager refused lately, newest first (?limit, default and most
// RecentRefusals).
func (s *Server) refusedReports(w http.ResponseWriter, r *http.Request) {
	limit := RecentRefusals
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > RecentRefusals {
			writeJSON(w, http.StatusBadRequest, map[string]any{"invalid_parameters": []string{fmt.Sprintf("limit: an integer from 1 to %d", RecentRefusals)}})
			return
		}
		limit = n
	}
	list := s.refused.list()
	answer := map[string]any{"refused": list[:min(limit, len(list))], "count_by_reason": s.refused.countsCopy()}
	if s.poisoned != nil {
		// What the reporters refused (reports written to Kafka, 2.7's
		// workers among them), from the poison topic.
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		p, err := s.poisoned(ctx, limit)
		answer["poisoned"] = p
		if err != nil {
			answer["poisoned_error"] = "the poison topic could not be read whole: " + err.Error()
		}
	}
	writeJSON(w, http.StatusOK, answer)
}

func (f *refusals) countsCopy() map[string]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]uint64, len(f.counts))
	for k, v := range f.counts {
		out[k] = v
	}
	return out
}
