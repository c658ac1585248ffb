package projections

import (
	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/jsonlex"
)

// Reading documents back is what folding a change costs most (an app's
// document is decoded for every patch of it), and what serving them costs.
// These readers take the documents the appenders write without
// reflection; on anything else they give up and getDoc uses
// json.Unmarshal. FuzzDocumentDecoding holds them to json.Unmarshal's
// result.

// docReader is a document that reads its own JSON, or reports that it
// cannot (and is then left to json.Unmarshal).
type docReader interface {
	readJSON(b []byte) bool
}

func (a *App) readJSON(b []byte) bool {
	l := jsonlex.New(b, 0)
	l.Object(func(k []byte) {
		switch string(k) {
		case "app_name":
			a.Name = l.Str()
		case "app_id":
			a.Version = l.Int()
		default:
			l.Fail(!events.ReadAppSpecField(l, k, &a.AppSpec))
		}
	})
	return !l.Bad() && l.End()
}

func (g *DeviceGroup) readJSON(b []byte) bool {
	l := jsonlex.New(b, 0)
	l.Object(func(k []byte) {
		switch string(k) {
		case "device_group":
			g.Name = l.Str()
		case "device_group_id":
			g.Version = l.Int()
		case "prune_id":
			g.PruneID = l.Int()
		default:
			l.Fail(!events.ReadDeviceGroupSpecField(l, k, &g.DeviceGroupSpec))
		}
	})
	return !l.Bad() && l.End()
}

// nameList is an index document: a sorted list of names.
type nameList []string

func (n *nameList) readJSON(b []byte) bool {
	l := jsonlex.New(b, 0)
	*n = l.Strings()
	return !l.Bad() && l.End()
}

// readFast reads b into doc if doc has a reader and it can.
func readFast[T any](b []byte, doc *T) bool {
	switch d := any(doc).(type) {
	case docReader:
		return d.readJSON(b)
	case *[]string:
		return (*nameList)(d).readJSON(b)
	}
	return false
}
