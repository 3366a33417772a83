package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/vmtest"
	"github.com/ramboot/ramboot/internal/vmtest/netlab"
	"github.com/ramboot/ramboot/internal/vmtest/vswitch"
)

// The booted system keeps the boot network (issue 19, item 7): the Debian image (systemd 252,
// networkd, udev) is booted through ramboot over a tagged VLAN and over an LACP bond of the
// strict switch, and its networkd must take over every link with ramboot's files: the VLAN
// or bond that has the address "routable configured" by 10-ramboot.network, its parent or
// ports "configured" by theirs. On a trunk that passes only VLAN 42, or a LAG that passes
// nothing unaggregated, the address the booted system's networkd renews proves the VLAN
// and the bond are what it uses.

// bootDebianOver boots the Debian image with line appended, over the NICs of extra, and returns
// the image's report.
func bootDebianOver(t *testing.T, l *netLab, extra []string, line string) (*debianReport, string) {
	t.Helper()
	img, sum := debianImage(t)
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd, Extra: extra, Memory: "1536M",
		Append: fmt.Sprintf("console=ttyS0 ramroot=%s/%s ramroot.sha256=%s ramboot.onerror=poweroff %s", l.base, img, sum, line),
	})
	files := vm.Expect(`network config for \S+: (.*?)\r?\n`, bootTimeout)[1]
	vm.Expect(`switching to the new root`, bootTimeout)
	vm.Expect(`DEBIAN-BEGIN`, 3*time.Minute)
	vm.Expect(`DEBIAN-DONE`, 2*time.Minute)
	vm.Wait(time.Minute)
	t.Logf("QEMU start → power off: %v; ramboot wrote %s", vm.Elapsed().Round(100*time.Millisecond), files)
	r := parseDebianReport(vm.Console())
	for _, j := range r.journal {
		t.Logf("journal: %s", j)
	}
	return r, vm.Console()
}

// wantNetworkdLink checks that networkd configured link with ramboot's file, in the state given
// ("routable configured", "enslaved configured", …).
func wantNetworkdLink(t *testing.T, r *debianReport, link, state, file string) {
	t.Helper()
	t.Logf("networkctl: %s", r.networkctl[link])
	if nc := r.networkctl[link]; !strings.HasSuffix(nc, " "+state) {
		t.Errorf("networkctl: %s is %q, want %s", link, nc, state)
	}
	if st := r.status[link]; !regexp.MustCompile(`Network File: ` + regexp.QuoteMeta(file) + `\b`).MatchString(st) {
		t.Errorf("%s is not configured by %s; networkctl status:\n%s", link, file, st)
	}
}

func TestVMImageKeepsVLAN(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 42)
	d := l.dhcp4()
	p := l.port(t, "trunk", vswitch.Trunk(42))
	r, console := bootDebianOver(t, l, p.QEMUArgs("t0", mac1), "vlan=vlan42:eth0 BOOTIF="+bootif(mac1))
	initAddr := regexp.MustCompile(`network: vlan42 \S+ (10\.42\.0\.\d+)/24`).FindStringSubmatch(console)
	wantNetworkdLink(t, r, "vlan42", "routable configured", "/etc/systemd/network/10-ramboot.network")
	wantNetworkdLink(t, r, "eth0", "configured", "/etc/systemd/network/10-ramboot-eth0.network")
	t.Logf("addresses: vlan42 %s, eth0 %s", r.addr["vlan42"], r.addr["eth0"])
	if initAddr == nil || !strings.Contains(r.addr["vlan42"], initAddr[1]+"/24") {
		t.Errorf("vlan42 has %q in the booted system, want the initramfs's address (%v)", r.addr["vlan42"], initAddr)
	}
	if n := d.Count(`DHCPACK\(tap0\)`); n < 2 {
		t.Errorf("dnsmasq acked %d times, want the initramfs and the booted system's networkd:\n%s", n, d.Log())
	}
	t.Logf("switch: trunk counters %+v", p.Counters())
}

func TestVMImageKeepsLACP(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 1)
	d := l.dhcp4()
	lag, err := l.sw.AddLAG("po1", vswitch.Access(1), 2, vswitch.LACPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for i, p := range lag.Ports() {
		extra = append(extra, p.QEMUArgs(fmt.Sprintf("b%d", i), []string{mac1, mac2}[i])...)
	}
	r, console := bootDebianOver(t, l, extra, "bond=bond0:eth0,eth1:mode=802.3ad,lacp_rate=fast,miimon=100,xmit_hash_policy=layer3+4 BOOTIF="+bootif(mac1))
	initAddr := regexp.MustCompile(`network: bond0 \S+ (10\.42\.0\.\d+)/24`).FindStringSubmatch(console)
	wantNetworkdLink(t, r, "bond0", "routable configured", "/etc/systemd/network/10-ramboot.network")
	wantNetworkdLink(t, r, "eth0", "enslaved configured", "/etc/systemd/network/10-ramboot-eth0.network")
	wantNetworkdLink(t, r, "eth1", "enslaved configured", "/etc/systemd/network/10-ramboot-eth1.network")
	if initAddr == nil || !strings.Contains(r.addr["bond0"], initAddr[1]+"/24") {
		t.Errorf("bond0 has %q in the booted system, want the initramfs's address (%v)", r.addr["bond0"], initAddr)
	}
	if n := d.Count(`DHCPACK\(tap0\)`); n < 2 {
		t.Errorf("dnsmasq acked %d times, want the initramfs and the booted system's networkd:\n%s", n, d.Log())
	}
	st := lag.State()
	if st.Aggregated != 2 {
		t.Errorf("switch: %d of 2 ports aggregated at the end", st.Aggregated)
	}
}

// TestVMImageKeepsV6: an IPv6-only network (router advertisements, stateful DHCPv6, no
// DHCPv4); the booted system's networkd asks DHCPv6 as ramboot's client did (DUID-LL, the
// same IAID) and gets the address the initramfs had.
func TestVMImageKeepsV6(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 1)
	d := l.lab.Dnsmasq(netlab.DnsmasqConfig{Interface: "tap0", Lines: []string{
		"enable-ra", "dhcp-range=fd00:42::100,fd00:42::1ff,64,2m",
	}})
	p := l.port(t, "access", vswitch.Access(1))
	img, sum := debianImage(t)
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd, Extra: p.QEMUArgs("a0", mac1), Memory: "1536M",
		Append: fmt.Sprintf("console=ttyS0 ramroot=%s/%s ramroot.sha256=%s ramboot.onerror=poweroff ip=dhcp6 BOOTIF=%s", l.base6, img, sum, bootif(mac1)),
	})
	vm.Expect(`network config for \S+: (.*?)\r?\n`, bootTimeout)
	before := vm.Console()
	vm.Expect(`switching to the new root`, bootTimeout)
	vm.Expect(`DEBIAN-DONE`, 5*time.Minute)
	vm.Wait(time.Minute)
	t.Logf("QEMU start → power off: %v", vm.Elapsed().Round(100*time.Millisecond))
	addr := regexp.MustCompile(`fd00:42::1[0-9a-f]{2}\b`).FindString(before)
	r := parseDebianReport(vm.Console())
	wantNetworkdLink(t, r, "eth0", "routable configured", "/etc/systemd/network/10-ramboot.network")
	if addr == "" || !strings.Contains(r.status["eth0"], addr) {
		t.Errorf("the initramfs had %q; the booted system's eth0:\n%s", addr, r.status["eth0"])
	}
	n := d.Count(`DHCPREPLY\(tap0\) ` + regexp.QuoteMeta(addr))
	t.Logf("initramfs %s; dnsmasq replied with it %d times; booted: %s", addr, n, regexp.MustCompile(`(?m)^\s*(Address|Gateway).*$`).FindAllString(r.status["eth0"], -1))
	if addr != "" && n < 2 {
		t.Errorf("dnsmasq gave %s %d times, want the initramfs's and the booted system's:\n%s", addr, n, d.Log())
	}
}

// TestVMKexecKeepsVLAN: on a trunk that carries VLAN 42 only, ramboot brought up by vlan=
// kexecs a kernel whose line has no network parameters; the next kernel gets the boot
// network's (ifname=, vlan=, ip=) besides BOOTIF=, and its ramboot — which would find nothing
// untagged — boots the image over VLAN 42.
func TestVMKexecKeepsVLAN(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 42)
	l.dhcp4()
	p := l.port(t, "trunk", vswitch.Trunk(42))
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd, Extra: p.QEMUArgs("t0", mac1),
		Append: fmt.Sprintf(`vlan=vlan42:eth0 BOOTIF=%s ramboot.kernel=%s/vmlinuz ramboot.initrd=%s/ramboot-initrd.cpio.zst "ramboot.append=console=ttyS0 panic=-1 %s"`,
			bootif(mac1), l.base, l.base, ramrootLine(l.base)),
	})
	vm.Expect(`kexec: loading with command line`, bootTimeout)
	m := vm.Expect(`ramboot: starting; kernel command line: (.*?)\r?\n`, bootTimeout)
	for _, want := range []string{"BOOTIF=" + bootif(mac1), "ifname=eth0:" + mac1, "vlan=vlan42:eth0", "ip=vlan42:dhcp"} {
		if !strings.Contains(" "+m[1]+" ", " "+want+" ") {
			t.Errorf("second kernel's command line %q lacks %s", m[1], want)
		}
	}
	vm.Expect(`network: vlan42 `+mac1+` 10\.42\.0\.\d+/24`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	t.Logf("QEMU start → image booted after kexec: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Expect(`TESTINIT-DONE`, time.Minute)
}
