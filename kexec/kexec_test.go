package kexec

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestComposeCmdline(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	for _, tt := range []struct {
		in    string
		extra []string
		want  string
	}{
		{"console=ttyS0 ramroot=http://x/r.tar.zst", nil, "console=ttyS0 ramroot=http://x/r.tar.zst BOOTIF=01-52-54-00-12-34-56"},
		{"console=ttyS0 BOOTIF=01-aa-bb-cc-dd-ee-ff", nil, "console=ttyS0 BOOTIF=01-aa-bb-cc-dd-ee-ff"},
		{"  ", nil, "BOOTIF=01-52-54-00-12-34-56"},
		{"quiet -- BOOTIF=x", nil, "quiet -- BOOTIF=x BOOTIF=01-52-54-00-12-34-56"},
		{"quiet", []string{"ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off"}, "quiet BOOTIF=01-52-54-00-12-34-56 ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off"},
		{"quiet ip=dhcp", []string{"ip=10.0.2.15:::::eth0:off"}, "quiet ip=dhcp BOOTIF=01-52-54-00-12-34-56"},
	} {
		if got := ComposeCmdline(tt.in, mac, tt.extra...); got != tt.want {
			t.Errorf("ComposeCmdline(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := ComposeCmdline("quiet", nil); got != "quiet" {
		t.Errorf("no NIC: %q", got)
	}
}

func TestCatInitrds(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("12345"), 0o644)
	os.WriteFile(b, []byte("678"), 0o644)
	f, err := catInitrds([]string{a, b}, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, _ := os.ReadFile(f.Name())
	if got != nil {
		t.Errorf("temporary file not unlinked")
	}
	buf := make([]byte, 16)
	n, _ := f.Read(buf)
	if want := "12345\x00\x00\x00678"; string(buf[:n]) != want {
		t.Errorf("joined %q, want %q", buf[:n], want)
	}
}

// TestExecSyncs: Exec syncs the file systems before it reboots into the loaded kernel.
func TestExecSyncs(t *testing.T) {
	var calls []string
	defer func(s func(), r func() error) { syncFS, kexecReboot = s, r }(syncFS, kexecReboot)
	syncFS = func() { calls = append(calls, "sync") }
	kexecReboot = func() error { calls = append(calls, "reboot"); return errors.New("fake reboot") }
	if err := Exec(); err == nil || !strings.Contains(err.Error(), "fake reboot") {
		t.Errorf("Exec: %v", err)
	}
	if got := strings.Join(calls, " "); got != "sync reboot" {
		t.Errorf("Exec called %q, want %q", got, "sync reboot")
	}
}
