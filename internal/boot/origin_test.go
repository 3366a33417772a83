package boot

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/netup"
)

func TestOrigin(t *testing.T) {
	lease := &netup.Lease{Iface: "eth1", BootFile: "http://10.0.2.2:8080/boot/ramboot.efi"}
	for _, tt := range []struct {
		uri   string
		lease *netup.Lease
		want  string
	}{
		{"", lease, "http://10.0.2.2:8080/boot/ramboot.efi"},
		{"https://boot.lab/x/ramboot.efi", lease, "https://boot.lab/x/ramboot.efi"},
		{"", &netup.Lease{BootFile: "pxelinux.0"}, ""},
		{"", &netup.Lease{BootFile: "tftp://10.0.2.2/ramboot.efi"}, ""},
		{"", nil, ""},
		{"http:///nohost", nil, ""},
		{"", &netup.Lease{V6: &netup.Lease6{BootFileURL: "http://[fd00::1]:8080/boot/ramboot.efi"}}, "http://[fd00::1]:8080/boot/ramboot.efi"},
		{"", &netup.Lease{BootFile: "http://10.0.2.2/a.efi", V6: &netup.Lease6{BootFileURL: "http://[fd00::1]/b.efi"}}, "http://10.0.2.2/a.efi"},
		{"", &netup.Lease{V6: &netup.Lease6{BootFileURL: "tftp://[fd00::1]/b.efi"}}, ""},
	} {
		if got, _ := Origin(tt.uri, tt.lease); got != tt.want {
			t.Errorf("Origin(%q, %+v) = %q, want %q", tt.uri, tt.lease, got, tt.want)
		}
	}
}

func TestResolveRelative(t *testing.T) {
	c := &cmdline.Config{
		Ramroot: []string{"rootfs.tar.zst", "http://mirror/r.tar.zst", "../other/r.tar.zst"},
		Menu:    "menus/lab.yaml",
		Kernel:  "/rootfs/vmlinuz",
		Initrds: []string{"./local.cpio", "docker://reg/x:1", "initrd.img"},
	}
	got := ResolveRelative(c, "http://10.0.2.2:8080/boot/ramboot.efi")
	want := &cmdline.Config{
		Ramroot: []string{"http://10.0.2.2:8080/boot/rootfs.tar.zst", "http://mirror/r.tar.zst", "http://10.0.2.2:8080/other/r.tar.zst"},
		Menu:    "http://10.0.2.2:8080/boot/menus/lab.yaml",
		Kernel:  "/rootfs/vmlinuz",
		Initrds: []string{"./local.cpio", "docker://reg/x:1", "http://10.0.2.2:8080/boot/initrd.img"},
	}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("resolved (-want +got):\n%s", diff)
	}
	if len(got) != 4 || got[0] != "ramroot=rootfs.tar.zst: http://10.0.2.2:8080/boot/rootfs.tar.zst" {
		t.Errorf("log lines %q", got)
	}
	// Without an origin, a relative path stays a file of the initramfs.
	c = &cmdline.Config{Ramroot: []string{"rootfs.tar.zst"}}
	if got := ResolveRelative(c, ""); got != nil || c.Ramroot[0] != "rootfs.tar.zst" {
		t.Errorf("no origin: %q, %v", c.Ramroot, got)
	}
}

// TestResolveRelativeV6: an origin with an IPv6 literal keeps its brackets and port.
func TestResolveRelativeV6(t *testing.T) {
	c := &cmdline.Config{Ramroot: []string{"rootfs.tar.zst"}, Menu: "../menus/lab.yaml"}
	ResolveRelative(c, "http://[fd00::1]:8080/boot/ramboot.efi")
	if c.Ramroot[0] != "http://[fd00::1]:8080/boot/rootfs.tar.zst" || c.Menu != "http://[fd00::1]:8080/menus/lab.yaml" {
		t.Errorf("resolved %q, %q", c.Ramroot, c.Menu)
	}
}
