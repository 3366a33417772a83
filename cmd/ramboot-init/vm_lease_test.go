package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/vmtest"
	"github.com/ramboot/ramboot/internal/vmtest/vswitch"
)

// TestVMLease: the menu waits at the console for longer than the DHCP lease (dnsmasq's
// shortest, two minutes: it raises anything shorter), with no key pressed. /init renews the
// lease at each T1 (dnsmasq logs the REQUESTs), the address never lapses (the boot's kernel
// log, which the booted image prints, has a renewal for each and no removal), and Enter
// then boots over the same address.
func TestVMLease(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 1)
	d := l.dhcp4()
	p := l.port(t, "guest", vswitch.Access(1))
	menu := fmt.Sprintf("lease-%d.yaml", os.Getpid())
	text := fmt.Sprintf(`title: Lease lab
default: rescue
entries:
  - name: rescue
    title: Rescue image
    ramroot: {url: %s/rootfs.tar.zst, sha256: %s}
`, l.base, built.sums["rootfs.tar.zst"])
	if err := os.WriteFile(filepath.Join(built.dir, menu), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd, Extra: p.QEMUArgs("n0", mac1),
		Append: fmt.Sprintf("ramboot.menu=%s/%s BOOTIF=%s ramboot.onerror=poweroff", l.base, menu, bootif(mac1)),
	})
	vm.ExpectScreen(`Rescue image`, bootTimeout)
	ack := vm.Console()
	lease := regexp.MustCompile(`network: eth0 \S+ (10\.42\.0\.\d+)/24`).FindStringSubmatch(ack)
	if lease == nil {
		t.Fatalf("no lease on eth0:\n%s", ack)
	}
	addr := lease[1]
	if first, usable, ok := dhcpSpan(ack); ok {
		t.Logf("first DHCP packet to a usable address: %v", usable-first)
	}
	// The first REQUEST is the one after the offer; three more are renewals at T1 (60 s
	// each): the menu has waited three minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	start := time.Now()
	for n := 0; n < 4; {
		select {
		case <-ctx.Done():
			t.Fatalf("%d DHCPREQUESTs from the guest within 6 minutes, want 4 (3 renewals):\n%s", n, d.Log())
		case <-time.After(time.Second):
		}
		if m := d.Requests(mac1); m != n {
			n = m
			t.Logf("%v: %d DHCPREQUESTs", time.Since(start).Round(time.Second), n)
		}
	}
	if n := d.Count(`DHCPDISCOVER`); n != 1 {
		t.Errorf("%d DHCPDISCOVERs, want 1 (renewals only):\n%s", n, d.Log())
	}
	if n := d.Count(`DHCPNAK`); n != 0 {
		t.Errorf("dnsmasq NAKed:\n%s", d.Log())
	}
	vm.Send(keyEnter)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	log := bootLog(vm.Console())
	renewed := regexp.MustCompile(`netup: eth0: lease renewed until (\S+) \(T1 (\S+)\)`).FindAllStringSubmatch(log, -1)
	if len(renewed) < 3 {
		t.Errorf("the boot's log has %d renewals, want at least 3:\n%s", len(renewed), log)
	}
	for _, r := range renewed {
		t.Logf("renewed until %s (T1 %s)", r[1], r[2])
	}
	for _, bad := range []string{"removing " + addr, "lapsed", "lease ended", "DISCOVER\n", "no answer"} {
		if strings.Contains(log+"\n", bad) {
			t.Errorf("the boot's log says %q: the lease was not kept:\n%s", bad, log)
		}
	}
	if m := regexp.MustCompile(`netup: eth0: keeping \S+: lease until (\S+), renewing at ([^,\s]+)`).FindStringSubmatch(log); m != nil {
		t.Logf("first lease until %s, T1 %s (guest clock)", m[1], m[2])
	} else {
		t.Errorf("no keeper in the boot's log:\n%s", log)
	}
	if !strings.Contains(log, "handing "+addr+"/24 over with lifetime forever") {
		t.Errorf("no handover of %s in the boot's log:\n%s", addr, log)
	}
	if !regexp.MustCompile(`TESTINIT-ADDR eth0 ` + regexp.QuoteMeta(addr) + `/24`).MatchString(vm.Console()) {
		t.Errorf("the booted image lacks %s on eth0", addr)
	}
}

// bootLog is /init's log as the booted image read it from the kernel (TESTINIT-KMSG lines).
func bootLog(console string) string {
	var kmsg []string
	for _, line := range strings.Split(console, "\n") {
		if m, ok := strings.CutPrefix(strings.TrimSpace(line), "TESTINIT-KMSG "); ok {
			kmsg = append(kmsg, m)
		}
	}
	return strings.Join(kmsg, "\n")
}

// TestVMLeaseIPv6: an IPv6-only network (router advertisements, DHCPv6 with dnsmasq's
// shortest lifetime, two minutes, and the menu as option 59); the menu waits with no key for
// longer than the address's lifetime. /init solicits again at half of it (dnsmasq answers each
// time), the address never lapses, and Enter then boots over it.
func TestVMLeaseIPv6(t *testing.T) {
	t.Parallel()
	l := newNetLab(t, 1)
	menu := fmt.Sprintf(`title: Lease lab v6
default: v6
entries:
  - name: v6
    title: IPv6 image
    ramroot: {url: "%s/rootfs.tar.zst", sha256: %s}
`, l.base6, built.sums["rootfs.tar.zst"])
	_, d := l.ipv6Only(menu)
	vm := l.startOnAccess(t)
	vm.ExpectScreen(`IPv6 image`, bootTimeout)
	m := regexp.MustCompile(`network: eth0 \S+ (fd00:42::1[0-9a-f]{2})/\d+`).FindStringSubmatch(vm.Console())
	if m == nil {
		t.Fatalf("no DHCPv6 address on eth0:\n%s", vm.Console())
	}
	addr := m[1]
	// The first REPLY gave the address; two more are the keeper's, at about 60 and 120 s.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	for n := 0; n < 3; {
		select {
		case <-ctx.Done():
			t.Fatalf("%d DHCPv6 REPLYs within 5 minutes, want 3 (2 refreshes):\n%s", n, d.Log())
		case <-time.After(time.Second):
		}
		if c := d.Count(`DHCPREPLY\(tap0\) ` + regexp.QuoteMeta(addr)); c != n {
			n = c
			t.Logf("%v: %d DHCPv6 REPLYs with %s", time.Since(start).Round(time.Second), n, addr)
		}
	}
	vm.Send(keyEnter)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	log := bootLog(vm.Console())
	refreshed := regexp.MustCompile(`netup: eth0: IPv6 refreshed: (\S+) dhcpv6 until (\S+) \(again at (\S+)\)`).FindAllStringSubmatch(log, -1)
	if len(refreshed) < 2 {
		t.Errorf("the boot's log has %d IPv6 refreshes, want at least 2:\n%s", len(refreshed), log)
	}
	for _, r := range refreshed {
		t.Logf("IPv6 refreshed: %s until %s (again at %s)", r[1], r[2], r[3])
		if !strings.HasPrefix(r[1], addr+"/") {
			t.Errorf("refreshed %s, want %s kept", r[1], addr)
		}
	}
	if strings.Contains(log, "IPv6 again:") {
		t.Errorf("a refresh failed:\n%s", log)
	}
	if !strings.Contains(log, "handing "+addr+"/") {
		t.Errorf("no handover of %s in the boot's log:\n%s", addr, log)
	}
	if !regexp.MustCompile(`TESTINIT-ADDR eth0 ` + regexp.QuoteMeta(addr) + `/`).MatchString(vm.Console()) {
		t.Errorf("the booted image lacks %s on eth0", addr)
	}
}

// dhcpSpan is the guest's times (seconds since boot, its log's stamps) of the first DHCP
// packet sent and of the lease configured.
func dhcpSpan(console string) (first, usable time.Duration, ok bool) {
	stamp := func(re string) (time.Duration, bool) {
		m := regexp.MustCompile(`\[\s*(\d+)\.(\d{3})\] ramboot: ` + re).FindStringSubmatch(console)
		if m == nil {
			return 0, false
		}
		s, _ := strconv.Atoi(m[1])
		ms, _ := strconv.Atoi(m[2])
		return time.Duration(s)*time.Second + time.Duration(ms)*time.Millisecond, true
	}
	first, ok1 := stamp(`netup: \S+: sent message DISCOVER`)
	usable, ok2 := stamp(`netup: \S+ \(\S+\) 10\.42\.0\.\d+/24 dhcp`)
	return first, usable, ok1 && ok2
}
