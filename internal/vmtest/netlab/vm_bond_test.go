package netlab

// VM tests of the switch and the lab with Debian's kernel, independent of ramboot's /init: a
// busybox-only initramfs whose /init script bonds the guest's two NICs (Linux's bonding
// driver), puts VLAN 42 on the bond (8021q), asks for a lease with busybox's udhcpc and
// downloads a file from the lab. The switch is the bond's LACP partner, with the lab on VLAN
// 42 behind a trunk.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ramboot/ramboot/internal/vmtest"
	"github.com/ramboot/ramboot/internal/vmtest/vswitch"
)

// The guest's NICs, and the switch's LACP identity.
const (
	nic0 = "52:54:00:42:00:01"
	nic1 = "52:54:00:42:00:02"
)

var switchSystem = net.HardwareAddr{0x02, 0x5e, 0, 0, 0, 0x42}

// bondLab is a booted guest and what it talks to.
type bondLab struct {
	vm   *vmtest.VM
	lag  *vswitch.LAG
	dns  *Dnsmasq
	blob []byte

	mu   sync.Mutex
	dhcp []vswitch.Event // DHCP requests the switch took in (client to server), dropped or not
}

func (b *bondLab) dhcpEvents() []vswitch.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]vswitch.Event(nil), b.dhcp...)
}

// isDHCPRequest says whether f is a UDP datagram to port 67 over IPv4.
func isDHCPRequest(f vswitch.Frame) bool {
	p := f.Payload
	if f.EtherType != vswitch.EtherTypeIPv4 || len(p) < 20 || p[9] != 17 {
		return false
	}
	ihl := int(p[0]&0x0f) * 4
	return len(p) >= ihl+8 && binary.BigEndian.Uint16(p[ihl+2:]) == 67
}

// bootBond starts the lab and a guest whose bond is in mode (a bonding mode=), and returns
// once QEMU runs.
func bootBond(t *testing.T, mode string) *bondLab {
	k := vmtest.FindKernel(t)
	busybox := "/bin/busybox"
	if _, err := os.Stat(busybox); err != nil {
		vmtest.Missing(t, busybox+" (busybox-static)")
	}
	l := New(t)
	b := &bondLab{blob: make([]byte, 256<<10)}
	rand.Read(b.blob)
	sw := vswitch.New(vswitch.Options{Logf: t.Logf, Observe: func(e vswitch.Event) {
		if isDHCPRequest(e.Frame) {
			b.mu.Lock()
			b.dhcp = append(b.dhcp, e)
			b.mu.Unlock()
		}
	}})
	t.Cleanup(func() { sw.Close() })
	if _, err := sw.AddTap("uplink", l.Path(), "lab0", vswitch.Access(42)); err != nil {
		t.Fatal(err)
	}
	l.Up("lab0", "10.42.0.1/24")
	b.dns = l.Dnsmasq(DnsmasqConfig{Interface: "lab0", Lines: []string{
		"dhcp-range=10.42.0.50,10.42.0.99,255.255.255.0,1h", "dhcp-authoritative",
	}})
	url := l.ServeHTTP("10.42.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(b.blob)
	}))
	var err error
	if b.lag, err = sw.AddLAG("bond", vswitch.Trunk(42), 2, vswitch.LACPConfig{SystemMAC: switchSystem, Key: 42}); err != nil {
		t.Fatal(err)
	}
	initrd := bondInitrd(t, k, busybox, mode, url+"/blob")
	extra := append(b.lag.Ports()[0].QEMUArgs("n0", nic0), b.lag.Ports()[1].QEMUArgs("n1", nic1)...)
	b.vm = vmtest.Start(t, vmtest.Options{Kernel: k, Initrd: initrd, Append: "quiet", Memory: "512M", Extra: extra})
	return b
}

// The guest's /init. Modules are loaded in dependency order; bonding gets the bond's options
// (it creates bond0 as it loads).
const bondInit = `#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
while read m args; do insmod /lib/modules/$m $args || echo "INSMOD FAILED $m"; done </modules
i=0; while [ ! -e /sys/class/net/eth1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo +eth0 >/sys/class/net/bond0/bonding/slaves
echo +eth1 >/sys/class/net/bond0/bonding/slaves
ip link set bond0 up
echo "BONDMAC $(cat /sys/class/net/bond0/address)"
ip link add link bond0 name bond0.42 type vlan id 42 || vconfig add bond0 42
ip link set bond0.42 up
if udhcpc -i bond0.42 -f -n -q -t %d -T 2 -s /dhcp.sh; then
	wget -q -O /tmp/blob %s && echo "SUM $(sha256sum /tmp/blob)"
	if udhcpc -i bond0 -f -n -q -t 2 -T 1 -s /dhcp.sh; then echo "UNTAGGED LEASE"; else echo "UNTAGGED NOLEASE"; fi
	cat /proc/net/bonding/bond0
else
	echo NOLEASE
fi
echo DONE
poweroff -f
`

const dhcpScript = `#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add $ip/$mask dev $interface && echo "LEASE $ip on $interface"
`

// bondInitrd writes the guest's initramfs: busybox, the script, and virtio-pci, virtio-net, bonding,
// 8021q and their dependencies from the kernel's modules.
func bondInitrd(t *testing.T, k vmtest.Kernel, busybox, mode, url string) string {
	t.Helper()
	mods, err := moduleOrder(k.Modules, "kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/net/virtio_net.ko", "kernel/drivers/net/bonding/bonding.ko", "kernel/net/8021q/8021q.ko")
	if err != nil {
		t.Fatal(err)
	}
	tries := 20 // LACP takes a few seconds to aggregate; until then the bond passes nothing
	if mode != "802.3ad" {
		tries = 4
	}
	bb, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	recs := []cpio.Record{
		cpio.Directory("bin", 0o755), cpio.Directory("dev", 0o755), cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755), cpio.Directory("tmp", 0o1777),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.StaticRecord(bb, cpio.Info{Name: "bin/busybox", Mode: cpio.S_IFREG | 0o755}),
		cpio.Symlink("bin/sh", "busybox"),
		cpio.StaticRecord([]byte(fmt.Sprintf(bondInit, tries, url)), cpio.Info{Name: "init", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticRecord([]byte(dhcpScript), cpio.Info{Name: "dhcp.sh", Mode: cpio.S_IFREG | 0o755}),
	}
	var list strings.Builder
	dirs := map[string]bool{}
	for _, m := range mods {
		for d := filepath.Dir(filepath.Join("lib/modules", m)); d != "."; d = filepath.Dir(d) {
			dirs[d] = true
		}
		data, err := os.ReadFile(filepath.Join(k.Modules, m))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, cpio.StaticRecord(data, cpio.Info{Name: filepath.Join("lib/modules", m), Mode: cpio.S_IFREG | 0o644}))
		list.WriteString(m)
		if strings.HasSuffix(m, "/bonding.ko") {
			list.WriteString(" mode=" + mode + " lacp_rate=fast miimon=100")
		}
		list.WriteString("\n")
	}
	recs = append(recs, cpio.StaticRecord([]byte(list.String()), cpio.Info{Name: "modules", Mode: cpio.S_IFREG | 0o644}))
	for d := range dirs {
		recs = append(recs, cpio.Directory(d, 0o755))
	}
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	// Directories first, parents before children: the kernel creates what it unpacks in order.
	recs = sortedRecords(recs)
	for _, r := range recs {
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "initrd.cpio")
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// sortedRecords puts directories first, shortest path first.
func sortedRecords(recs []cpio.Record) []cpio.Record {
	var dirs, rest []cpio.Record
	for _, r := range recs {
		if r.Mode&cpio.S_IFMT == cpio.S_IFDIR {
			dirs = append(dirs, r)
		} else {
			rest = append(rest, r)
		}
	}
	for i := range dirs { // insertion sort by depth: a handful of records
		for j := i; j > 0 && strings.Count(dirs[j].Name, "/") < strings.Count(dirs[j-1].Name, "/"); j-- {
			dirs[j], dirs[j-1] = dirs[j-1], dirs[j]
		}
	}
	return append(dirs, rest...)
}

// moduleOrder reads modules.dep in dir and returns want and their dependencies, each after
// what it depends on.
func moduleOrder(dir string, want ...string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	deps := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if ok {
			deps[mod] = strings.Fields(rest)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var order []string
	seen := map[string]bool{}
	var visit func(string) error
	visit = func(m string) error {
		if seen[m] {
			return nil
		}
		seen[m] = true
		d, ok := deps[m]
		if !ok {
			return fmt.Errorf("%s: not in %s/modules.dep", m, dir)
		}
		for _, x := range d {
			if err := visit(x); err != nil {
				return err
			}
		}
		order = append(order, m)
		return nil
	}
	for _, m := range want {
		if err := visit(m); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// TestVMBondLACP: Linux's 802.3ad bond aggregates both NICs with the switch, gets a lease
// over VLAN 42 and downloads a file; an untagged DHCP request on the bond itself goes
// unanswered.
func TestVMBondLACP(t *testing.T) {
	t.Parallel()
	b := bootBond(t, "802.3ad")
	bondMAC := b.vm.Expect(`BONDMAC ([0-9a-f:]{17})`, 90*time.Second)[1]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.lag.WaitAggregated(ctx, 2); err != nil {
		t.Fatal(err)
	}
	aggregated := time.Now()
	lease := b.vm.Expect(`LEASE (10\.42\.0\.\d+) on bond0\.42`, 60*time.Second)[1]
	leased := time.Now()
	sum := sha256.Sum256(b.blob)
	if got := b.vm.Expect(`SUM ([0-9a-f]{64})`, 60*time.Second)[1]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("downloaded sha256 %s, want %x", got, sum)
	}
	b.vm.Expect(`UNTAGGED NOLEASE`, 60*time.Second)
	// The guest's view: the switch is its partner (/proc/net/bonding/bond0).
	b.vm.Expect(`(?i)partner mac address: `+switchSystem.String(), 10*time.Second)
	b.vm.Expect(`DONE`, 30*time.Second)
	st := b.lag.State()
	first := st.Members[0].PartnerSince
	t.Logf("bond %s: aggregated %v after its first LACPDU, leased %s %v after", bondMAC,
		aggregated.Sub(first).Round(time.Millisecond), lease, leased.Sub(aggregated).Round(time.Millisecond))
	ports := map[uint16]bool{}
	for _, m := range st.Members {
		t.Logf("%s: partner %s key %d port %d state %v; switch %v; LACPDUs in %d out %d", m.Port, m.Partner.System,
			m.Partner.Key, m.Partner.Port, m.Partner.State, m.Actor.State, m.LACPDUsIn, m.LACPDUsOut)
		if !m.Aggregated || m.Partner.System.String() != bondMAC {
			t.Errorf("%s: aggregated %v with partner %s, want aggregated with the bond %s", m.Port, m.Aggregated, m.Partner.System, bondMAC)
		}
		if m.Partner.Key != st.Members[0].Partner.Key {
			t.Errorf("%s: partner key %d, %s's is %d", m.Port, m.Partner.Key, st.Members[0].Port, st.Members[0].Partner.Key)
		}
		ports[m.Partner.Port] = true
	}
	if len(ports) != 2 {
		t.Errorf("partner ports %v, want two different", ports)
	}
	// DHCP crossed the switch on VLAN 42, tagged, only; the untagged request was dropped.
	var tagged, untagged int
	for _, e := range b.dhcpEvents() {
		switch {
		case e.Drop == "" && e.Frame.Tagged && e.VLAN == 42:
			tagged++
		case e.Drop == vswitch.DropUntaggedOnTrunk:
			untagged++
		case e.Drop == vswitch.DropNotCollecting:
			// udhcpc began before LACP had aggregated: the strict switch dropped it
		case e.Port == "uplink":
		default:
			t.Errorf("DHCP request on %s: VLAN %d tagged %v dropped %q", e.Port, e.VLAN, e.Frame.Tagged, e.Drop)
		}
	}
	if tagged == 0 || untagged == 0 {
		t.Errorf("DHCP requests: %d passed tagged in VLAN 42, %d untagged dropped; want some of both", tagged, untagged)
	}
	if n := b.dns.Count(`DHCPACK\(lab0\) ` + lease + ` ` + bondMAC); n != 1 {
		t.Errorf("dnsmasq acked %s to %s %d times, want once:\n%s", lease, bondMAC, n, b.dns.Log())
	}
}

// TestVMBondNoLACP: a bond that does not speak LACP (balance-rr) gets nothing through: no
// lease, and the switch says why.
func TestVMBondNoLACP(t *testing.T) {
	t.Parallel()
	b := bootBond(t, "balance-rr")
	b.vm.Expect(`BONDMAC ([0-9a-f:]{17})`, 90*time.Second)
	b.vm.Expect(`NOLEASE`, 90*time.Second)
	b.vm.Expect(`DONE`, 30*time.Second)
	st := b.lag.State()
	var dropped uint64
	for i, m := range st.Members {
		if m.PartnerValid || m.LACPDUsIn != 0 || m.Aggregated {
			t.Errorf("%s: %+v, want no partner, no LACPDU", m.Port, m)
		}
		if m.LACPDUsOut == 0 {
			t.Errorf("%s: the switch sent no LACPDU", m.Port)
		}
		dropped += b.lag.Ports()[i].Drops(vswitch.DropNotCollecting)
	}
	if dropped == 0 {
		t.Error("no frame dropped as not collecting")
	}
	dhcp := 0
	for _, e := range b.dhcpEvents() {
		if e.Drop != vswitch.DropNotCollecting {
			t.Errorf("DHCP request on %s: VLAN %d dropped %q, want dropped as not collecting", e.Port, e.VLAN, e.Drop)
		}
		dhcp++
	}
	if dhcp == 0 {
		t.Error("the switch saw no DHCP request")
	}
	if n := b.dns.Count(`DHCPDISCOVER`); n != 0 {
		t.Errorf("dnsmasq saw %d DHCPDISCOVERs:\n%s", n, b.dns.Log())
	}
	t.Logf("%d frames dropped as not collecting, %d of them DHCP requests", dropped, dhcp)
}
