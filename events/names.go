package events

import (
	"errors"
	"fmt"
)

// ErrInvalid marks input that breaks a rule of this package: a bad name, a
// malformed specification, an undecodable record.
var ErrInvalid = errors.New("invalid")

// Name length limits. App and cron job names become Docker container names
// and DNS names on the device's nebula network (`<app>-<n>`,
// `<cron_job>-<unix time>-1`), which must fit a 63-character DNS label.
const (
	MaxContainerNameLen = 48
	MaxNameLen          = 128
)

// ValidateName checks the name of an aggregate of the given kind:
// `[a-zA-Z0-9][a-zA-Z0-9_.-]*` (user names may also contain `@`, so an
// e-mail address works), at most MaxContainerNameLen characters for apps
// and cron jobs and MaxNameLen for the others. Fleet events have no name.
func ValidateName(kind Kind, name string) error {
	if kind == KindFleet || kind == KindLog {
		if name != "" {
			return fmt.Errorf("%w: %s events have no aggregate name (got %q)", ErrInvalid, kind, name)
		}
		return nil
	}
	limit := MaxNameLen
	if kind == KindApp || kind == KindCronJob {
		limit = MaxContainerNameLen
	}
	if name == "" {
		return fmt.Errorf("%w: %s name is empty", ErrInvalid, kind)
	}
	if len(name) > limit {
		return fmt.Errorf("%w: %s name %.20q... is %d characters, the limit is %d", ErrInvalid, kind, name, len(name), limit)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '.' || c == '-'):
		case i > 0 && c == '@' && kind == KindUser:
		default:
			return fmt.Errorf("%w: %s name %q: character %q at position %d is not allowed (use letters, digits, and _ . - after the first)", ErrInvalid, kind, name, c, i+1)
		}
	}
	return nil
}
