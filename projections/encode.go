package projections

import (
	"errors"
	"strconv"

	"github.com/nebula-orchestrator/nebula-go/internal/jsonlex"
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
	b = jsonlex.AppendString(b, a.Name)
	b = append(b, `,"app_id":`...)
	b = strconv.AppendInt(b, a.Version, 10)
	b = append(b, `,"docker_image":`...)
	b = jsonlex.AppendString(b, a.DockerImage)
	b = append(b, `,"starting_ports":`...)
	if a.StartingPorts == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range a.StartingPorts {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = jsonlex.AppendMarshaler(b, p); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"containers_per":`...)
	if b, err = a.ContainersPer.AppendJSON(b); err != nil {
		return nil, err
	}
	b = append(b, `,"env_vars":`...)
	b = jsonlex.AppendStringMap(b, a.EnvVars)
	b = append(b, `,"running":`...)
	b = strconv.AppendBool(b, a.Running)
	b = append(b, `,"networks":`...)
	b = jsonlex.AppendStrings(b, a.Networks)
	b = append(b, `,"volumes":`...)
	b = jsonlex.AppendStrings(b, a.Volumes)
	b = append(b, `,"devices":`...)
	b = jsonlex.AppendStrings(b, a.Devices)
	b = append(b, `,"privileged":`...)
	b = strconv.AppendBool(b, a.Privileged)
	b = append(b, `,"rolling_restart":`...)
	b = strconv.AppendBool(b, a.RollingRestart)
	return append(b, '}'), nil
}

func (g DeviceGroup) appendJSON(b []byte) ([]byte, error) {
	if g.Rollout != nil {
		return nil, errSlowPath // a rare field: encoding/json writes it
	}
	b = append(b, `{"device_group":`...)
	b = jsonlex.AppendString(b, g.Name)
	b = append(b, `,"device_group_id":`...)
	b = strconv.AppendInt(b, g.Version, 10)
	b = append(b, `,"prune_id":`...)
	b = strconv.AppendInt(b, g.PruneID, 10)
	b = append(b, `,"apps":`...)
	b = jsonlex.AppendStrings(b, g.Apps)
	b = append(b, `,"cron_jobs":`...)
	b = jsonlex.AppendStrings(b, g.CronJobs)
	return append(b, '}'), nil
}

func (v Verdict) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"offset":`...)
	b = strconv.AppendInt(b, v.Offset, 10)
	b = append(b, `,"type":`...)
	b = jsonlex.AppendString(b, string(v.Type))
	b = append(b, `,"aggregate":{"kind":`...)
	b = jsonlex.AppendString(b, string(v.Aggregate.Kind))
	b = append(b, `,"name":`...)
	b = jsonlex.AppendString(b, v.Aggregate.Name)
	b = append(b, '}')
	if v.CommandID != "" {
		b = append(b, `,"command_id":`...)
		b = jsonlex.AppendString(b, v.CommandID)
	}
	b = append(b, `,"accepted":`...)
	b = strconv.AppendBool(b, v.Accepted)
	if v.Reason != "" {
		b = append(b, `,"reason":`...)
		b = jsonlex.AppendString(b, string(v.Reason))
	}
	if v.Detail != "" {
		b = append(b, `,"detail":`...)
		b = jsonlex.AppendString(b, v.Detail)
	}
	if v.DuplicateOf != 0 {
		b = append(b, `,"duplicate_of":`...)
		b = strconv.AppendInt(b, v.DuplicateOf, 10)
	}
	if v.Missing != nil {
		b = append(b, `,"missing":{"kind":`...)
		b = jsonlex.AppendString(b, string(v.Missing.Kind))
		b = append(b, `,"name":`...)
		b = jsonlex.AppendString(b, v.Missing.Name)
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

var (
	_ appender = App{}
	_ appender = DeviceGroup{}
	_ appender = Verdict{}
)

// errSlowPath: an appender leaves the document to encoding/json.
var errSlowPath = errors.New("document left to encoding/json")
