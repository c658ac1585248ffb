// Package cronexpr parses standard 5-field cron expressions
// (minute hour day-of-month month day-of-week) and the @-macros, the
// dialect Nebula 2.7 accepted through croniter.
package cronexpr

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed expression: one bit set per allowed value.
type Schedule struct {
	Minute, Hour, Dom, Month, Dow uint64
	// DomStar and DowStar record a '*' day field: cron fires on a match
	// of either day field unless one of them is '*'.
	DomStar, DowStar bool
}

type field struct {
	name     string
	min, max int
	names    []string // names[i] is the value min+i
}

var fields = [5]field{
	{name: "minute", min: 0, max: 59},
	{name: "hour", min: 0, max: 23},
	{name: "day of month", min: 1, max: 31},
	{name: "month", min: 1, max: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{name: "day of week", min: 0, max: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}},
}

var macros = map[string]string{
	"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
	"@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

// Parse parses expr, reporting which field is wrong.
func Parse(expr string) (Schedule, error) {
	expr = strings.TrimSpace(expr)
	if m, ok := macros[strings.ToLower(expr)]; ok {
		expr = m
	}
	parts := strings.Fields(expr)
	if len(parts) != 5 {
		return Schedule{}, fmt.Errorf("cron schedule %q must have 5 fields (minute hour day-of-month month day-of-week), has %d", expr, len(parts))
	}
	var s Schedule
	bits := [5]*uint64{&s.Minute, &s.Hour, &s.Dom, &s.Month, &s.Dow}
	for i, p := range parts {
		b, err := parseField(p, fields[i])
		if err != nil {
			return Schedule{}, fmt.Errorf("cron schedule %q: %s field %q: %w", expr, fields[i].name, p, err)
		}
		*bits[i] = b
	}
	if s.Dow&(1<<7) != 0 { // 7 is Sunday too
		s.Dow |= 1
		s.Dow &^= 1 << 7
	}
	s.DomStar = parts[2] == "*" || parts[2] == "?"
	s.DowStar = parts[4] == "*" || parts[4] == "?"
	return s, nil
}

func parseField(p string, f field) (uint64, error) {
	var bits uint64
	for _, item := range strings.Split(p, ",") {
		rng, stepStr, hasStep := strings.Cut(item, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > f.max {
				return 0, fmt.Errorf("step %q must be an integer from 1 to %d", stepStr, f.max)
			}
			step = n
		}
		lo, hi := f.min, f.max
		switch {
		case rng == "*" || rng == "?":
		case strings.Contains(rng, "-"):
			a, b, _ := strings.Cut(rng, "-")
			var err error
			if lo, err = value(a, f); err != nil {
				return 0, err
			}
			if hi, err = value(b, f); err != nil {
				return 0, err
			}
			if lo > hi {
				return 0, fmt.Errorf("range %q runs backwards", rng)
			}
		default:
			v, err := value(rng, f)
			if err != nil {
				return 0, err
			}
			lo = v
			if hasStep {
				hi = f.max
			} else {
				hi = v
			}
		}
		for v := lo; v <= hi; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

func value(s string, f field) (int, error) {
	for i, n := range f.names {
		if strings.EqualFold(s, n) {
			return f.min + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < f.min || n > f.max {
		return 0, fmt.Errorf("%d is outside %d-%d", n, f.min, f.max)
	}
	return n, nil
}

// Next returns the first time after t (to the minute, in t's location)
// that the schedule matches, or the zero time if none within five years
// (a schedule like "0 0 30 2 *" never fires).
func (s Schedule) Next(t time.Time) time.Time {
	loc := t.Location()
	t = t.Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		var next time.Time
		switch {
		case s.Month&(1<<uint(t.Month())) == 0:
			next = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, loc)
		case !s.dayMatches(t):
			next = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		case s.Hour&(1<<uint(t.Hour())) == 0:
			next = t.Add(time.Hour - time.Duration(t.Minute())*time.Minute)
		case s.Minute&(1<<uint(t.Minute())) == 0:
			next = t.Add(time.Minute)
		default:
			return t
		}
		// A local midnight that does not exist (a DST change) may be
		// normalised backwards: always move forward.
		if !next.After(t) {
			next = t.Add(time.Hour - time.Duration(t.Minute())*time.Minute)
		}
		t = next
	}
	return time.Time{}
}

// Fires reports whether the schedule ever matches: "0 0 30 2 *" parses
// but never fires. It looks from a fixed date over five years (a leap year
// included), so every caller gets the same answer whenever it asks.
func (s Schedule) Fires() bool {
	return !s.Next(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero()
}

// dayMatches applies cron's day rule: with both day fields restricted, a
// match of either is enough.
func (s Schedule) dayMatches(t time.Time) bool {
	dom := s.Dom&(1<<uint(t.Day())) != 0
	dow := s.Dow&(1<<uint(t.Weekday())) != 0
	switch {
	case s.DomStar && s.DowStar:
		return true
	case s.DomStar:
		return dow
	case s.DowStar:
		return dom
	}
	return dom || dow
}
