package main

import (
	"net"
	"net/netip"
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
	} {
		b := &booter{lease: tt.lease}
		if got := leaseMenuURL(b); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestEntryPlan(t *testing.T) {
	e := bootmenu.Entry{Name: "maint", Kind: bootmenu.KindKexec, Kexec: &bootmenu.Kexec{
		Kernel:  bootmenu.File{URL: "http://a/vmlinuz", SHA256: "ab", Mirrors: []string{"http://b/vmlinuz"}},
		Initrds: []bootmenu.File{{URL: "http://a/initrd"}}, Cmdline: "quiet", IPAppend: true,
	}}
	p := entryPlan(e, "quiet edited")
	if p.Kexec == nil || p.Kexec.Cmdline != "quiet edited" || len(p.Kexec.Kernel.URLs) != 2 || p.Kexec.Kernel.SHA256 != "ab" || !p.Kexec.IPAppend || len(p.Kexec.Initrds) != 1 {
		t.Errorf("kexec plan %+v", p.Kexec)
	}
	r := bootmenu.Entry{Name: "rescue", Kind: bootmenu.KindRamroot, Ramroot: &bootmenu.Ramroot{File: bootmenu.File{URL: "http://a/r.tar.zst"}, Size: "2G"}}
	p = entryPlan(r, "systemd.unit=rescue.target single")
	if p.Ramroot == nil || p.Ramroot.Size != "2G" || len(p.Ramroot.Args) != 2 || p.Ramroot.Args[1] != "single" {
		t.Errorf("ramroot plan %+v", p.Ramroot)
	}
}
