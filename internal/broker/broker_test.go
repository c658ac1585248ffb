package broker

import (
	"strings"
	"testing"
)

// TestConfigNeedsCredentialsBeyondLoopback (finding 6 of issue 22): the
// embedded broker refuses to listen beyond this machine without a SASL
// user, since whoever can write the event log can make any change.
func TestConfigNeedsCredentialsBeyondLoopback(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string // "" = valid
	}{
		{Config{Listen: "127.0.0.1:9092"}, ""},
		{Config{Listen: "localhost:9092"}, ""},
		{Config{Listen: "[::1]:9092"}, ""},
		{Config{Listen: "10.1.2.3:9092"}, "reachable beyond this machine"},
		{Config{Listen: "10.1.2.3:9092", SASLUser: "nebula", SASLPassword: "a-long-enough-password"}, ""},
		{Config{Listen: "10.1.2.3:9092", SASLUser: "nebula", SASLPassword: "short"}, "at least 12"},
	} {
		err := c.cfg.Validate()
		if (c.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
	}
}
