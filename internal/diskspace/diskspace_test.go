package diskspace

import "testing"

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]uint64{"512MiB": 512 << 20, "1GB": 1e9, "300M": 300 << 20, "4096": 4096, "0": 0, "1.5GiB": 3 << 29} {
		got, err := ParseBytes(in)
		if err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "lots", "-1MB", "5XB", "1e30TB"} {
		if _, err := ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q) accepted", bad)
		}
	}
}

// TestGuard: against the real file system of a temporary directory.
func TestGuard(t *testing.T) {
	dir := t.TempDir()
	free, err := Free(dir)
	if err != nil || free == 0 {
		t.Fatalf("Free: %d, %v", free, err)
	}
	if err := (&Guard{Dir: dir, Min: 1}).Check(); err != nil {
		t.Fatal(err)
	}
	if err := (&Guard{Dir: dir, Min: free * 4}).Check(); err == nil {
		t.Fatal("no error with less free than the minimum")
	}
	if err := (&Guard{Dir: dir + "/missing", Min: 1}).Check(); err == nil {
		t.Fatal("no error for a missing directory")
	}
}
