package reports

import (
	"slices"
	"strconv"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/jsonlex"
)

// A device entry is written at every report of the device and read by
// every listing of the inventory: appendJSON and readJSON write and read
// it without reflection. TestDeviceDocument and FuzzDeviceDocument hold
// them to json.Marshal and json.Unmarshal.

func (d Device) appendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"device_id":`...)
	b = jsonlex.AppendString(b, d.DeviceID)
	b = append(b, `,"device_group":`...)
	b = jsonlex.AppendString(b, d.DeviceGroup)
	b = append(b, `,"hostname":`...)
	b = jsonlex.AppendString(b, d.Hostname)
	if len(d.Labels) > 0 {
		keys := make([]string, 0, len(d.Labels))
		for k := range d.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, `,"labels":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonlex.AppendString(b, k)
			b = append(b, ':')
			b = jsonlex.AppendString(b, d.Labels[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"last_seen":`...)
	if b, err = jsonlex.AppendMarshaler(b, d.LastSeen); err != nil {
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
			b = jsonlex.AppendString(b, a.Name)
			b = append(b, `,"version":`...)
			b = strconv.AppendInt(b, a.Version, 10)
			b = append(b, `,"status":`...)
			b = jsonlex.AppendString(b, a.Status)
			b = append(b, `,"running":`...)
			b = strconv.AppendInt(b, int64(a.Running), 10)
			b = append(b, `,"expected":`...)
			b = strconv.AppendInt(b, int64(a.Expected), 10)
			if a.Error != "" {
				b = append(b, `,"error":`...)
				b = jsonlex.AppendString(b, a.Error)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"errors":`...)
	b = jsonlex.AppendStrings(b, d.Errors)
	b = append(b, `,"silent":`...)
	b = strconv.AppendBool(b, d.Silent)
	b = append(b, `,"converged_version":`...)
	b = strconv.AppendInt(b, d.ConvergedAt, 10)
	b = append(b, `,"status_changed_at":`...)
	if b, err = jsonlex.AppendMarshaler(b, d.StatusChangedAt); err != nil {
		return nil, err
	}
	if d.Failure != "" {
		b = append(b, `,"failure":`...)
		b = jsonlex.AppendString(b, d.Failure)
	}
	return append(b, '}'), nil
}

func (d *Device) readJSON(b []byte) bool {
	l := jsonlex.New(b, 0)
	l.Object(func(k []byte) {
		switch string(k) {
		case "device_id":
			d.DeviceID = l.Str()
		case "device_group":
			d.DeviceGroup = l.Str()
		case "hostname":
			d.Hostname = l.Str()
		case "labels":
			l.Fail(l.Null()) // encoding/json leaves a map it meets as null alone
			if d.Labels == nil {
				d.Labels = map[string]string{}
			}
			l.Object(func(k []byte) { d.Labels[string(k)] = l.Str() })
		case "last_seen":
			d.LastSeen = l.Time()
		case "applied_version":
			d.AppliedVersion = l.Int()
		case "apps_status":
			d.Apps = events.ReadAppStatuses(l)
		case "errors":
			d.Errors = l.StringsOrNull()
		case "silent":
			d.Silent = l.Bool()
		case "converged_version":
			d.ConvergedAt = l.Int()
		case "status_changed_at":
			d.StatusChangedAt = l.Time()
		case "failure":
			d.Failure = l.Str()
		default:
			l.Fail(true)
		}
	})
	return !l.Bad() && l.End()
}
