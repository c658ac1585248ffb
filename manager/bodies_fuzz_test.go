package manager

import (
	"errors"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
)

// Every decoder either returns a value or a *bodyError (a 4xx answer);
// never another error, never a panic. Decoders only decode: a value whose
// event the log would refuse must be refused by the payload's own
// validation (which the command runs first, answering 400), never reach
// the log.

func checkDecoded(t *testing.T, err error, p events.Payload, kind events.Kind) {
	t.Helper()
	if err != nil {
		var be *bodyError
		if !errors.As(err, &be) || be.status < 400 || be.status > 499 {
			t.Fatalf("decoder error %v is not a 4xx answer", err)
		}
		return
	}
	env := events.Envelope{Type: p.EventType(), Aggregate: events.Aggregate{Kind: kind, Name: "x"}, Actor: "fuzz", Time: time.Unix(0, 0), Payload: p}
	b, err := events.Encode(env)
	if err != nil {
		v, ok := p.(interface{ Validate() error })
		if !ok || v.Validate() == nil {
			t.Fatalf("decoded body makes an event the log refuses and the command's validation lets through: %v", err)
		}
		return
	}
	if _, err := events.Decode(b); err != nil {
		t.Fatalf("decoded body makes an event that does not decode: %v\n%s", err, b)
	}
}

func seeds(f *testing.F, bodies ...string) {
	for _, b := range bodies {
		f.Add([]byte(b))
	}
}

func FuzzAppBodies(f *testing.F) {
	seeds(f, `{"docker_image":"nginx","starting_ports":[80,{"81":"8080"}],"containers_per":{"cpu":0.5},"env_vars":{"A":"1"}}`,
		`{"docker_image":"nginx","networks":["host"],"volumes":["/a:/b:ro"],"devices":["/dev/x"]}`, `{}`, `null`, `[]`, `{"running":null}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, err := appSpecBody(b)
		checkDecoded(t, err, events.AppCreatedV{Spec: spec}, events.KindApp)
		patch, err := appPatchBody(b)
		if err == nil && patch.Empty() {
			t.Fatalf("empty patch accepted from %q", b)
		}
		if err != nil {
			checkDecoded(t, err, nil, events.KindApp)
		}
	})
}

func FuzzGroupBodies(f *testing.F) {
	seeds(f, `{"apps":["a","b"],"cron_jobs":["c"]}`, `{"apps":"a"}`, `{"apps":[1]}`, `{}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, err := groupSpecBody(b)
		checkDecoded(t, err, events.DeviceGroupCreatedV{Spec: spec}, events.KindDeviceGroup)
		patch, err := groupPatchBody(b)
		if err == nil {
			checkDecoded(t, nil, events.DeviceGroupPatchedV{Patch: patch}, events.KindDeviceGroup)
		} else {
			checkDecoded(t, err, nil, events.KindDeviceGroup)
		}
	})
}

func FuzzCronBodies(f *testing.F) {
	seeds(f, `{"docker_image":"x","schedule":"*/5 * * * *"}`, `{"schedule":"@daily"}`, `{"docker_image":"x","schedule":"0 0 31 2 *"}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, err := cronSpecBody(b)
		checkDecoded(t, err, events.CronJobCreatedV{Spec: spec}, events.KindCronJob)
		if _, err := cronPatchBody(b); err != nil {
			checkDecoded(t, err, nil, events.KindCronJob)
		}
	})
}

func FuzzUserBodies(f *testing.F) {
	seeds(f, `{"password":"p4ssword","token":"tok"}`, `{"group_members":["u"],"apps":{"a":"rw"},"admin":true}`, `{"apps":{"a":"x"}}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, update := range []bool{false, true} {
			if _, err := secretsBody(b, update); err != nil {
				checkDecoded(t, err, nil, events.KindUser)
			}
		}
		spec, err := userGroupSpecBody(b)
		checkDecoded(t, err, events.UserGroupCreatedV{Spec: spec}, events.KindUserGroup)
		if _, err := userGroupPatchBody(b); err != nil {
			checkDecoded(t, err, nil, events.KindUserGroup)
		}
	})
}
