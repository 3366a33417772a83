package boot

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/kexec"
)

// TestKexecRefusedNamesURL: when the locked-down kernel refuses the kernel's signature, Prepare
// fails with kexec's refusal, which names the URL the kernel came from (a mirror's, when the
// first URL failed), and nothing is left to boot.
func TestKexecRefusedNamesURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/mirror/vmlinuz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("MZ unsigned kernel"))
	}))
	defer srv.Close()
	defer func(f func(kexec.Image, string, func(string, ...any)) error) { loadKexec = f }(loadKexec)
	var loaded kexec.Image
	loadKexec = func(img kexec.Image, dir string, logf func(string, ...any)) error {
		loaded = img
		return &kexec.RefusedError{Kernel: img.Name, Lockdown: "integrity", SecureBoot: true, Err: unix.ENOKEY}
	}
	b := &Booter{Logf: t.Logf}
	url := srv.URL + "/mirror/vmlinuz"
	exec, err := b.Prepare(context.Background(), Plan{Name: "maint", Kexec: &KexecPlan{
		Kernel: Image{URLs: []string{srv.URL + "/gone/vmlinuz", url}}, Cmdline: "console=ttyS0"}}, nil)
	if exec != nil {
		t.Error("a refused kernel was prepared to boot")
	}
	if loaded.Name != url {
		t.Errorf("kexec.Load was told the kernel is %q, want %q", loaded.Name, url)
	}
	if !errors.Is(err, kexec.ErrUntrusted) {
		t.Fatalf("Prepare: %v, want kexec.ErrUntrusted", err)
	}
	want := "the kernel is locked down by Secure Boot and " + url + " is not signed by a key it trusts (kexec_file_load: ENOKEY: signed, but by no key the kernel trusts)"
	if err.Error() != want {
		t.Errorf("Prepare: %q\nwant %q", err, want)
	}
}

// TestKexecPassesBootNetwork: the kexec'd kernel's command line gets BOOTIF= and the boot
// network's parameters (here a VLAN on a NIC), the address as a static ip= with ipappend,
// and none of the network parameters when the entry's line has its own.
func TestKexecPassesBootNetwork(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/vmlinuz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("kernel"))
	}))
	defer srv.Close()
	defer func(f func(kexec.Image, string, func(string, ...any)) error) { loadKexec = f }(loadKexec)
	var loaded kexec.Image
	loadKexec = func(img kexec.Image, dir string, logf func(string, ...any)) error {
		loaded = img
		return nil
	}
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	lease := &netup.Lease{Iface: "vlan42", MAC: mac, Addr: netip.MustParsePrefix("10.0.42.5/24"),
		Gateway: netip.MustParseAddr("10.0.42.1"), DHCP: true}
	network := &netup.ImageNet{Links: []netup.ImageLink{
		{Kind: netup.ImageNIC, Name: "eth0", MAC: mac},
		{Kind: netup.ImageVLAN, Name: "vlan42", MAC: mac, Parent: "eth0", VLANID: 42},
	}}
	for _, tt := range []struct {
		cmdline  string
		ipappend bool
		want     string
	}{
		{"console=ttyS0", false, "console=ttyS0 BOOTIF=01-52-54-00-12-34-56 ifname=eth0:52:54:00:12:34:56 vlan=vlan42:eth0 ip=vlan42:dhcp"},
		{"console=ttyS0", true, "console=ttyS0 BOOTIF=01-52-54-00-12-34-56 ifname=eth0:52:54:00:12:34:56 vlan=vlan42:eth0 ip=10.0.42.5::10.0.42.1:255.255.255.0::vlan42:off"},
		{"console=ttyS0 ip=dhcp", true, "console=ttyS0 ip=dhcp BOOTIF=01-52-54-00-12-34-56"},
	} {
		// The topology given as Booter.Network, or read from what Up put in the lease.
		fromUp := *lease
		fromUp.VLANs = []cmdline.VLAN{{Name: "vlan42", Parent: "eth0", ID: 42}}
		for _, b := range []*Booter{{Logf: t.Logf, Lease: lease, Network: network}, {Logf: t.Logf, Lease: &fromUp}} {
			exec, err := b.Prepare(context.Background(), Plan{Name: "maint", Kexec: &KexecPlan{
				Kernel: Image{URLs: []string{srv.URL + "/vmlinuz"}}, Cmdline: tt.cmdline, IPAppend: tt.ipappend}}, nil)
			if err != nil || exec == nil {
				t.Fatalf("Prepare: %v", err)
			}
			if loaded.Cmdline != tt.want {
				t.Errorf("%q, ipappend %v, Network %v: command line\n%q\nwant %q", tt.cmdline, tt.ipappend, b.Network != nil, loaded.Cmdline, tt.want)
			}
		}
	}
}
