package cronexpr

import "testing"

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
	f.Fuzz(func(t *testing.T, s string) { _, _ = Parse(s) })
}
