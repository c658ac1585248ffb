package reports

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// AppliedVersion is a step of a device's story: the first report of the
// device that showed a version (or a group) other than the one before.
type AppliedVersion struct {
	// Version is the config version the device applied (its group's
	// device_group_id that it ran), DeviceGroup the group it was in.
	Version     int64  `json:"version"`
	DeviceGroup string `json:"device_group"`
	// At is the time of the report that first showed it, Report its ID.
	At     time.Time `json:"at"`
	Report string    `json:"report_id"`
	// Previous is the version the device reported before (0: none), and
	// PreviousGroup its group then, when it moved.
	Previous      int64  `json:"previous_version"`
	PreviousGroup string `json:"previous_device_group,omitempty"`
}

func appliedKey(device, report string) []byte {
	k := append(append([]byte(nil), prefixApplied...), device...)
	return append(append(k, 0), report...)
}

func putApplied(w *batch, device, report string, a AppliedVersion) error {
	if a.PreviousGroup == a.DeviceGroup {
		a.PreviousGroup = ""
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	w.set(badger.NewEntry(appliedKey(device, report), b))
	return nil
}

// AppliedVersions returns up to limit steps of the device's story, oldest
// first, after the report ID after ("": from its first), and whether more
// follow. It reads that device's steps only.
func (s *Store) AppliedVersions(device, after string, limit int) ([]AppliedVersion, bool, error) {
	out := []AppliedVersion{}
	more := false
	prefix := appliedKey(device, "")
	err := s.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		seek := prefix
		if after != "" {
			seek = append(appliedKey(device, after), 0) // the first key past it
		}
		for it.Seek(seek); it.Valid(); it.Next() {
			if len(out) == limit {
				more = true
				return nil
			}
			var a AppliedVersion
			err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &a) })
			if err != nil {
				return fmt.Errorf("device %s history entry %q is corrupt: %w", device, it.Item().Key(), err)
			}
			out = append(out, a)
		}
		return nil
	})
	return out, more, err
}
