package netup

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ramboot/ramboot/internal/cmdline"
)

func TestKernelParams(t *testing.T) {
	const (
		bondPorts = "ifname=eth0:52:54:00:00:00:01 ifname=eth1:52:54:00:00:00:02 "
		dhcpAsIs  = "10.0.0.5:10.0.0.1:10.0.0.1:255.255.255.0:node7:"
	)
	want := map[string][2]string{ // topology: {as configured, static (ipappend)}
		"dhcp":   {"", "ip=" + dhcpAsIs + ":off:10.0.0.53"},
		"static": {"ip=192.0.2.15::192.0.2.1:255.255.255.0:::off:192.0.2.53:192.0.2.54"},
		"bond-dhcp": {
			bondPorts + "bond=bond0:eth0,eth1:mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4 ip=bond0:dhcp",
			bondPorts + "bond=bond0:eth0,eth1:mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4 ip=" + dhcpAsIs + "bond0:off:10.0.0.53",
		},
		"vlan-dhcp": {
			"ifname=eth0:52:54:00:00:00:01 vlan=vlan42:eth0 ip=vlan42:dhcp",
			"ifname=eth0:52:54:00:00:00:01 vlan=vlan42:eth0 ip=" + dhcpAsIs + "vlan42:off:10.0.0.53",
		},
		"vlan-on-bond-static": {bondPorts + "bond=bond0:eth0,eth1:mode=4,miimon=100,lacp_rate=1,xmit_hash_policy=layer2+3,min_links=1,use_carrier=1:9000 " +
			"vlan=bond0.100:bond0 ip=192.0.2.15::192.0.2.1:255.255.255.0:node8:bond0.100:off:192.0.2.53:192.0.2.54 " +
			"rd.route=10.9.0.0/16:192.0.2.254 rd.route=10.8.0.0/16:192.0.2.253:eth9 nameserver=192.0.2.56 nameserver=192.0.2.55 rd.net.timeout.carrier=20"},
		"slaac":      {"ip=auto6"},
		"dhcpv6":     {"ip=dhcp6"},
		"static6":    {"ip=[2001:db8:2::15]::[2001:db8:2::1]:64:::off:[2001:db8:2::53]"},
		"dual-stack": {"ip=dhcp,auto6", "ip=auto6 ip=" + dhcpAsIs + ":off:10.0.0.53"},
		"vlan-on-bond-dual-stack": {
			bondPorts + "bond=bond0:eth0,eth1:mode=802.3ad,miimon=100 vlan=vlan42:bond0 ip=vlan42:dhcp,dhcp6",
			bondPorts + "bond=bond0:eth0,eth1:mode=802.3ad,miimon=100 vlan=vlan42:bond0 ip=vlan42:dhcp6 ip=" + dhcpAsIs + "vlan42:off:10.0.0.53",
		},
	}
	for _, tp := range imageTopologies() {
		w, ok := want[tp.name]
		if !ok {
			t.Errorf("%s: no parameters wanted", tp.name)
			continue
		}
		if w[1] == "" {
			w[1] = w[0] // a static address, or none: ipappend changes nothing
		}
		for i, static := range []bool{false, true} {
			got, err := tp.net.KernelParams(static)
			if err != nil {
				t.Errorf("%s: %v", tp.name, err)
				continue
			}
			if diff := cmp.Diff(w[i], strings.Join(got, " ")); diff != "" {
				t.Errorf("%s, static %v (-want +got):\n%s", tp.name, static, diff)
			}
			checkParamsParseBack(t, tp.name, tp.net, got, static)
		}
	}
}

// checkParamsParseBack parses params as the next ramboot does (cmdline.Split, ParseNetwork)
// and checks that they describe n's topology: the same bonds with the same ports, options and
// MTU, VLANs with their ids on the same parents, each named NIC pinned to its permanent MAC,
// and ip= for the leased interface with the methods its lease came from.
func checkParamsParseBack(t *testing.T, name string, n *ImageNet, params []string, static bool) {
	t.Helper()
	ps, err := cmdline.Split(strings.Join(params, " "))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	got, errs := cmdline.ParseNetwork(ps)
	if len(errs) > 0 {
		t.Errorf("%s: %q parses with errors %v", name, params, errs)
	}
	if diff := cmp.Diff(params, got.Params(), cmpEmpty); diff != "" {
		t.Errorf("%s: parsed and rendered again (-sent +got):\n%s", name, diff)
	}
	macOf := map[string]net.HardwareAddr{}
	for _, f := range got.IfNames {
		macOf[f.Name] = f.MAC
	}
	l := n.Lease
	var want cmdline.Network
	if n.Net != nil {
		want.Routes, want.Timeouts = n.Net.Routes, n.Net.Timeouts
	}
	for _, k := range n.Links {
		switch k.Kind {
		case ImageNIC:
			if k.Master != "" || slices.ContainsFunc(n.Links, func(v ImageLink) bool { return v.Parent == k.Name }) {
				if macOf[k.Name].String() != k.MAC.String() {
					t.Errorf("%s: NIC %s is pinned to %v, want its MAC %s", name, k.Name, macOf[k.Name], k.MAC)
				}
			}
		case ImageBond:
			b := cmdline.Bond{Name: k.Name, Options: k.BondOptions, MTU: k.MTU}
			for _, p := range n.Links {
				if p.Master == k.Name {
					b.Slaves = append(b.Slaves, p.Name)
				}
			}
			want.Bonds = append(want.Bonds, b)
		case ImageVLAN:
			want.VLANs = append(want.VLANs, cmdline.VLAN{Name: k.Name, Parent: k.Parent, ID: k.VLANID})
		}
	}
	if diff := cmp.Diff(want.Bonds, got.Bonds, cmpEmpty); diff != "" {
		t.Errorf("%s: bonds (-want +got):\n%s", name, diff)
	}
	if diff := cmp.Diff(want.VLANs, got.VLANs, cmpEmpty); diff != "" {
		t.Errorf("%s: VLANs (-want +got):\n%s", name, diff)
	}
	if diff := cmp.Diff(want.Routes, got.Routes, cmpEmpty, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("%s: routes (-want +got):\n%s", name, diff)
	}
	if got.Timeouts != want.Timeouts {
		t.Errorf("%s: timeouts %+v, want %+v", name, got.Timeouts, want.Timeouts)
	}
	// ip=: on the leased interface (no device for a single NIC: BOOTIF= picks it), IPv4 by
	// DHCP exactly when the lease was, unless passed as static; the static address itself.
	device := l.Iface
	if len(n.Links) == 0 {
		device = ""
	}
	var dhcp4, v4addr, v6 bool
	for _, ip := range got.IPs {
		if ip.Device != device {
			t.Errorf("%s: ip=%s is for %q, want %q", name, ip, ip.Device, device)
		}
		if ip.IPv4() && ip.DHCP() {
			dhcp4 = true
		}
		if ip.Addr.IsValid() && ip.Addr.Addr().Is4() {
			v4addr = true
			if ip.Addr != l.Addr || ip.Gateway != l.Gateway {
				t.Errorf("%s: ip=%s, want the address %s via %s", name, ip, l.Addr, l.Gateway)
			}
		}
		if ip.IPv6() {
			v6 = true
		}
	}
	if wantDHCP := l.DHCP && !static; dhcp4 != wantDHCP && (l.DHCP || l.Addr.IsValid()) && len(got.IPs) > 0 {
		t.Errorf("%s: DHCPv4 %v, want %v", name, dhcp4, wantDHCP)
	}
	if wantAddr := (!l.DHCP || static) && l.Addr.IsValid(); v4addr != wantAddr {
		t.Errorf("%s: static IPv4 address passed %v, want %v", name, v4addr, wantAddr)
	}
	if v6 != (l.V6 != nil) {
		t.Errorf("%s: IPv6 configured %v, want %v", name, v6, l.V6 != nil)
	}
}

func TestKernelParamsErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		n    *ImageNet
	}{
		{"no lease", &ImageNet{}},
		{"port has the address", &ImageNet{Lease: &Lease{Iface: "eth0", MAC: nicMAC1, DHCP: true}, Links: lacpBond("mode=802.3ad", 0)}},
		{"VLAN on a missing parent", &ImageNet{Lease: &Lease{Iface: "vlan7", MAC: nicMAC1, DHCP: true},
			Links: []ImageLink{{Kind: ImageVLAN, Name: "vlan7", Parent: "eth3", VLANID: 7}}}},
		{"VLAN id 0", &ImageNet{Lease: &Lease{Iface: "vlan0", MAC: nicMAC1, DHCP: true},
			Links: []ImageLink{{Kind: ImageVLAN, Name: "vlan0", Parent: "eth0"}, {Kind: ImageNIC, Name: "eth0", MAC: nicMAC1}}}},
		{"NIC without MAC", &ImageNet{Lease: &Lease{Iface: "vlan7", MAC: nicMAC1, DHCP: true},
			Links: []ImageLink{{Kind: ImageVLAN, Name: "vlan7", Parent: "eth0", VLANID: 7}, {Kind: ImageNIC, Name: "eth0"}}}},
		{"bond without ports", &ImageNet{Lease: &Lease{Iface: "bond0", MAC: nicMAC1, DHCP: true},
			Links: []ImageLink{{Kind: ImageBond, Name: "bond0"}}}},
		{"port of a NIC", &ImageNet{Lease: &Lease{Iface: "eth0", MAC: nicMAC1, DHCP: true},
			Links: []ImageLink{{Kind: ImageNIC, Name: "eth1", MAC: nicMAC2, Master: "eth0"}}}},
		{"name twice", &ImageNet{Lease: &Lease{Iface: "eth0", MAC: nicMAC1, DHCP: true},
			Links: []ImageLink{{Kind: ImageNIC, Name: "eth0", MAC: nicMAC1}, {Kind: ImageNIC, Name: "eth0", MAC: nicMAC2}}}},
	} {
		if p, err := tt.n.KernelParams(false); err == nil {
			t.Errorf("%s: %q, no error", tt.name, p)
		}
		if _, err := WriteImageConfig(t.TempDir(), tt.n); err == nil {
			t.Errorf("%s: WriteImageConfig: no error", tt.name)
		}
	}
}

// A VLAN whose name does not carry its id (bootvlan) cannot be said with vlan=: the next
// kernel gets it as vlanN, and ip= names that.
func TestKernelParamsRenamesVLAN(t *testing.T) {
	n := &ImageNet{Lease: &Lease{Iface: "bootvlan", MAC: nicMAC1, DHCP: true}, Links: []ImageLink{
		{Kind: ImageVLAN, Name: "bootvlan", Parent: "eth0", VLANID: 42}, {Kind: ImageNIC, Name: "eth0", MAC: nicMAC1}}}
	got, err := n.KernelParams(false)
	if want := "ifname=eth0:52:54:00:00:00:01 vlan=vlan42:eth0 ip=vlan42:dhcp"; err != nil || strings.Join(got, " ") != want {
		t.Errorf("got %q, %v, want %q", got, err, want)
	}
}
