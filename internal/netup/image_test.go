package netup

import (
	"flag"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ramboot/ramboot/internal/cmdline"
)

var (
	dhcpLeaseFixture = &Lease{
		Iface: "eth0", MAC: testMAC, Addr: pfx("10.0.0.5/24"), Gateway: ip("10.0.0.1"),
		DNS: []netip.Addr{ip("10.0.0.53")}, Search: []string{"lab.example"}, Hostname: "node7",
		Server: ip("10.0.0.1"), DHCP: true,
	}
	staticLeaseFixture = &Lease{
		Iface: "eth1", MAC: testMAC, Addr: pfx("192.0.2.15/24"), Gateway: ip("192.0.2.1"),
		DNS: []netip.Addr{ip("192.0.2.53"), ip("192.0.2.54")}, Search: []string{"lab.example", "example"},
	}
)

// layout creates files under a new root: a name ending in / is a directory, "->" makes a
// symlink.
func layout(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			err := os.MkdirAll(p, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// plain is the topology of a single-NIC boot.
func plain(l *Lease) *imageTopo {
	t, err := (&ImageNet{Lease: l}).check()
	if err != nil {
		panic(err)
	}
	return t
}

func TestWriteImageConfig(t *testing.T) {
	const debianInterfaces = "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n"
	for _, tt := range []struct {
		name    string
		files   map[string]string
		lease   *Lease
		want    []string
		check   map[string]string // file: content wanted ("" = must not exist)
		symlink map[string]string // file: symlink target that must be unchanged
	}{
		{
			name: "debian with ifupdown, dhcp",
			files: map[string]string{
				"etc/network/interfaces": debianInterfaces, "etc/network/interfaces.d/": "",
				"etc/systemd/system/": "", "etc/udev/": "", "etc/hostname": "buildbox\n",
			},
			lease: dhcpLeaseFixture,
			want:  []string{NetworkdPath, IfupdownPath, UdevRulePath, ResolvPath, HostnamePath},
			check: map[string]string{
				"/etc/network/interfaces": debianInterfaces,
				IfupdownPath:              renderIfupdown(plain(dhcpLeaseFixture)),
				NetworkdPath:              renderNetworkd(plain(dhcpLeaseFixture))[0].data,
				ResolvPath:                renderResolvConf(dhcpLeaseFixture.DNS, dhcpLeaseFixture.Search),
				HostnamePath:              "node7\n",
				NetplanPath:               "",
			},
		},
		{
			// udev only in /usr/lib (no /etc/udev): the rule is still needed, or networkd
			// leaves the link pending after udev's failed rename.
			name:  "networkd with udev in /usr/lib only",
			files: map[string]string{"etc/systemd/": "", "usr/lib/udev/rules.d/": ""},
			lease: staticLeaseFixture,
			want:  []string{NetworkdPath, UdevRulePath, ResolvPath},
			check: map[string]string{UdevRulePath: renderUdevRule(plain(staticLeaseFixture)), IfupdownPath: ""},
		},
		{
			name: "ubuntu with netplan and resolved, static",
			files: map[string]string{
				"etc/netplan/50-cloud-init.yaml": "network: {version: 2}\n", "etc/systemd/": "", "etc/udev/": "",
				"etc/resolv.conf": "->../run/systemd/resolve/stub-resolv.conf",
			},
			lease: staticLeaseFixture,
			want:  []string{NetplanPath, UdevRulePath},
			check: map[string]string{
				NetplanPath: renderNetplan(plain(staticLeaseFixture)), NetworkdPath: "", IfupdownPath: "", HostnamePath: "",
			},
			symlink: map[string]string{ResolvPath: "../run/systemd/resolve/stub-resolv.conf"},
		},
		{
			name:  "container image: empty resolv.conf, no network tools",
			files: map[string]string{"etc/resolv.conf": "# empty\n"},
			lease: staticLeaseFixture,
			want:  []string{ResolvPath},
			check: map[string]string{ResolvPath: renderResolvConf(staticLeaseFixture.DNS, staticLeaseFixture.Search)},
		},
		{
			name:  "resolv.conf with nameservers is the image's",
			files: map[string]string{"etc/resolv.conf": "nameserver 9.9.9.9\n"},
			lease: dhcpLeaseFixture,
			want:  []string{HostnamePath},
			check: map[string]string{ResolvPath: "nameserver 9.9.9.9\n"},
		},
		{
			name:  "interfaces without source gets one",
			files: map[string]string{"etc/network/interfaces": "auto lo\niface lo inet loopback"},
			lease: staticLeaseFixture,
			want:  []string{IfupdownPath, "/etc/network/interfaces", ResolvPath},
			check: map[string]string{
				"/etc/network/interfaces": "auto lo\niface lo inet loopback\n\n# Added by ramboot for the boot NIC.\nsource /etc/network/interfaces.d/ramboot\n",
			},
		},
		{
			name: "ifupdown already configures the NIC",
			files: map[string]string{
				"etc/network/interfaces":         debianInterfaces,
				"etc/network/interfaces.d/eth1":  "allow-hotplug eth1\niface eth1 inet dhcp\n",
				"etc/resolv.conf":                "nameserver 9.9.9.9\n",
				"etc/network/interfaces.d/other": "iface eth0 inet dhcp\n",
			},
			lease: staticLeaseFixture,
			check: map[string]string{IfupdownPath: ""},
		},
		{
			name:    "symlinks out of the image are replaced, not followed",
			files:   map[string]string{"etc/hostname": "->/etc/hostname", "etc/resolv.conf": "->/etc/resolv.conf"},
			lease:   dhcpLeaseFixture,
			want:    []string{HostnamePath},
			check:   map[string]string{HostnamePath: "node7\n"},
			symlink: map[string]string{ResolvPath: "/etc/resolv.conf"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := layout(t, tt.files)
			got, err := WriteImageConfig(root, &ImageNet{Lease: tt.lease})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpEmpty); diff != "" {
				t.Errorf("files written (-want +got):\n%s", diff)
			}
			for name, want := range tt.check {
				p := filepath.Join(root, name)
				b, err := os.ReadFile(p)
				if want == "" {
					if !os.IsNotExist(err) {
						t.Errorf("%s exists (%v), want it absent", name, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if fi, _ := os.Lstat(p); !fi.Mode().IsRegular() {
					t.Errorf("%s: mode %v, want a regular file", name, fi.Mode())
				}
				if diff := cmp.Diff(want, string(b)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
			for name, want := range tt.symlink {
				if got, err := os.Readlink(filepath.Join(root, name)); err != nil || got != want {
					t.Errorf("%s -> %q (%v), want the symlink to %q kept", name, got, err, want)
				}
			}
			if fi, err := os.Stat(filepath.Join(root, NetplanPath)); err == nil && fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", NetplanPath, fi.Mode().Perm())
			}
			if leftovers, _ := filepath.Glob(filepath.Join(root, "etc/*/.*ramboot-tmp")); len(leftovers) > 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
}

func TestWriteImageConfigErrors(t *testing.T) {
	if _, err := WriteImageConfig(t.TempDir(), nil); err == nil {
		t.Error("nil: no error")
	}
	if _, err := WriteImageConfig(t.TempDir(), &ImageNet{}); err == nil {
		t.Error("nil lease: no error")
	}
	if _, err := WriteImageConfig(filepath.Join(t.TempDir(), "missing"), &ImageNet{Lease: dhcpLeaseFixture}); err == nil {
		t.Error("missing root: no error")
	}
}

var updateGolden = flag.Bool("update", false, "rewrite testdata/image's golden files")

var (
	nicMAC1 = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x01}
	nicMAC2 = net.HardwareAddr{0x52, 0x54, 0x00, 0x00, 0x00, 0x02}
)

// lacpBond is bond0 in 802.3ad over eth0 and eth1, with the options issue 19 names.
func lacpBond(opts string, mtu int) []ImageLink {
	var o []cmdline.BondOption
	for _, kv := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(kv, "=")
		o = append(o, cmdline.BondOption{Name: k, Value: v})
	}
	return []ImageLink{
		{Kind: ImageNIC, Name: "eth0", MAC: nicMAC1, Master: "bond0", MTU: mtu},
		{Kind: ImageNIC, Name: "eth1", MAC: nicMAC2, Master: "bond0", MTU: mtu},
		{Kind: ImageBond, Name: "bond0", MAC: nicMAC1, BondOptions: o, MTU: mtu},
	}
}

func v6Addr(p, from string) Addr6 {
	return Addr6{Prefix: pfx(p), From: from, Valid: time.Hour, Preferred: 30 * time.Minute}
}

// imageTopologies are the networks issue 19 asks the image and the next kernel to keep.
func imageTopologies() []struct {
	name string
	net  *ImageNet
} {
	dhcp := func(iface string, mac net.HardwareAddr) *Lease {
		return &Lease{Iface: iface, MAC: mac, Addr: pfx("10.0.0.5/24"), Gateway: ip("10.0.0.1"),
			DNS: []netip.Addr{ip("10.0.0.53")}, Search: []string{"lab.example"}, Hostname: "node7",
			Server: ip("10.0.0.1"), DHCP: true}
	}
	vlanOnBond := append(lacpBond("mode=4,miimon=100,lacp_rate=1,xmit_hash_policy=layer2+3,min_links=1,use_carrier=1", 9000),
		ImageLink{Kind: ImageVLAN, Name: "bond0.100", MAC: nicMAC1, Parent: "bond0", VLANID: 100, MTU: 9000})
	staticOnVLAN := &Lease{Iface: "bond0.100", MAC: nicMAC1, Addr: pfx("192.0.2.15/24"), Gateway: ip("192.0.2.1"),
		DNS: []netip.Addr{ip("192.0.2.53"), ip("192.0.2.54"), ip("192.0.2.55")}, Hostname: "node8"}
	dual := dhcp("vlan42", nicMAC1)
	dual.V6 = &Lease6{Addrs: []Addr6{v6Addr("2001:db8:42::100/128", "dhcpv6"), v6Addr("2001:db8:42::5054:ff:fe00:1/64", "slaac")},
		Gateway: ip("fe80::1"), DNS: []netip.Addr{ip("2001:db8:42::53")}}
	noV4 := func(v6 *Lease6) *Lease { return &Lease{Iface: "eth0", MAC: testMAC, V6: v6} }
	return []struct {
		name string
		net  *ImageNet
	}{
		{"dhcp", &ImageNet{Lease: dhcpLeaseFixture}},
		{"static", &ImageNet{Lease: staticLeaseFixture}},
		{"bond-dhcp", &ImageNet{Lease: dhcp("bond0", nicMAC1),
			Links: lacpBond("mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4", 0)}},
		{"vlan-dhcp", &ImageNet{Lease: dhcp("vlan42", nicMAC1), Links: []ImageLink{
			{Kind: ImageVLAN, Name: "vlan42", MAC: nicMAC1, Parent: "eth0", VLANID: 42},
			{Kind: ImageNIC, Name: "eth0", MAC: nicMAC1},
		}}},
		{"vlan-on-bond-static", &ImageNet{Lease: staticOnVLAN, Links: vlanOnBond, Net: &cmdline.Network{
			Routes:      []cmdline.Route{{Dst: pfx("10.9.0.0/16"), Gateway: ip("192.0.2.254")}, {Dst: pfx("10.8.0.0/16"), Gateway: ip("192.0.2.253"), Device: "eth9"}},
			Nameservers: []netip.Addr{ip("192.0.2.56")},
			Timeouts:    cmdline.NetTimeouts{Carrier: 20 * time.Second},
		}}},
		{"slaac", &ImageNet{Lease: noV4(&Lease6{Addrs: []Addr6{v6Addr("2001:db8:1::5054:ff:fe12:3456/64", "slaac")},
			Gateway: ip("fe80::1"), DNS: []netip.Addr{ip("2001:db8:1::53")}})}},
		{"dhcpv6", &ImageNet{Lease: noV4(&Lease6{Addrs: []Addr6{v6Addr("2001:db8:1::100/128", "dhcpv6")},
			Gateway: ip("fe80::1"), DNS: []netip.Addr{ip("2001:db8:1::53")}, BootFileURL: "http://[2001:db8:1::1]/menu.yaml"})}},
		{"static6", &ImageNet{Lease: noV4(&Lease6{Addrs: []Addr6{v6Addr("2001:db8:2::15/64", "static"), v6Addr("2001:db8:2::16/64", "static")},
			Gateway: ip("2001:db8:2::1"), DNS: []netip.Addr{ip("2001:db8:2::53")}, Search: []string{"v6.example"}})}},
		{"dual-stack", &ImageNet{Lease: func() *Lease {
			l := dhcp("eth0", testMAC)
			l.V6 = &Lease6{Addrs: []Addr6{v6Addr("2001:db8:1::5054:ff:fe12:3456/64", "slaac")}, Gateway: ip("fe80::1")}
			return l
		}()}},
		{"vlan-on-bond-dual-stack", &ImageNet{Lease: dual, Links: append(lacpBond("mode=802.3ad,miimon=100", 0),
			ImageLink{Kind: ImageVLAN, Name: "vlan42", MAC: nicMAC1, Parent: "bond0", VLANID: 42})}},
	}
}

// imageLayouts are the images the golden files are written into: Debian with networkd,
// ifupdown and udev, and one with netplan.
var imageLayouts = []struct {
	name  string
	files map[string]string
}{
	{"debian", map[string]string{
		"etc/network/interfaces": "source /etc/network/interfaces.d/*\n", "etc/network/interfaces.d/": "",
		"etc/systemd/system/": "", "usr/lib/udev/rules.d/": "",
	}},
	{"netplan", map[string]string{"etc/netplan/": "", "etc/systemd/": "", "etc/udev/": "",
		"etc/resolv.conf": "->../run/systemd/resolve/stub-resolv.conf"}},
}

// TestImageGolden writes each topology into each layout and compares every file written
// with testdata/image/TOPOLOGY/LAYOUT/… (go test -run ImageGolden -update rewrites them).
func TestImageGolden(t *testing.T) {
	for _, tp := range imageTopologies() {
		for _, lay := range imageLayouts {
			t.Run(tp.name+"/"+lay.name, func(t *testing.T) {
				root := layout(t, lay.files)
				written, err := WriteImageConfig(root, tp.net)
				if err != nil {
					t.Fatal(err)
				}
				dir := filepath.Join("testdata", "image", tp.name, lay.name)
				if *updateGolden {
					os.RemoveAll(dir)
				}
				for _, name := range written {
					got, err := os.ReadFile(filepath.Join(root, name))
					if err != nil {
						t.Fatal(err)
					}
					golden := filepath.Join(dir, name)
					if *updateGolden {
						if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(golden, got, 0o644); err != nil {
							t.Fatal(err)
						}
						continue
					}
					want, err := os.ReadFile(golden)
					if err != nil {
						t.Errorf("%s written, but no golden file: %v", name, err)
						continue
					}
					if diff := cmp.Diff(string(want), string(got)); diff != "" {
						t.Errorf("%s (-want +got):\n%s", name, diff)
					}
				}
				// Every golden file must have been written.
				filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() && !slices.Contains(written, strings.TrimPrefix(p, dir)) {
						t.Errorf("%s not written", strings.TrimPrefix(p, dir))
					}
					return nil
				})
			})
		}
	}
}

// TestNewImageNet: what Up reports of the bonds and VLANs it made becomes the topology the
// renderers take, the same as the hand-made one of the golden tests.
func TestNewImageNet(t *testing.T) {
	opts := []cmdline.BondOption{{Name: "mode", Value: "802.3ad"}, {Name: "miimon", Value: "100"}}
	l := &Lease{Iface: "vlan42", MAC: nicMAC1, DHCP: true, Addr: pfx("10.0.0.5/24"),
		Bonds: []BondState{{Bond: cmdline.Bond{Name: "bond0", Slaves: []string{"eth0", "eth1"}, Options: opts},
			MAC: nicMAC1, Members: []Member{{Name: "eth0", MAC: nicMAC1}, {Name: "eth1", MAC: nicMAC2}}}},
		VLANs: []cmdline.VLAN{{Name: "vlan42", Parent: "bond0", ID: 42}, {Name: "vlan7", Parent: "eth5", ID: 7}}}
	got := NewImageNet(l, nil)
	want := append(lacpBond("mode=802.3ad,miimon=100", 0), ImageLink{Kind: ImageVLAN, Name: "vlan42", MAC: nicMAC1, Parent: "bond0", VLANID: 42})
	if diff := cmp.Diff(want, got.Links); diff != "" {
		t.Errorf("bond and VLAN (-want +got):\n%s", diff)
	}
	l = &Lease{Iface: "eth0.42", MAC: nicMAC2, DHCP: true, VLANs: []cmdline.VLAN{{Name: "eth0.42", Parent: "eth0", ID: 42}}}
	want = []ImageLink{{Kind: ImageNIC, Name: "eth0", MAC: nicMAC2}, {Kind: ImageVLAN, Name: "eth0.42", MAC: nicMAC2, Parent: "eth0", VLANID: 42}}
	if diff := cmp.Diff(want, NewImageNet(l, nil).Links); diff != "" {
		t.Errorf("VLAN on a NIC (-want +got):\n%s", diff)
	}
	if n := NewImageNet(dhcpLeaseFixture, nil); len(n.Links) != 0 || n.Lease != dhcpLeaseFixture {
		t.Errorf("a single NIC: %+v", n)
	}
}

// The IAID networkd is told is the one ramboot's DHCPv6 client sends, on the wire.
func TestIAID6(t *testing.T) {
	if got, want := iaid6(testMAC), uint32(0x00123456); got != want {
		t.Errorf("iaid6(%s) = %#x, want %#x", testMAC, got, want)
	}
}
