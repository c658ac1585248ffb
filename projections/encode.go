package projections

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
)

// The fold writes an app or device group document and a verdict for almost
// every record, and json.Marshal (reflection, then a second pass to compact
// and check what the spec types' MarshalJSON wrote) was the largest part of
// folding an app event. These appenders write the same bytes directly;
// TestDocumentEncodingMatchesJSON and FuzzDocumentEncoding hold them to
// json.Marshal byte for byte, so readers and the API see no difference.

// appender is a document that writes its own JSON, byte-identical to
// json.Marshal's.
type appender interface {
	// appendJSON fails only where json.Marshal would (a MarshalJSON
	// error); putDoc then lets json.Marshal report it.
	appendJSON(b []byte) ([]byte, error)
}

func (a App) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"app_name":`...)
	b = appendString(b, a.Name)
	b = append(b, `,"app_id":`...)
	b = strconv.AppendInt(b, a.Version, 10)
	b = append(b, `,"docker_image":`...)
	b = appendString(b, a.DockerImage)
	b = append(b, `,"starting_ports":`...)
	if a.StartingPorts == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range a.StartingPorts {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendMarshaler(b, p); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"containers_per":`...)
	if b, err = appendMarshaler(b, a.ContainersPer); err != nil {
		return nil, err
	}
	b = append(b, `,"env_vars":`...)
	b = appendStringMap(b, a.EnvVars)
	b = append(b, `,"running":`...)
	b = strconv.AppendBool(b, a.Running)
	b = append(b, `,"networks":`...)
	b = appendStrings(b, a.Networks)
	b = append(b, `,"volumes":`...)
	b = appendStrings(b, a.Volumes)
	b = append(b, `,"devices":`...)
	b = appendStrings(b, a.Devices)
	b = append(b, `,"privileged":`...)
	b = strconv.AppendBool(b, a.Privileged)
	b = append(b, `,"rolling_restart":`...)
	b = strconv.AppendBool(b, a.RollingRestart)
	return append(b, '}'), nil
}

func (g DeviceGroup) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"device_group":`...)
	b = appendString(b, g.Name)
	b = append(b, `,"device_group_id":`...)
	b = strconv.AppendInt(b, g.Version, 10)
	b = append(b, `,"prune_id":`...)
	b = strconv.AppendInt(b, g.PruneID, 10)
	b = append(b, `,"apps":`...)
	b = appendStrings(b, g.Apps)
	b = append(b, `,"cron_jobs":`...)
	b = appendStrings(b, g.CronJobs)
	return append(b, '}'), nil
}

func (v Verdict) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"offset":`...)
	b = strconv.AppendInt(b, v.Offset, 10)
	b = append(b, `,"type":`...)
	b = appendString(b, string(v.Type))
	b = append(b, `,"aggregate":{"kind":`...)
	b = appendString(b, string(v.Aggregate.Kind))
	b = append(b, `,"name":`...)
	b = appendString(b, v.Aggregate.Name)
	b = append(b, '}')
	if v.CommandID != "" {
		b = append(b, `,"command_id":`...)
		b = appendString(b, v.CommandID)
	}
	b = append(b, `,"accepted":`...)
	b = strconv.AppendBool(b, v.Accepted)
	if v.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, string(v.Reason))
	}
	if v.Detail != "" {
		b = append(b, `,"detail":`...)
		b = appendString(b, v.Detail)
	}
	if v.DuplicateOf != 0 {
		b = append(b, `,"duplicate_of":`...)
		b = strconv.AppendInt(b, v.DuplicateOf, 10)
	}
	if v.Missing != nil {
		b = append(b, `,"missing":{"kind":`...)
		b = appendString(b, string(v.Missing.Kind))
		b = append(b, `,"name":`...)
		b = appendString(b, v.Missing.Name)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

func (d Device) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"device_id":`...)
	b = appendString(b, d.DeviceID)
	b = append(b, `,"device_group":`...)
	b = appendString(b, d.DeviceGroup)
	b = append(b, `,"hostname":`...)
	b = appendString(b, d.Hostname)
	b = append(b, `,"last_seen":`...)
	if b, err = appendMarshaler(b, d.LastSeen); err != nil {
		return nil, err
	}
	b = append(b, `,"applied_version":`...)
	b = strconv.AppendInt(b, d.AppliedVersion, 10)
	b = append(b, `,"apps_status":`...)
	if d.Apps == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, a := range d.Apps {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, a.Name)
			b = append(b, `,"version":`...)
			b = strconv.AppendInt(b, a.Version, 10)
			b = append(b, `,"status":`...)
			b = appendString(b, a.Status)
			b = append(b, `,"running":`...)
			b = strconv.AppendInt(b, int64(a.Running), 10)
			b = append(b, `,"expected":`...)
			b = strconv.AppendInt(b, int64(a.Expected), 10)
			if a.Error != "" {
				b = append(b, `,"error":`...)
				b = appendString(b, a.Error)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"errors":`...)
	b = appendStrings(b, d.Errors)
	b = append(b, `,"silent":`...)
	b = strconv.AppendBool(b, d.Silent)
	b = append(b, `,"converged_version":`...)
	b = strconv.AppendInt(b, d.ConvergedAt, 10)
	b = append(b, `,"status_changed_at":`...)
	if b, err = appendMarshaler(b, d.StatusChangedAt); err != nil {
		return nil, err
	}
	if d.Failure != "" {
		b = append(b, `,"failure":`...)
		b = appendString(b, d.Failure)
	}
	return append(b, '}'), nil
}

// appendString writes s as json.Marshal does. Printable ASCII that needs
// no escape (the usual name, image or path) is copied; anything else goes
// through json.Marshal, so the escaping rules stay encoding/json's.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendStringMap writes the map with its keys sorted, as json.Marshal.
func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendMarshaler appends what the spec types' MarshalJSON write (compact,
// and without the characters json.Marshal would escape in it).
func appendMarshaler(b []byte, m json.Marshaler) ([]byte, error) {
	out, err := m.MarshalJSON()
	return append(b, out...), err
}

var (
	_ appender = App{}
	_ appender = DeviceGroup{}
	_ appender = Verdict{}
	_ appender = Device{}
)
