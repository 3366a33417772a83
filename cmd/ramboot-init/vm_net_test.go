package main

// VM tests on data-centre networks: the guest's NICs are joined to a user-space switch
// (internal/vmtest/vswitch) whose uplink is a TAP in a network namespace (internal/vmtest/netlab)
// where dnsmasq serves DHCP and router advertisements and a Go server the images. The host's
// kernel has neither bonding nor 8021q, so the switch is the strict partner a real one is:
// nothing passes a LAG member before LACP aggregates it, nothing untagged passes a trunk.

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/vmtest"
	"github.com/ramboot/ramboot/internal/vmtest/netlab"
	"github.com/ramboot/ramboot/internal/vmtest/vswitch"
)

// netLab is a lab with a switch whose uplink TAP (tap0) is on VLAN vlan, addressed 10.42.0.1/24
// and fd00:42::1/64, serving the VM tests' files over HTTP on 10.42.0.1 and [fd00:42::1].
type netLab struct {
	lab    *netlab.Lab
	sw     *vswitch.Switch
	base   string // http://10.42.0.1:PORT
	base6  string // http://[fd00:42::1]:PORT
	uplink *vswitch.Port
}

func newNetLab(t *testing.T, vlan int) *netLab {
	t.Helper()
	setup(t)
	l := &netLab{lab: netlab.New(t)}
	l.sw = vswitch.New(vswitch.Options{Logf: t.Logf})
	t.Cleanup(func() { l.sw.Close() })
	var err error
	if l.uplink, err = l.sw.AddTap("uplink", l.lab.Path(), "tap0", vswitch.Access(vlan)); err != nil {
		t.Fatal(err)
	}
	l.lab.Up("tap0", "10.42.0.1/24", "fd00:42::1/64")
	files := http.FileServer(http.Dir(built.dir))
	l.base = l.lab.ServeHTTP("10.42.0.1:0", files)
	l.base6 = l.lab.ServeHTTP("[fd00:42::1]:0", files)
	return l
}

// dhcp4 starts dnsmasq with a DHCPv4 range (and the lines given).
func (l *netLab) dhcp4(lines ...string) *netlab.Dnsmasq {
	return l.lab.Dnsmasq(netlab.DnsmasqConfig{Interface: "tap0", Lines: append([]string{
		"dhcp-range=10.42.0.50,10.42.0.99,255.255.255.0,2m",
		"dhcp-option=option:router,10.42.0.1",
		"dhcp-authoritative",
	}, lines...)})
}

// ipv6Only serves menu at http://[fd00:42::1]:PORT/menu.yaml and starts a dnsmasq with no IPv4
// at all: router advertisements, stateful DHCPv6 (2-minute lifetimes, dnsmasq's shortest) and
// option 59 naming the menu.
func (l *netLab) ipv6Only(menu string) (menuURL string, d *netlab.Dnsmasq) {
	mux := http.NewServeMux()
	mux.HandleFunc("/menu.yaml", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, menu) })
	menuURL = l.lab.ServeHTTP("[fd00:42::1]:0", mux) + "/menu.yaml"
	d = l.lab.Dnsmasq(netlab.DnsmasqConfig{Interface: "tap0", Lines: []string{
		"enable-ra",
		"dhcp-range=fd00:42::100,fd00:42::1ff,64,2m",
		"dhcp-option=option6:bootfile-url," + menuURL,
	}})
	return menuURL, d
}

// port adds a switch port for a guest NIC.
func (l *netLab) port(t *testing.T, name string, m vswitch.Mode) *vswitch.Port {
	t.Helper()
	p, err := l.sw.AddPort(name, m)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// startOnAccess starts a VM with one NIC (mac1, BOOTIF=) on an untagged port of the switch,
// without ip=, failing into a power-off.
func (l *netLab) startOnAccess(t *testing.T) *vmtest.VM {
	p := l.port(t, "guest", vswitch.Access(1))
	return vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd, Extra: p.QEMUArgs("n0", mac1),
		Append: "ramboot.onerror=poweroff BOOTIF=" + bootif(mac1),
	})
}

// ramrootLine is an unattended ramroot boot of the test image from base.
func ramrootLine(base string) string {
	return fmt.Sprintf("ramroot=%s/rootfs.tar.zst ramroot.sha256=%s ramboot.onerror=poweroff", base, built.sums["rootfs.tar.zst"])
}

// TestVMNetLACP: two NICs in a LAG of the strict switch; bond= makes the guest the switch's
// 802.3ad partner, /init says so, and DHCP and the image come over the aggregated bond.
func TestVMNetLACP(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 1)
	l.dhcp4()
	lag, err := l.sw.AddLAG("po1", vswitch.Access(1), 2, vswitch.LACPConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for i, p := range lag.Ports() {
		extra = append(extra, p.QEMUArgs(fmt.Sprintf("b%d", i), []string{mac1, mac2}[i])...)
	}
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd, Extra: extra,
		Append: ramrootLine(l.base) + " bond=bond0:eth0,eth1:mode=802.3ad,lacp_rate=fast,miimon=100,xmit_hash_policy=layer3+4 BOOTIF=" + bootif(mac2),
	})
	m := vm.Expect(`bond0: LACP up with partner (\S+), (\d) of 2 ports`, bootTimeout)
	t.Logf("LACP up at %v", vm.Elapsed().Round(100*time.Millisecond))
	if m[1] != "02:5e:00:00:00:00" {
		t.Errorf("partner %s, want the switch's system MAC 02:5e:00:00:00:00", m[1])
	}
	vm.Expect(`network: bond0 `+mac2+` 10\.42\.0\.\d+/24`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	logAddressTime(t, vm.Console())
	st := lag.State()
	for _, ms := range st.Members {
		t.Logf("switch: %s aggregated=%v partner %s key %d state %s", ms.Port, ms.Aggregated, ms.Partner.System, ms.Partner.Key, ms.Partner.State)
		// The bond's system MAC is BOOTIF's NIC's: the boot network still sees that NIC.
		if ms.Partner.System.String() != mac2 {
			t.Errorf("switch port %s: partner system %s, want the guest's bond MAC %s", ms.Port, ms.Partner.System, mac2)
		}
	}
	if st.Aggregated != 2 {
		t.Errorf("switch: %d of 2 ports aggregated", st.Aggregated)
	}
	vm.Expect(`TESTINIT-DONE`, time.Minute)
}

// TestVMNetVLAN: the switch port is a trunk carrying VLAN 42 only, where DHCP and the image
// server are; nothing untagged passes. vlan= brings the guest up on VLAN 42, the image keeps it.
func TestVMNetVLAN(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 42)
	d := l.dhcp4()
	p := l.port(t, "trunk", vswitch.Trunk(42))
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd, Extra: p.QEMUArgs("t0", mac1),
		Append: ramrootLine(l.base) + " vlan=vlan42:eth0 BOOTIF=" + bootif(mac1),
	})
	vm.Expect(`netup: vlan42: VLAN 42 on eth0`, bootTimeout)
	vm.Expect(`network: vlan42 `+mac1+` 10\.42\.0\.\d+/24`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Expect(`TESTINIT-ADDR vlan42 10\.42\.0\.\d+/24`, time.Minute)
	logAddressTime(t, vm.Console())
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	if n := d.Count(`DHCPACK\(tap0\)`); n == 0 {
		t.Errorf("dnsmasq acked nothing:\n%s", d.Log())
	}
	t.Logf("switch: trunk counters %+v", p.Counters())
}

// monitor opens QEMU's human monitor on a UNIX socket: the VM starts paused (-S), the test
// sends its commands (set_link), then cont.
func monitor(t *testing.T) (extra []string, send func(cmds ...string)) {
	sock := filepath.Join(t.TempDir(), "mon.sock")
	extra = []string{"-S", "-chardev", "socket,id=mon1,path=" + sock + ",server=on,wait=off", "-mon", "chardev=mon1,mode=readline"}
	send = func(cmds ...string) {
		var c net.Conn
		var err error
		for i := 0; i < 200; i++ {
			if c, err = net.Dial("unix", sock); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("QEMU monitor: %v", err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for _, cmd := range cmds {
			fmt.Fprintf(c, "%s\n", cmd)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		// Read until the monitor echoed the last command's prompt.
		var out strings.Builder
		for !strings.Contains(out.String(), cmds[len(cmds)-1]) {
			line, err := r.ReadString('\n')
			out.WriteString(line)
			if err != nil {
				break
			}
		}
	}
	return extra, send
}

// TestVMNetFourNICs: four NICs, one cabled (the others' links are down in QEMU): without BOOTIF
// and ip=IF all race, the cabled one wins, and the console and the boot report say why the
// others lost.
func TestVMNetFourNICs(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 1)
	l.dhcp4()
	macs := []string{"52:54:00:00:04:01", "52:54:00:00:04:02", "52:54:00:00:04:03", "52:54:00:00:04:04"}
	var extra []string
	for i, mac := range macs {
		p := l.port(t, fmt.Sprintf("p%d", i), vswitch.Access(1))
		extra = append(extra, p.QEMUArgs(fmt.Sprintf("n%d", i), mac)...)
	}
	mon, send := monitor(t)
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd, Extra: append(extra, mon...),
		Append: ramrootLine(l.base) + " rd.net.timeout.carrier=5",
	})
	send("set_link n0 off", "set_link n1 off", "set_link n3 off", "cont")
	for i, mac := range macs {
		want := `lost: no carrier`
		if i == 2 {
			want = `won: lease 10\.42\.0\.\d+/24 from 10\.42\.0\.1`
		}
		vm.Expect(`netup: race: \S+ \(`+mac+`\): `+want, bootTimeout)
	}
	vm.Expect(`network: (\S+) `+macs[2]+` 10\.42\.0\.\d+/24`, bootTimeout)
	logAddressTime(t, vm.Console())
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
}

// TestVMNetMenuEntry: a menu entry's network: block is brought up when the entry boots: the
// command line's network (untagged DHCP on the trunk) gets nothing, the entry's VLAN does.
func TestVMNetMenuEntry(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 42)
	l.dhcp4()
	p := l.port(t, "trunk", vswitch.Trunk(42))
	menu := filepath.Join(t.TempDir(), "menu.yaml")
	os.WriteFile(menu, []byte(fmt.Sprintf(`default: tagged
timeout: 0
entries:
  - name: tagged
    ramroot: {url: %s/rootfs.tar.zst, sha256: %s}
    network: {vlan: "vlan42:eth0"}
`, l.base, built.sums["rootfs.tar.zst"])), 0o644)
	initrd := filepath.Join(t.TempDir(), "menu-network.cpio.zst")
	if err := writeInitramfs(initrd, initramfs.Spec{Init: filepath.Join(built.dir, "ramboot-init"), Modules: built.kernel.Modules, Menu: menu}); err != nil {
		t.Fatal(err)
	}
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: initrd, Extra: p.QEMUArgs("t0", mac1),
		Append: "rd.net.timeout.dhcp=2 ramboot.onerror=poweroff",
	})
	vm.Expect(`network: bringing up the network: .*no DHCP lease on eth0`, bootTimeout)
	vm.Expect(`tagged: bringing up its network: vlan=vlan42:eth0`, bootTimeout)
	vm.Expect(`network: vlan42 \(`+mac1+`\) 10\.42\.0\.\d+/24 dhcp`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
}

// logAddressTime logs the time from the first DHCP (or DHCPv6, or router solicitation) packet
// /init sent to the address it configured, from the console's timestamps: a figure for the
// closing notes, not an assertion.
func logAddressTime(t *testing.T, console string) {
	t.Helper()
	stamp := `\[\s*(\d+\.\d+)\] ramboot: `
	first := regexp.MustCompile(stamp + `netup: \S+: sent (message (DISCOVER|SOLICIT|Solicit)|router solicitation)`).FindStringSubmatch(console)
	done := regexp.MustCompile(stamp + `network: \S+ `).FindStringSubmatch(console)
	if first == nil || done == nil {
		t.Logf("first packet → address: not found on the console")
		return
	}
	a, _ := strconv.ParseFloat(first[1], 64)
	b, _ := strconv.ParseFloat(done[1], 64)
	t.Logf("first packet → usable address: %.0f ms", (b-a)*1000)
}

// TestVMNetIPv6Only: no IPv4 anywhere; router advertisements and DHCPv6 with option 59 (the
// boot file URL: the menu) on the lab. Without ip= /init runs both families, drops DHCPv4 for
// want of a server, boots the menu's entry from http://[fd00:42::1]:PORT/, and the booted
// image has the DHCPv6 address.
func TestVMNetIPv6Only(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 1)
	menu := fmt.Sprintf(`default: v6
timeout: 0
entries:
  - name: v6
    ramroot: {url: "%s/rootfs.tar.zst", sha256: %s}
`, l.base6, built.sums["rootfs.tar.zst"])
	menuURL, d := l.ipv6Only(menu)
	vm := l.startOnAccess(t)
	vm.Expect(`DHCPv4 abandoned: no server answered`, bootTimeout)
	vm.Expect(`network: eth0 `+mac1+` fd00:42::1[0-9a-f]{2}/\d+`, bootTimeout)
	vm.Expect(`menu from `+regexp.QuoteMeta(menuURL), bootTimeout)
	vm.Expect(`fetching http://\[fd00:42::1\]:\d+/rootfs\.tar\.zst`, bootTimeout)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Expect(`TESTINIT-ADDR eth0 fd00:42::1[0-9a-f]{2}/\d+`, time.Minute)
	logAddressTime(t, vm.Console())
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	if strings.Contains(vm.Console(), "TESTINIT-ADDR eth0 10.") {
		t.Error("an IPv4 address on an IPv6-only network")
	}
	t.Logf("dnsmasq: %d DHCPv6 replies", d.Count(`DHCPREPLY`))
}
