package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nebula-orchestrator/nebula-go/events"
	"github.com/nebula-orchestrator/nebula-go/internal/testrig/testenv"
	"github.com/nebula-orchestrator/nebula-go/projections"
)

// TestExportAndReplay: `nebula events export` writes every record,
// decoded and raw; `nebula replay --to` rebuilds the projection as of an
// offset in its own directory.
func TestExportAndReplay(t *testing.T) {
	dir := t.TempDir()
	p := testenv.Start(t, nil, "dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--worker=false")
	kafka := p.WaitLine(t, devBroker, 30*time.Second)[1]
	api := p.WaitLine(t, devAPI, 60*time.Second)[1]
	p.WaitLine(t, devReady, 60*time.Second)
	tok, _ := os.ReadFile(dir + "/admin-token")
	token := strings.TrimSpace(string(tok))
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/apps/web", `{"docker_image": "nginx:1"}`},
		{"PATCH", "/apps/web/update", `{"docker_image": "nginx:2"}`},
		{"POST", "/users/alice", `{"password": "alice-password"}`},
	} {
		if code, body := devCall(t, c.method, api+"/api/v2"+c.path, token, c.body); code/100 != 2 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, code, body)
		}
	}

	cmd := exec.Command(testenv.Binary(t), "events", "export", "--kafka-brokers", kafka)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("export: %v %s", err, stderr.String())
	}
	var lines []exportLine
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		var l exportLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 3 || lines[1].Offset != 1 {
		t.Fatalf("%d export lines", len(lines))
	}
	for _, l := range lines {
		if _, err := events.Decode(l.Raw); err != nil {
			t.Fatalf("raw record %d does not decode: %v", l.Offset, err)
		}
	}
	if !strings.Contains(string(lines[1].Event), `"docker_image":"nginx:2"`) {
		t.Fatalf("decoded event %s", lines[1].Event)
	}

	out := t.TempDir()
	rp := exec.Command(testenv.Binary(t), "replay", "--kafka-brokers", kafka, "--to", "0", "--data-dir", out, "--record-key", dir+"/record.key")
	if b, err := rp.CombinedOutput(); err != nil || !strings.Contains(string(b), "as of offset 0") {
		t.Fatalf("replay: %v %s", err, b)
	}
	s, err := projections.Open(out+"/projection", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_ = s.View(func(r projections.Reader) error {
		a, found, _ := r.App("web")
		if !found || a.DockerImage != "nginx:1" {
			t.Fatalf("replayed app %+v found=%v", a, found)
		}
		return nil
	})
}

// TestCheckpointsAndVerify: a manager with a key appends signed
// checkpoints; verify accepts the log and its export, and finds a byte
// flipped in the export.
func TestCheckpointsAndVerify(t *testing.T) {
	dir := t.TempDir()
	seed := strings.Repeat("7e", 32)
	keyFile := dir + "/checkpoint.key"
	if err := os.WriteFile(keyFile, []byte(seed+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := hex.EncodeToString(ed25519.NewKeyFromSeed(mustHex(t, seed)).Public().(ed25519.PublicKey))
	p := testenv.Start(t, nil, "dev", "--data-dir", dir, "--listen", "127.0.0.1:0", "--kafka-listen", "127.0.0.1:0", "--worker=false",
		"--checkpoint-key", keyFile, "--checkpoint-every", "300ms")
	kafka := p.WaitLine(t, devBroker, 30*time.Second)[1]
	api := p.WaitLine(t, devAPI, 60*time.Second)[1]
	p.WaitLine(t, devReady, 60*time.Second)
	tok, _ := os.ReadFile(dir + "/admin-token")
	token := strings.TrimSpace(string(tok))
	for i := range 3 {
		if code, body := devCall(t, "POST", api+"/api/v2/apps/app"+string(rune('a'+i)), token, `{"docker_image": "nginx"}`); code != 200 {
			t.Fatalf("create: %d %s", code, body)
		}
	}
	p.WaitLine(t, regexp.MustCompile(`checkpoint appended.*covers=2`), 30*time.Second)

	run := func(args ...string) (string, int) {
		cmd := exec.Command(testenv.Binary(t), args...)
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := run("events", "verify", "--kafka-brokers", kafka, "--public-key", pub); code != 0 || !strings.Contains(out, "as signed") {
		t.Fatalf("verify the log: exit %d %s", code, out)
	}
	// The audit export through the API, from offset 1 (a part of the
	// log), is proven up to the checkpoint; a byte changed in it is found.
	audit := exec.Command(testenv.Binary(t), "events", "--format", "jsonl", "--from", "1")
	audit.Env = append(os.Environ(), "NEBULA_HOST="+api, "NEBULA_TOKEN="+token)
	auditOut, err := audit.Output()
	if err != nil || !strings.Contains(string(auditOut), `"chain_prev"`) {
		t.Fatalf("nebula events --format jsonl: %v %s", err, auditOut)
	}
	auditFile := dir + "/audit.jsonl"
	if err := os.WriteFile(auditFile, auditOut, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := run("events", "verify", "--export", auditFile, "--public-key", pub); code != 0 || !strings.Contains(out, "offsets 1 to 2 are as signed") {
		t.Fatalf("verify the audit export: exit %d %s", code, out)
	}
	var line1 map[string]any
	if err := json.Unmarshal(auditOut[:bytes.IndexByte(auditOut, '\n')], &line1); err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(line1["raw"].(string))
	line1["raw"] = bytes.Replace(raw, []byte("nginx"), []byte("nginy"), 1)
	changed, _ := json.Marshal(line1)
	if err := os.WriteFile(auditFile, append(append(changed, '\n'), auditOut[bytes.IndexByte(auditOut, '\n')+1:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := run("events", "verify", "--export", auditFile); code != 1 || !strings.Contains(out, "TAMPERED") {
		t.Fatalf("verify a changed audit export: exit %d %s", code, out)
	}

	export := dir + "/export.jsonl"
	out, code := run("events", "export", "--kafka-brokers", kafka)
	if code != 0 {
		t.Fatalf("export: %d %s", code, out)
	}
	// The export on stdout; progress (none here) on stderr.
	if err := os.WriteFile(export, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := run("events", "verify", "--export", export, "--public-key", pub); code != 0 {
		t.Fatalf("verify the export: exit %d %s", code, out)
	}
	if out, code := run("events", "verify", "--export", export, "--public-key", strings.Repeat("00", 32)); code != 1 || !strings.Contains(out, "not signed") {
		t.Fatalf("verify with another key: exit %d %s", code, out)
	}
	// Each line carries the chain after its record, whatever --from says.
	full := strings.Split(strings.TrimSpace(out), "\n")
	part, code := run("events", "export", "--kafka-brokers", kafka, "--from", "2")
	var inFull, inPart exportLine
	if code != 0 || json.Unmarshal([]byte(full[2]), &inFull) != nil || json.Unmarshal([]byte(strings.Split(part, "\n")[0]), &inPart) != nil {
		t.Fatalf("export --from 2: exit %d %s", code, part)
	}
	if inFull.Offset != 2 || inPart.Offset != 2 || len(inFull.Chain) != 64 || inFull.Chain != inPart.Chain {
		t.Fatalf("chain of offset 2: %d %q in the full export, %d %q from offset 2", inFull.Offset, inFull.Chain, inPart.Offset, inPart.Chain)
	}
	// A chain link changed in the export is found.
	forged := strings.Replace(full[0], `"chain":"`, `"chain":"00`, 1)
	if err := os.WriteFile(dir+"/forged.jsonl", []byte(forged+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := run("events", "verify", "--export", dir+"/forged.jsonl"); code != 1 || !strings.Contains(out, "chain link") {
		t.Fatalf("verify an export with a changed chain link: exit %d %s", code, out)
	}
	// Flip one byte of record 1 (inside its JSON string, so it stays JSON).
	lines := strings.Split(strings.TrimSpace(out0(t, export)), "\n")
	var l exportLine
	if err := json.Unmarshal([]byte(lines[1]), &l); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(l.Raw, []byte("nginx"))
	l.Raw[i] = 'N'
	b, _ := json.Marshal(l)
	lines[1] = string(b)
	if err := os.WriteFile(export, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = run("events", "verify", "--export", export, "--public-key", pub)
	if code != 1 || !strings.Contains(out, "TAMPERED") || !strings.Contains(out, "chain link exported with offset 1") {
		t.Fatalf("verify a tampered export: exit %d %s", code, out)
	}
	// Without the chain links (a forger who drops them), the signed
	// checkpoint still finds the change.
	for i, line := range lines {
		var l exportLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatal(err)
		}
		l.Chain = ""
		b, _ := json.Marshal(l)
		lines[i] = string(b)
	}
	if err := os.WriteFile(export, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = run("events", "verify", "--export", export, "--public-key", pub)
	if code != 1 || !strings.Contains(out, "TAMPERED") || !strings.Contains(out, "between offsets 0 and") {
		t.Fatalf("verify a tampered export without chain links: exit %d %s", code, out)
	}
}

func mustHex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func out0(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
