package worker

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Info is the device group config /info serves.
type Info struct {
	Apps          []App     `json:"apps"`
	AppsList      []string  `json:"apps_list"`
	PruneID       int64     `json:"prune_id"`
	CronJobs      []CronJob `json:"cron_jobs"`
	CronJobsList  []string  `json:"cron_jobs_list"`
	DeviceGroupID int64     `json:"device_group_id"`
}

// CronJob is one cron job of the group's config.
type CronJob struct {
	Name    string `json:"cron_job_name"`
	Version int64  `json:"cron_job_id"`
	events.CronJobSpec
}

// State is what the worker keeps on the device, so that after a reboot
// with no manager reachable it brings the containers back.
type State struct {
	// Group the config is of; a state of another group is not used.
	Group string `json:"device_group"`
	// Info is the last config received, ETag its version.
	Info *Info  `json:"info,omitempty"`
	ETag string `json:"etag,omitempty"`
	// Applied are the app versions the containers were made from.
	Applied map[string]int64 `json:"applied"`
	// PruneID is the last prune_id acted on.
	PruneID int64 `json:"prune_id"`
	// PullPending are the images whose last pull failed: the copy on the
	// device may be older than the registry's (a tag pushed again during
	// the outage), so the pull is retried, with backoff, until it works,
	// even when no new version comes.
	PullPending map[string]bool `json:"pull_pending,omitempty"`
}

const (
	stateFile    = "state.json"
	deviceIDFile = "device-id"
)

// ErrStateCorrupt: the state file is not a state (a disk fault).
var ErrStateCorrupt = errors.New("worker state is corrupt")

// SetStateAside renames a corrupt state file to state.json.corrupt-<time>
// and returns the new path: the worker starts afresh (it adopts the
// containers that match its config) rather than not at all.
func SetStateAside(dir string) (string, error) {
	path := filepath.Join(dir, stateFile)
	aside := path + ".corrupt-" + time.Now().UTC().Format("20060102T150405Z")
	return aside, os.Rename(path, aside)
}

// LoadState reads the state in dir; a missing file is an empty state.
func LoadState(dir string) (State, error) {
	st := State{Applied: map[string]int64{}}
	if dir == "" { // no state kept (simulated devices)
		return st, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{Applied: map[string]int64{}}, fmt.Errorf("%w: %s: %w", ErrStateCorrupt, filepath.Join(dir, stateFile), err)
	}
	if st.Applied == nil {
		st.Applied = map[string]int64{}
	}
	return st, nil
}

// SaveState writes the state atomically (write, sync, rename).
func SaveState(dir string, st State) error {
	if dir == "" {
		return nil
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, stateFile), b)
}

func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// DeviceID returns the device's ID, generated once and kept in dir: stable
// across reboots and renames, unlike the hostname.
func DeviceID(dir string) (string, error) {
	path := filepath.Join(dir, deviceIDFile)
	b, err := os.ReadFile(path)
	if err == nil {
		if id := strings.TrimSpace(string(b)); id != "" {
			if err := events.ValidateDeviceID(id); err != nil {
				// The manager would refuse every report of this device.
				return "", fmt.Errorf("the device ID in %s (%q) is not valid: %w; fix it, or delete the file to get a new one", path, id, err)
			}
			return id, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	var r [16]byte
	_, _ = rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return id, writeAtomic(path, []byte(id+"\n"))
}
