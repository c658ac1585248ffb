package worker

import (
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

func TestCronDueAndMissed(t *testing.T) {
	a := NewAgent(Config{Group: "g"}, nil)
	r := a.cron
	now := time.Date(2026, 11, 25, 10, 0, 30, 0, time.UTC)
	r.now = func() time.Time { return now }
	gone := r.update([]CronJob{
		{Name: "every-minute", Version: 1, CronJobSpec: cronSpec("* * * * *")},
		{Name: "hourly", Version: 1, CronJobSpec: cronSpec("@hourly")},
		{Name: "broken", Version: 1, CronJobSpec: cronSpec("61 * * * *")},
	})
	if len(gone) != 0 {
		t.Fatalf("gone %v", gone)
	}
	if _, ok := r.jobs["broken"]; ok {
		t.Fatal("a job with a bad schedule was scheduled")
	}
	jobs, _, wake := r.due(now)
	if len(jobs) != 0 || !wake.Equal(time.Date(2026, 11, 25, 10, 1, 0, 0, time.UTC)) {
		t.Fatalf("at 10:00:30: due %v, wake %v", jobs, wake)
	}
	// The worker was busy from 10:01 to 10:05:30: the job runs once, and
	// the four runs it missed are counted.
	now = time.Date(2026, 11, 25, 10, 5, 30, 0, time.UTC)
	jobs, missed, wake := r.due(now)
	if len(jobs) != 1 || jobs[0].Name != "every-minute" || missed[0] != 4 {
		t.Fatalf("at 10:05:30: due %v missed %v", jobs, missed)
	}
	if !wake.Equal(time.Date(2026, 11, 25, 10, 6, 0, 0, time.UTC)) {
		t.Fatalf("wake %v", wake)
	}
	// A new version is rescheduled from now; a job that left is reported.
	gone = r.update([]CronJob{{Name: "hourly", Version: 2, CronJobSpec: cronSpec("*/10 * * * *")}})
	if len(gone) != 1 || gone[0] != "every-minute" {
		t.Fatalf("gone %v", gone)
	}
	if next := r.jobs["hourly"].next; !next.Equal(time.Date(2026, 11, 25, 10, 10, 0, 0, time.UTC)) {
		t.Fatalf("rescheduled next %v", next)
	}
}

func TestOursKeepsGroupAnd27Containers(t *testing.T) {
	got := ours([]Container{{Name: "a-1", Group: "g"}, {Name: "b-1", Group: "other"}, {Name: "old-1"},
		{Name: "d2-a-1", Group: "g", Device: "d2"}, {Name: "d1-a-1", Group: "g", Device: "d1"}}, "g", "d1")
	if len(got) != 3 || got[0].Name != "a-1" || got[1].Name != "old-1" || got[2].Name != "d1-a-1" {
		t.Fatalf("%+v", got)
	}
}

// cronSpec is a running cron job's spec on schedule.
func cronSpec(schedule string) events.CronJobSpec {
	return events.CronJobSpec{Schedule: schedule, RunSpec: events.RunSpec{Running: true}}
}
