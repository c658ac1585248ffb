package manager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/nebula-orchestrator/nebula-go/commands"
	"github.com/nebula-orchestrator/nebula-go/events"
)

// Request bodies. Nebula 2.7 read them with request.json and stored what
// it found; these decoders keep its keys, defaults and error bodies, and
// add the type checks it lacked. Every problem is reported at once.

// bodyError is a request body that cannot be turned into a command: the
// status and the JSON body of the answer.
type bodyError struct {
	status int
	body   map[string]any
}

func (e *bodyError) Error() string { return fmt.Sprintf("bad request body: %v", e.body) }

func missingParams(v any) *bodyError {
	return &bodyError{400, map[string]any{"missing_parameters": v}}
}

// fieldErrors collects per-field problems.
type fieldErrors []string

func (f *fieldErrors) add(field string, err error) {
	if err != nil {
		*f = append(*f, field+": "+err.Error())
	}
}

// err returns the 400 answer for the collected problems, nil if none.
func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &bodyError{400, invalidBody(f)}
}

// invalidBody is the 400 body for invalid fields: Nebula's own keys where
// it had one ("starting_ports": "invalid port", "schedule_valid": false),
// and "invalid_parameters" listing every problem.
func invalidBody(problems []string) map[string]any {
	body := map[string]any{"invalid_parameters": problems}
	for _, p := range problems {
		switch {
		case strings.HasPrefix(p, "starting_ports"):
			body["starting_ports"] = "invalid port"
		case strings.HasPrefix(p, "schedule"):
			body["schedule_valid"] = false
		}
	}
	return body
}

// object parses a body that must be a JSON object. Nebula answered an
// unparseable body with the endpoint's "missing parameters" error, given
// here as onBad.
func object(body []byte, onBad *bodyError) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return nil, onBad
	}
	return m, nil
}

// field decodes m[key] into dst when present and not null; it reports
// whether it was present.
func field[T any](m map[string]json.RawMessage, key string, dst *T, errs *fieldErrors) bool {
	raw, ok := m[key]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return false
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		errs.add(key, typeError(err))
		return false
	}
	if at, found := nullInside(raw); found {
		errs.add(key+at, errNullInside)
		return false
	}
	return true
}

var errNullInside = errors.New("must not be null")

// nullInside finds a null among the elements of a list or the values of
// an object ("[2]", ".A"): encoding/json would read it as "" or 0 and the
// spec would keep that instead of refusing it.
func nullInside(raw json.RawMessage) (string, bool) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) == nil {
		for i, v := range list {
			if string(bytes.TrimSpace(v)) == "null" {
				return fmt.Sprintf("[%d]", i), true
			}
		}
		return "", false
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) == nil {
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			if string(bytes.TrimSpace(obj[k])) == "null" {
				return "." + k, true
			}
		}
	}
	return "", false
}

// typeError makes encoding/json's message about a field readable.
func typeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("must be %s, not a JSON %s", jsonKind(te.Type.Kind().String()), te.Value)
	}
	return err
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "map", "struct":
		return "an object"
	case "int", "int64", "float64":
		return "a number"
	}
	return k
}

// unknownKeys is the 400 answer for keys a patch does not know (Nebula
// 2.7 wrote them into the document).
func unknownKeys(m map[string]json.RawMessage, known ...string) error {
	var unknown []string
	for k := range m {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return &bodyError{400, map[string]any{"unknown_parameters": unknown, "known_parameters": known}}
}

var appKeys = slices.Concat([]string{"docker_image", "starting_ports", "containers_per"}, runKeys, []string{"rolling_restart"})

// appSpecBody reads the body of an app create or full update: absent keys
// take the create defaults (also on update, where 2.7 reset env_vars to a
// list), unknown keys are ignored as 2.7 did.
func appSpecBody(body []byte) (events.AppSpec, error) {
	m, err := object(body, missingParams([]string{"docker_image"}))
	if err != nil {
		return events.AppSpec{}, err
	}
	var image string
	var errs fieldErrors
	if !field(m, "docker_image", &image, &errs) && len(errs) == 0 {
		return events.AppSpec{}, missingParams([]string{"docker_image"})
	}
	s := events.NewAppSpec(image)
	field(m, "starting_ports", &s.StartingPorts, &errs)
	field(m, "containers_per", &s.ContainersPer, &errs)
	runFields(m, &s.RunSpec, &errs)
	field(m, "rolling_restart", &s.RollingRestart, &errs)
	if err := errs.err(); err != nil {
		return s, err
	}
	return s, nil
}

// appPatchBody reads a partial app update: at least one known key, no
// unknown key, no nulls.
func appPatchBody(body []byte) (events.AppPatch, error) {
	var p events.AppPatch
	m, err := object(body, missingParams(true))
	if err != nil {
		return p, err
	}
	if len(m) == 0 {
		return p, missingParams(true)
	}
	if err := unknownKeys(m, appKeys...); err != nil {
		return p, err
	}
	var errs fieldErrors
	optional(m, "docker_image", &p.DockerImage, &errs)
	optional(m, "starting_ports", &p.StartingPorts, &errs)
	optional(m, "containers_per", &p.ContainersPer, &errs)
	runPatchFields(m, &p.RunPatch, &errs)
	optional(m, "rolling_restart", &p.RollingRestart, &errs)
	return p, errs.err()
}

// runKeys are the keys of what apps and cron jobs share (events.RunSpec).
var runKeys = []string{"env_vars", "running", "networks", "volumes", "devices", "privileged"}

// runFields reads the keys of events.RunSpec that the body gives over r's
// defaults.
func runFields(m map[string]json.RawMessage, r *events.RunSpec, errs *fieldErrors) {
	if field(m, "env_vars", &r.EnvVars, errs) {
		r.EnvVars = orEmpty(r.EnvVars)
	}
	field(m, "running", &r.Running, errs)
	field(m, "networks", &r.Networks, errs)
	field(m, "volumes", &r.Volumes, errs)
	field(m, "devices", &r.Devices, errs)
	field(m, "privileged", &r.Privileged, errs)
}

// runPatchFields reads the keys of events.RunPatch the body gives.
func runPatchFields(m map[string]json.RawMessage, p *events.RunPatch, errs *fieldErrors) {
	optional(m, "env_vars", &p.EnvVars, errs)
	optional(m, "running", &p.Running, errs)
	optional(m, "networks", &p.Networks, errs)
	optional(m, "volumes", &p.Volumes, errs)
	optional(m, "devices", &p.Devices, errs)
	optional(m, "privileged", &p.Privileged, errs)
}

// optional decodes m[key] into a new *T; null is an error (a patch sets
// values, it cannot unset them).
func optional[T any](m map[string]json.RawMessage, key string, dst **T, errs *fieldErrors) {
	raw, ok := m[key]
	if !ok {
		return
	}
	if string(bytes.TrimSpace(raw)) == "null" {
		errs.add(key, errors.New("must not be null"))
		return
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		errs.add(key, typeError(err))
		return
	}
	if at, found := nullInside(raw); found {
		errs.add(key+at, errNullInside)
		return
	}
	*dst = v
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// problems lists the field errors inside a validation error.
func problems(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if e == events.ErrInvalid {
			return
		}
		if fe, ok := e.(*events.FieldError); ok {
			out = append(out, fe.Error())
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var fe *events.FieldError
		if u := errors.Unwrap(e); u != nil && errors.As(u, &fe) {
			walk(u) // a context around field errors ("app.created \"web\": ...")
			return
		}
		out = append(out, strings.TrimPrefix(e.Error(), "invalid: "))
	}
	walk(err)
	return out
}

// groupSpecBody reads a device group create or full update: apps and
// cron_jobs, each a list, absent = empty. Other keys are refused: 2.7
// ignored them, so a misspelt "app" in a full update emptied the group and
// stopped its apps on every device.
func groupSpecBody(body []byte) (events.DeviceGroupSpec, error) {
	s := events.DeviceGroupSpec{Apps: []string{}, CronJobs: []string{}}
	m, err := object(body, missingParams(true))
	if err != nil {
		return s, err
	}
	if err := unknownKeys(m, "apps", "cron_jobs", "rollout"); err != nil {
		return s, err
	}
	if err := listField(m, "cron_jobs", &s.CronJobs); err != nil {
		return s, err
	}
	if err := listField(m, "apps", &s.Apps); err != nil {
		return s, err
	}
	s.Rollout, err = rolloutField(m)
	return s, err
}

// rolloutField reads a device group's rollout policy (absent: none).
func rolloutField(m map[string]json.RawMessage) (*events.RolloutPolicy, error) {
	raw, ok := m["rollout"]
	if !ok {
		return nil, nil
	}
	var p events.RolloutPolicy
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, &bodyError{400, invalidBody([]string{"rollout: an object (leave it out for none)"})}
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, &bodyError{400, invalidBody([]string{err.Error()})}
	}
	return &p, nil
}

// listField reads a list of names; not a list is Nebula's
// {"<key>_is_list": false}.
func listField(m map[string]json.RawMessage, key string, dst *[]string) error {
	raw, ok := m[key]
	if !ok {
		return nil
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil || l == nil {
		return &bodyError{400, map[string]any{key + "_is_list": false}}
	}
	if at, found := nullInside(raw); found {
		return &bodyError{400, invalidBody([]string{key + at + ": " + errNullInside.Error()})}
	}
	*dst = l
	return nil
}

// groupPatchBody reads a partial device group update.
func groupPatchBody(body []byte) (events.DeviceGroupPatch, error) {
	var p events.DeviceGroupPatch
	m, err := object(body, missingParams(true))
	if err != nil {
		return p, err
	}
	if len(m) == 0 {
		return p, missingParams(true)
	}
	if err := unknownKeys(m, "apps", "cron_jobs", "rollout"); err != nil {
		return p, err
	}
	if p.Rollout, err = rolloutField(m); err != nil {
		return p, err
	}
	for _, k := range []string{"cron_jobs", "apps"} {
		if _, ok := m[k]; !ok {
			continue
		}
		l := []string{}
		if err := listField(m, k, &l); err != nil {
			return p, err
		}
		if k == "apps" {
			p.Apps = &l
		} else {
			p.CronJobs = &l
		}
	}
	return p, nil
}

var cronKeys = append([]string{"schedule", "docker_image"}, runKeys...)

// cronSpecBody reads a cron job create or full update. networks defaults
// to Nebula's app default (2.7's empty default on create crashed workers).
func cronSpecBody(body []byte) (events.CronJobSpec, error) {
	m, err := object(body, missingParams([]string{"docker_image", "schedule"}))
	if err != nil {
		return events.CronJobSpec{}, err
	}
	var image, schedule string
	var errs fieldErrors
	var missing []string
	if !field(m, "docker_image", &image, &errs) {
		missing = append(missing, "docker_image")
	}
	if !field(m, "schedule", &schedule, &errs) {
		missing = append(missing, "schedule")
	}
	if len(errs) == 0 && len(missing) > 0 {
		return events.CronJobSpec{}, missingParams(missing)
	}
	s := events.NewCronJobSpec(schedule, image)
	runFields(m, &s.RunSpec, &errs)
	if err := errs.err(); err != nil {
		return s, err
	}
	return s, nil
}

// cronPatchBody reads a partial cron job update.
func cronPatchBody(body []byte) (events.CronJobPatch, error) {
	var p events.CronJobPatch
	m, err := object(body, missingParams(true))
	if err != nil {
		return p, err
	}
	if len(m) == 0 {
		return p, missingParams(true)
	}
	if err := unknownKeys(m, cronKeys...); err != nil {
		return p, err
	}
	var errs fieldErrors
	optional(m, "schedule", &p.Schedule, &errs)
	optional(m, "docker_image", &p.DockerImage, &errs)
	runPatchFields(m, &p.RunPatch, &errs)
	return p, errs.err()
}

// secretsBody reads a user create or update: {"password"?, "token"?}.
func secretsBody(body []byte, update bool) (commands.Secrets, error) {
	var sec commands.Secrets
	m, err := object(body, missingParams(true))
	if err != nil {
		return sec, err
	}
	if update && len(m) == 0 {
		return sec, missingParams(true)
	}
	if err := unknownKeys(m, "password", "token"); err != nil {
		return sec, err
	}
	var errs fieldErrors
	optional(m, "password", &sec.Password, &errs)
	optional(m, "token", &sec.Token, &errs)
	return sec, errs.err()
}

var userGroupKeys = []string{"group_members", "pruning_allowed", "apps", "device_groups", "cron_jobs", "admin"}

// userGroupSpecBody reads a user group create: absent keys take the empty
// defaults; keys Nebula does not declare are refused, as in 2.7.
func userGroupSpecBody(body []byte) (events.UserGroupSpec, error) {
	s := events.NewUserGroupSpec()
	m, err := object(body, missingParams([]string{"user_group"}))
	if err != nil {
		return s, err
	}
	if err := unknownKeys(m, userGroupKeys...); err != nil {
		return s, err
	}
	var p events.UserGroupPatch
	var errs fieldErrors
	decodeUserGroup(m, &p, &errs)
	if err := errs.err(); err != nil {
		return s, err
	}
	s = p.Apply(s)
	return s, nil
}

// userGroupPatchBody reads a user group update.
func userGroupPatchBody(body []byte) (events.UserGroupPatch, error) {
	var p events.UserGroupPatch
	m, err := object(body, missingParams(true))
	if err != nil {
		return p, err
	}
	if len(m) == 0 {
		return p, missingParams(true)
	}
	if err := unknownKeys(m, userGroupKeys...); err != nil {
		return p, err
	}
	var errs fieldErrors
	decodeUserGroup(m, &p, &errs)
	return p, errs.err()
}

func decodeUserGroup(m map[string]json.RawMessage, p *events.UserGroupPatch, errs *fieldErrors) {
	optional(m, "group_members", &p.GroupMembers, errs)
	optional(m, "pruning_allowed", &p.PruningAllowed, errs)
	optional(m, "apps", &p.Apps, errs)
	optional(m, "device_groups", &p.DeviceGroups, errs)
	optional(m, "cron_jobs", &p.CronJobs, errs)
	optional(m, "admin", &p.Admin, errs)
}
