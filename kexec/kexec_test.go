package kexec

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
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
		{"quiet -- BOOTIF=x", nil, "quiet BOOTIF=01-52-54-00-12-34-56 -- BOOTIF=x"},
		{"quiet", []string{"ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off"}, "quiet BOOTIF=01-52-54-00-12-34-56 ip=10.0.2.15::10.0.2.2:255.255.255.0::eth0:off"},
		{"quiet ip=dhcp", []string{"ip=10.0.2.15:::::eth0:off"}, "quiet ip=dhcp BOOTIF=01-52-54-00-12-34-56"},
		// The boot network's parameters go on when the line has none of its own …
		{"quiet", []string{"ifname=eth0:52:54:00:12:34:56", "vlan=vlan42:eth0", "ip=vlan42:dhcp", "ip=vlan42:auto6"},
			"quiet BOOTIF=01-52-54-00-12-34-56 ifname=eth0:52:54:00:12:34:56 vlan=vlan42:eth0 ip=vlan42:dhcp ip=vlan42:auto6"},
		{"quiet rd.net.timeout.carrier=5", []string{"vlan=vlan42:eth0", "ip=vlan42:dhcp", "rd.net.timeout.carrier=20"},
			"quiet rd.net.timeout.carrier=5 BOOTIF=01-52-54-00-12-34-56 vlan=vlan42:eth0 ip=vlan42:dhcp"},
		// … and none of them when it has: the user's network configuration wins whole.
		{"quiet ip=eth1:dhcp", []string{"vlan=vlan42:eth0", "ip=vlan42:dhcp", "rd.net.timeout.carrier=20", "quiet=x"},
			"quiet ip=eth1:dhcp BOOTIF=01-52-54-00-12-34-56"},
		{"bond=bond1:eth2,eth3 nameserver=1.1.1.1", []string{"bond=bond0:eth0,eth1:mode=802.3ad", "ip=bond0:dhcp", "init=/x"},
			"bond=bond1:eth2,eth3 nameserver=1.1.1.1 BOOTIF=01-52-54-00-12-34-56 init=/x"},
		{"ifname=lan:52:54:00:12:34:56", []string{"ifname=eth0:52:54:00:12:34:56", "rd.route=10.9.0.0/16:10.0.0.1"},
			"ifname=lan:52:54:00:12:34:56 BOOTIF=01-52-54-00-12-34-56"},
		// What follows "--" is init's: the kernel's parameters go before it.
		{"quiet -- ip=x", []string{"ip=eth0:dhcp6"}, "quiet BOOTIF=01-52-54-00-12-34-56 ip=eth0:dhcp6 -- ip=x"},
		{"-- single  two", nil, "BOOTIF=01-52-54-00-12-34-56 -- single  two"},
		{"a\t--\tb", nil, "a BOOTIF=01-52-54-00-12-34-56 --\tb"},
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

// fakeKernel replaces the syscalls and files Load uses: kexec_file_load fails with fileErr,
// the lockdown file says mode, the firmware's SecureBoot variable says sb. It returns the calls
// made, in order.
func fakeKernel(t *testing.T, mode Lockdown, sb bool, fileErr error) *[]string {
	t.Helper()
	var calls []string
	oldFile, oldSeg, oldLock, oldSB, oldArch := fileLoad, segmentLoad, readLockdown, secureBootVar, kernelArch
	t.Cleanup(func() {
		fileLoad, segmentLoad, readLockdown, secureBootVar, kernelArch = oldFile, oldSeg, oldLock, oldSB, oldArch
	})
	kernelArch = "amd64" // testImage's kernel is no arm64 Image: arm64 hosts run these too
	fileLoad = func(kernel, initrd *os.File, cmdline string) error {
		calls = append(calls, "kexec_file_load")
		if fileErr != nil {
			return fmt.Errorf("SYS_kexec_file_load(3, 4, %s, 0) = %w", cmdline, fileErr)
		}
		return nil
	}
	segmentLoad = func(kernel, initrd *os.File, cmdline string) error {
		calls = append(calls, "kexec_load")
		if mode.Locked() {
			return unix.EPERM
		}
		return nil
	}
	readLockdown = func() (Lockdown, error) { return mode, nil }
	secureBootVar = filepath.Join(t.TempDir(), "SecureBoot")
	if sb {
		os.WriteFile(secureBootVar, []byte{6, 0, 0, 0, 1}, 0o644)
	}
	return &calls
}

func testImage(t *testing.T) Image {
	dir := t.TempDir()
	k, i := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd")
	os.WriteFile(k, []byte("MZ kernel"), 0o644)
	os.WriteFile(i, []byte("070701"), 0o644)
	return Image{Kernel: k, Name: "http://10.0.2.2/vmlinuz", Initrds: []string{i}, Cmdline: "console=ttyS0"}
}

// TestLoadRefused: the kernel's refusals of a signature are a *RefusedError that says so in
// one sentence and matches ErrUntrusted; kexec_load is never tried after one, nor at all under
// lockdown; other errors are not refusals.
func TestLoadRefused(t *testing.T) {
	const url = "http://10.0.2.2/vmlinuz"
	for _, tt := range []struct {
		name    string
		mode    Lockdown
		sb      bool
		err     error
		refused bool
		final   bool // wraps ErrLockedDown
		want    string
		calls   string
	}{
		{name: "ENOKEY under Secure Boot", mode: "integrity", sb: true, err: unix.ENOKEY, refused: true,
			want: "the kernel is locked down by Secure Boot and " + url + " is not signed by a key it trusts (kexec_file_load: ENOKEY: signed, but by no key the kernel trusts)", calls: "kexec_file_load"},
		{name: "EKEYREJECTED under Secure Boot", mode: "integrity", sb: true, err: unix.EKEYREJECTED, refused: true,
			want: "the kernel is locked down by Secure Boot and " + url + " is not signed by a key it trusts (kexec_file_load: EKEYREJECTED: its signature does not match its contents)", calls: "kexec_file_load"},
		{name: "EPERM under Secure Boot", mode: "integrity", sb: true, err: unix.EPERM, refused: true,
			want: "the kernel is locked down by Secure Boot and " + url + " is not signed by a key it trusts (kexec_file_load: EPERM: not permitted under lockdown)", calls: "kexec_file_load"},
		{name: "ENODATA under lockdown= without Secure Boot", mode: "confidentiality", err: unix.ENODATA, refused: true,
			want: "the kernel is locked down (confidentiality) and " + url + " is not signed by a key it trusts (kexec_file_load: ENODATA: it has no signature)", calls: "kexec_file_load"},
		{name: "EBADMSG, signatures enforced", mode: "none", err: unix.EBADMSG, refused: true,
			want: "the kernel enforces signatures on kexec and " + url + " is not signed by a key it trusts (kexec_file_load: EBADMSG: its signature or PE headers are malformed)", calls: "kexec_file_load"},
		{name: "EPERM without lockdown", mode: "none", err: unix.EPERM,
			want: "kexec_file_load: not permitted", calls: "kexec_file_load"},
		{name: "ENOEXEC under lockdown: no kexec_load", mode: "integrity", sb: true, err: unix.ENOEXEC, final: true,
			want: "kexec_load is refused while the kernel is locked down (lockdown=integrity)", calls: "kexec_file_load"},
		{name: "ENOSYS under lockdown: no kexec_load", mode: "integrity", err: unix.ENOSYS, final: true,
			want: "kexec_load is refused while the kernel is locked down", calls: "kexec_file_load"},
		{name: "ENOSYS under lockdown: says why", mode: "integrity", err: unix.ENOSYS, final: true,
			want: "kexec_file_load: this kernel has no kexec_file_load (built without CONFIG_KEXEC_FILE, as Debian's arm64 kernels are)", calls: "kexec_file_load"},
		{name: "ENOEXEC, not locked down: kexec_load", mode: "none", err: unix.ENOEXEC, calls: "kexec_file_load kexec_load"},
		{name: "ENOMEM", mode: "integrity", sb: true, err: unix.ENOMEM, want: "not enough memory", calls: "kexec_file_load"},
		{name: "loads under lockdown", mode: "integrity", sb: true, calls: "kexec_file_load"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := fakeKernel(t, tt.mode, tt.sb, tt.err)
			err := Load(testImage(t), t.TempDir(), t.Logf)
			if got := strings.Join(*calls, " "); got != tt.calls {
				t.Errorf("calls %q, want %q", got, tt.calls)
			}
			if tt.want == "" {
				if err != nil {
					t.Errorf("Load: %v, want success", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want %q", tt.want)
			}
			if tt.refused && err.Error() != tt.want || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			if got := errors.Is(err, ErrUntrusted); got != tt.refused {
				t.Errorf("errors.Is(%v, ErrUntrusted) = %v, want %v", err, got, tt.refused)
			}
			if got := errors.Is(err, ErrLockedDown); got != tt.final {
				t.Errorf("errors.Is(%v, ErrLockedDown) = %v, want %v", err, got, tt.final)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
		})
	}
}

// TestLoadNamesKernel: without a Name the refusal names the local file.
func TestLoadNamesKernel(t *testing.T) {
	fakeKernel(t, "integrity", true, unix.ENOKEY)
	img := testImage(t)
	img.Name = ""
	var r *RefusedError
	if err := Load(img, t.TempDir(), nil); !errors.As(err, &r) || r.Kernel != img.Kernel {
		t.Errorf("Load: %v, want a refusal naming %s", err, img.Kernel)
	}
}

// TestNoSegmentLoaderOffARM64: off arm64, a kernel without kexec_file_load is refused in one
// sentence naming the option it needs (the kexec_load loader is linked on arm64 alone).
func TestNoSegmentLoaderOffARM64(t *testing.T) {
	if runtime.GOARCH == "arm64" {
		t.Skip("arm64 links u-root's kexec_load loader")
	}
	err := loadSegments(nil, nil, "")
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "CONFIG_KEXEC_FILE") {
		t.Errorf("loadSegments = %v", err)
	}
}
