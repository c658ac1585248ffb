package cronexpr

import (
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	good := map[string]Schedule{
		"* * * * *":      {Minute: 1<<60 - 1, Hour: 1<<24 - 1, Dom: (1<<32 - 1) &^ 1, Month: (1<<13 - 1) &^ 1, Dow: 1<<7 - 1, DomStar: true, DowStar: true},
		"*/15 0 1 jan 7": {Minute: 1 | 1<<15 | 1<<30 | 1<<45, Hour: 1, Dom: 1 << 1, Month: 1 << 1, Dow: 1},
		"5-7,9 * * * MON-wed": {Minute: 1<<5 | 1<<6 | 1<<7 | 1<<9, Hour: 1<<24 - 1, Dom: (1<<32 - 1) &^ 1,
			Month: (1<<13 - 1) &^ 1, Dow: 1<<1 | 1<<2 | 1<<3, DomStar: true},
		"30/10 * * * *": {Minute: 1<<30 | 1<<40 | 1<<50, Hour: 1<<24 - 1, Dom: (1<<32 - 1) &^ 1, Month: (1<<13 - 1) &^ 1, Dow: 1<<7 - 1, DomStar: true, DowStar: true},
	}
	for expr, want := range good {
		got, err := Parse(expr)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", expr, got, err, want)
		}
	}
	if h, err := Parse("@hourly"); err != nil || h.Minute != 1 {
		t.Errorf("@hourly = %+v, %v", h, err)
	}
	for _, bad := range []string{"", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
		"* * * * 8", "5-1 * * * *", "*/0 * * * *", "a * * * *", "1,,2 * * * *", "@reboot"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/5 1-3 * jan,feb sun", "@daily"} {
		f.Add(s)
	}
	base := time.Date(2026, 3, 7, 23, 59, 0, 0, time.UTC)
	zones := []*time.Location{time.UTC}
	if ny, err := time.LoadLocation("America/New_York"); err == nil {
		zones = append(zones, ny)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sched, err := Parse(s)
		if err != nil {
			return
		}
		for _, z := range zones {
			from := base.In(z)
			next := sched.Next(from) // must end (five years at most)
			if !next.IsZero() && (!next.After(from) || next.Second() != 0) {
				t.Fatalf("%q: next after %v is %v", s, from, next)
			}
		}
	})
}

func TestNext(t *testing.T) {
	base := time.Date(2026, 11, 25, 14, 30, 20, 0, time.UTC) // a Wednesday
	for _, c := range []struct{ expr, want string }{
		{"* * * * *", "2026-11-25T14:31:00Z"},
		{"*/15 * * * *", "2026-11-25T14:45:00Z"},
		{"0 * * * *", "2026-11-25T15:00:00Z"},
		{"@daily", "2026-11-26T00:00:00Z"},
		{"0 9 * * mon", "2026-11-30T09:00:00Z"},
		{"0 0 1 1 *", "2027-01-01T00:00:00Z"},
		{"0 0 29 2 *", "2028-02-29T00:00:00Z"},
		{"0 12 1 * fri", "2026-11-27T12:00:00Z"}, // either day field
		{"0 0 30 2 *", "0001-01-01T00:00:00Z"},   // never
	} {
		s, err := Parse(c.expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Next(base).Format(time.RFC3339); got != c.want {
			t.Errorf("%s after %s: %s, want %s", c.expr, base.Format(time.RFC3339), got, c.want)
		}
	}
	for expr, fires := range map[string]bool{"0 0 30 2 *": false, "0 0 31 4,6,9,11 *": false, "0 0 29 2 *": true, "@hourly": true, "0 0 31 4 mon": true} {
		s, err := Parse(expr)
		if err != nil || s.Fires() != fires {
			t.Errorf("%s: Fires() = %v (%v), want %v", expr, s.Fires(), err, fires)
		}
	}
	// In the device's zone, across a DST change.
	ny, err := time.LoadLocation("America/New_York")
	if err == nil {
		s, _ := Parse("30 2 * * *") // 02:30 does not exist on 2026-03-08 in New York
		got := s.Next(time.Date(2026, 3, 7, 12, 0, 0, 0, ny))
		if got.Day() != 8 && got.Day() != 9 {
			t.Errorf("across DST: %v", got)
		}
	}
}
