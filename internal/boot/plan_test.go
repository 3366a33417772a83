package boot

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/internal/netup"
)

func TestLeaseMenuURL(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	server := netip.MustParseAddr("10.0.2.2")
	for _, tt := range []struct {
		name  string
		lease *netup.Lease
		want  string
	}{
		{"no lease", nil, ""},
		{"static", &netup.Lease{MAC: mac}, ""},
		{"pxelinux 209 absolute", &netup.Lease{DHCP: true, Options: map[uint8][]byte{209: []byte("http://boot/pxelinux.cfg/default")}}, "http://boot/pxelinux.cfg/default"},
		{"pxelinux 209 under 210", &netup.Lease{DHCP: true, Options: map[uint8][]byte{209: []byte("pxelinux.cfg/default"), 210: []byte("http://boot/tftp/")}}, "http://boot/tftp/pxelinux.cfg/default"},
		{"boot file URL", &netup.Lease{DHCP: true, BootFile: "http://boot/menu.yaml"}, "http://boot/menu.yaml"},
		{"boot file path", &netup.Lease{DHCP: true, BootFile: "/menus/lab.cfg", Server: server}, "http://10.0.2.2/menus/lab.cfg"},
		{"boot file is a kernel", &netup.Lease{DHCP: true, BootFile: "lpxelinux.0", Server: server}, ""},
		{"DHCPv6 option 59, IPv6 only", &netup.Lease{V6: &netup.Lease6{BootFileURL: "http://[fd00::1]:8080/menus/lab.yaml"}}, "http://[fd00::1]:8080/menus/lab.yaml"},
		{"DHCPv6 option 59 is an image", &netup.Lease{V6: &netup.Lease6{BootFileURL: "http://[fd00::1]/ramboot.efi"}}, ""},
		{"DHCPv6 option 59 over TFTP", &netup.Lease{V6: &netup.Lease6{BootFileURL: "tftp://[fd00::1]/lab.cfg"}}, ""},
		{"DHCPv4 boot file before option 59", &netup.Lease{DHCP: true, BootFile: "http://boot/menu.yaml", V6: &netup.Lease6{BootFileURL: "http://[fd00::1]/v6.yaml"}}, "http://boot/menu.yaml"},
		{"option 59 when DHCPv4 names none", &netup.Lease{DHCP: true, BootFile: "lpxelinux.0", Server: server, V6: &netup.Lease6{BootFileURL: "http://[fd00::1]/v6.yaml"}}, "http://[fd00::1]/v6.yaml"},
	} {
		if got := LeaseMenuURL(tt.lease); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestEntryPlan(t *testing.T) {
	e := bootmenu.Entry{Name: "maint", Kind: bootmenu.KindKexec, Kexec: &bootmenu.Kexec{
		Kernel:  bootmenu.File{URL: "http://a/vmlinuz", SHA256: "ab", Mirrors: []string{"http://b/vmlinuz"}},
		Initrds: []bootmenu.File{{URL: "http://a/initrd"}}, Cmdline: "quiet", IPAppend: true,
	}}
	p := FromEntry(e, "quiet edited")
	if p.Kexec == nil || p.Kexec.Cmdline != "quiet edited" || len(p.Kexec.Kernel.URLs) != 2 || p.Kexec.Kernel.SHA256 != "ab" || !p.Kexec.IPAppend || len(p.Kexec.Initrds) != 1 {
		t.Errorf("kexec plan %+v", p.Kexec)
	}
	r := bootmenu.Entry{Name: "rescue", Kind: bootmenu.KindRamroot, Ramroot: &bootmenu.Ramroot{File: bootmenu.File{URL: "http://a/r.tar.zst"}, Size: "2G"}}
	p = FromEntry(r, "systemd.unit=rescue.target single")
	if p.Ramroot == nil || p.Ramroot.Size != "2G" || len(p.Ramroot.Args) != 2 || p.Ramroot.Args[1] != "single" {
		t.Errorf("ramroot plan %+v", p.Ramroot)
	}
}
func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "lib/systemd"), 0o755)
	os.MkdirAll(filepath.Join(root, "sbin"), 0o755)
	os.WriteFile(filepath.Join(root, "lib/systemd/systemd"), []byte("x"), 0o755)
	os.WriteFile(filepath.Join(root, "lib/data"), []byte("x"), 0o644)
	os.Symlink("/lib/systemd/systemd", filepath.Join(root, "sbin/init"))
	os.Symlink("../lib/systemd/systemd", filepath.Join(root, "sbin/rel"))
	os.Symlink("/etc/passwd", filepath.Join(root, "sbin/host"))
	os.Symlink("loop", filepath.Join(root, "sbin/loop"))
	for _, tt := range []struct{ p, want string }{
		{"/sbin/init", filepath.Join(root, "lib/systemd/systemd")},
		{"/sbin/rel", filepath.Join(root, "lib/systemd/systemd")},
		{"/sbin/host", "missing"},
		{"/sbin/loop", "too many symlinks"},
		{"/lib/data", "not an executable"},
		{"/nope", "missing"},
	} {
		got, err := ResolveIn(root, tt.p)
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tt.want) {
			t.Errorf("ResolveIn(%s) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

// TestPreparePanic: a panic inside Prepare is that attempt's error, with its stack logged.
func TestPreparePanic(t *testing.T) {
	var log []string
	b := &Booter{Logf: func(f string, a ...any) { log = append(log, fmt.Sprintf(f, a...)) },
		Entropy: func(context.Context, []string) error { panic("boom") }}
	_, err := b.Prepare(context.Background(), Plan{Name: "rescue", Ramroot: &RamrootPlan{Image: Image{URLs: []string{"http://x/r.tar"}}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "rescue: internal error: boom") {
		t.Fatalf("err = %v", err)
	}
	if len(log) != 1 || !strings.Contains(log[0], "goroutine") {
		t.Errorf("stack not logged: %q", log)
	}
}
