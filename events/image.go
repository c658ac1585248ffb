package events

import (
	"fmt"
	"strings"
)

// ValidateImage checks a Docker image reference:
// `[registry[:port]/]path[:tag][@sha256:<64 hex>]`, with lower-case path
// components as Docker requires. Digests are supported (Nebula 2.7 split
// them on ':' and broke them).
func ValidateImage(ref string) error {
	if ref == "" {
		return fmt.Errorf("image reference is empty")
	}
	if len(ref) > 512 || strings.ContainsAny(ref, " \t\r\n\x00") {
		return fmt.Errorf("image reference %.40q has whitespace or is longer than 512 characters", ref)
	}
	name := ref
	if i := strings.Index(name, "@"); i >= 0 {
		digest := name[i+1:]
		name = name[:i]
		hex, ok := strings.CutPrefix(digest, "sha256:")
		if !ok || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
			return fmt.Errorf("image %q: digest must be sha256: followed by 64 lower-case hex digits", ref)
		}
	}
	var stack [8]string // strings.Split's components, on the stack for a usual reference
	comps := stack[:0]
	for rest := name; ; {
		c, after, more := strings.Cut(rest, "/")
		comps = append(comps, c)
		if !more {
			break
		}
		rest = after
	}
	last := comps[len(comps)-1]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		tag := last[i+1:]
		comps[len(comps)-1] = last[:i]
		if !validTag(tag) {
			return fmt.Errorf("image %q: tag %q must be 1-128 of [A-Za-z0-9_.-], not starting with . or -", ref, tag)
		}
	}
	if len(comps) > 1 && looksLikeRegistry(comps[0]) {
		if !validRegistry(comps[0]) {
			return fmt.Errorf("image %q: registry %q is not host[:port]", ref, comps[0])
		}
		comps = comps[1:]
	}
	for _, c := range comps {
		if !validPathComponent(c) {
			return fmt.Errorf("image %q: path component %q must be lower-case letters and digits separated by . _ __ or -", ref, c)
		}
	}
	return nil
}

// looksLikeRegistry applies Docker's rule: the first component is a
// registry when it contains '.' or ':' or is "localhost".
func looksLikeRegistry(c string) bool {
	return strings.ContainsAny(c, ".:") || c == "localhost"
}

func validRegistry(r string) bool {
	host, port, hasPort := strings.Cut(r, ":")
	if host == "" {
		return false
	}
	for _, ch := range host {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '-') {
			return false
		}
	}
	if hasPort {
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return false
		}
	}
	return true
}

func validTag(t string) bool {
	if t == "" || len(t) > 128 || t[0] == '.' || t[0] == '-' {
		return false
	}
	for _, ch := range t {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '.' || ch == '-') {
			return false
		}
	}
	return true
}

func validPathComponent(c string) bool {
	if c == "" {
		return false
	}
	prevSep := true // a component may not start with a separator
	for i := 0; i < len(c); i++ {
		ch := c[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= '0' && ch <= '9':
			prevSep = false
		case ch == '.' || ch == '-' || ch == '_':
			if prevSep && !(ch == '_' && i > 0 && c[i-1] == '_') && !(ch == '-' && i > 0 && c[i-1] == '-') {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	return !prevSep
}
