package cmdline

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }
func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// TestParseIPDracut covers every form of ip= in dracut.cmdline(7) and the kernel's.
func TestParseIPDracut(t *testing.T) {
	for _, tt := range []struct {
		in         string
		want       IPConfig
		dhcp, v4   bool
		v6, legacy bool // legacy: Config.IP is set
	}{
		{"dhcp", IPConfig{Autoconf: "dhcp"}, true, true, false, true},
		{"on", IPConfig{Autoconf: "on"}, true, true, false, true},
		{"any", IPConfig{Autoconf: "any"}, true, true, false, true},
		{"single-dhcp", IPConfig{Autoconf: "single-dhcp"}, true, true, false, true},
		{"dhcp6", IPConfig{Autoconf: "dhcp6"}, false, false, true, false},
		{"auto6", IPConfig{Autoconf: "auto6"}, false, false, true, false},
		{"either6", IPConfig{Autoconf: "either6"}, false, false, true, false},
		{"link6", IPConfig{Autoconf: "link6"}, false, false, true, false},
		{"dhcp,dhcp6", IPConfig{Autoconf: "dhcp,dhcp6"}, true, true, true, true},
		{"off", IPConfig{Autoconf: "off"}, true, true, true, true},
		{"eth0:dhcp", IPConfig{Device: "eth0", Autoconf: "dhcp"}, true, true, false, true},
		{"eth0:dhcp6", IPConfig{Device: "eth0", Autoconf: "dhcp6"}, false, false, true, false},
		{"eth0:auto6", IPConfig{Device: "eth0", Autoconf: "auto6"}, false, false, true, false},
		{"eth0:link6", IPConfig{Device: "eth0", Autoconf: "link6"}, false, false, true, false},
		{"enp1s0:dhcp:9000", IPConfig{Device: "enp1s0", Autoconf: "dhcp", MTU: 9000}, true, true, false, true},
		{"eth0:dhcp:1500:52:54:00:12:34:56", IPConfig{Device: "eth0", Autoconf: "dhcp", MTU: 1500, MAC: mac("52:54:00:12:34:56")}, true, true, false, true},
		{"eth0:dhcp::52-54-00-12-34-56", IPConfig{Device: "eth0", Autoconf: "dhcp", MAC: mac("52:54:00:12:34:56")}, true, true, false, true},
		{
			"192.168.1.5::192.168.1.1:255.255.255.0:box:eth0:none",
			IPConfig{Addr: pfx("192.168.1.5/24"), Gateway: addr("192.168.1.1"), Hostname: "box", Device: "eth0", Autoconf: "none"},
			false, true, false, true,
		},
		{
			"192.168.1.5::192.168.1.1:24::eth0:none:9000:52:54:00:12:34:56",
			IPConfig{Addr: pfx("192.168.1.5/24"), Gateway: addr("192.168.1.1"), Device: "eth0", Autoconf: "none", MTU: 9000, MAC: mac("52:54:00:12:34:56")},
			false, true, false, true,
		},
		{
			"192.168.1.5::192.168.1.1:24::eth0:none:192.168.1.53:192.168.1.54",
			IPConfig{Addr: pfx("192.168.1.5/24"), Gateway: addr("192.168.1.1"), Device: "eth0", Autoconf: "none", DNS: []netip.Addr{addr("192.168.1.53"), addr("192.168.1.54")}},
			false, true, false, true,
		},
		{
			"10.0.0.5/16:::::eth0:off",
			IPConfig{Addr: pfx("10.0.0.5/16"), Device: "eth0", Autoconf: "off"},
			false, true, false, true,
		},
		{
			"[2001:db8::5]::[2001:db8::1]:64:box:eth0:none",
			IPConfig{Addr: pfx("2001:db8::5/64"), Gateway: addr("2001:db8::1"), Hostname: "box", Device: "eth0", Autoconf: "none"},
			false, false, true, false,
		},
		{
			"[2001:db8::5/64]::[fe80::1]::::none:[2001:db8::53]",
			IPConfig{Addr: pfx("2001:db8::5/64"), Gateway: addr("fe80::1"), Autoconf: "none", DNS: []netip.Addr{addr("2001:db8::53")}},
			false, false, true, false,
		},
		{
			"[2001:db8::5]/48:::::eth0:none:1280",
			IPConfig{Addr: pfx("2001:db8::5/48"), Device: "eth0", Autoconf: "none", MTU: 1280},
			false, false, true, false,
		},
		{
			// dracut's "override" form: DHCP, with the hostname and DNS given.
			"::::myhost:eth1:dhcp:10.0.0.53",
			IPConfig{Hostname: "myhost", Device: "eth1", Autoconf: "dhcp", DNS: []netip.Addr{addr("10.0.0.53")}},
			true, true, false, true,
		},
		{":::::eth1:dhcp6", IPConfig{Device: "eth1", Autoconf: "dhcp6"}, false, false, true, false},
		{"::::::dhcp:::10.0.0.123", IPConfig{Autoconf: "dhcp", NTP: addr("10.0.0.123")}, true, true, false, true},
	} {
		got, err := ParseIP(tt.in)
		if err != nil {
			t.Errorf("ParseIP(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(&tt.want, got, cmpConfig...); diff != "" {
			t.Errorf("ParseIP(%q) (-want +got):\n%s", tt.in, diff)
		}
		if got.DHCP() != tt.dhcp || got.IPv4() != tt.v4 || got.IPv6() != tt.v6 {
			t.Errorf("ParseIP(%q): DHCP %v IPv4 %v IPv6 %v, want %v %v %v", tt.in, got.DHCP(), got.IPv4(), got.IPv6(), tt.dhcp, tt.v4, tt.v6)
		}
		c, errs := Parse("ip=" + tt.in)
		// Config.IP is the ip= /init acts on: one for IPv6 too, now that it brings IPv6 up.
		if len(errs) != 0 || (c.IP != nil) != (tt.legacy || tt.v6) {
			t.Errorf("Parse(ip=%s): Config.IP %v, errors %v; want IP set: %v", tt.in, c.IP, errs, tt.legacy || tt.v6)
		}
		// String renders a value that parses back the same.
		back, err := ParseIP(got.String())
		if err != nil {
			t.Errorf("ParseIP(%q).String() = %q: %v", tt.in, got.String(), err)
		} else if diff := cmp.Diff(got, back, cmpConfig...); diff != "" {
			t.Errorf("%q rendered as %q parses back otherwise (-first +back):\n%s", tt.in, got.String(), diff)
		}
	}
}

func TestIPString(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"dhcp", "dhcp"},
		{"eth0:dhcp6", "eth0:dhcp6"},
		{":::::eth0:dhcp", "eth0:dhcp"},
		{"eth0:dhcp:1500:52-54-00-12-34-56", "eth0:dhcp:1500:52:54:00:12:34:56"},
		{"10.0.0.5::10.0.0.1:24::eth0:none", "10.0.0.5::10.0.0.1:255.255.255.0::eth0:none"},
		{"[2001:DB8::5]::[2001:db8::1]:64::eth0:none:[2001:db8::53]", "[2001:db8::5]::[2001:db8::1]:64::eth0:none:[2001:db8::53]"},
		{"::::::dhcp::10.0.0.3", "::::::dhcp:10.0.0.3"},
		{"::::::dhcp:1500", "::::::dhcp:1500"},
	} {
		c, err := ParseIP(tt.in)
		if err != nil {
			t.Fatalf("ParseIP(%q): %v", tt.in, err)
		}
		if got := c.String(); got != tt.want {
			t.Errorf("ParseIP(%q).String() = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseIPErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"ibft", "ibft (iSCSI firmware tables) is not supported"},
		{"eth0:single-dhcp", "give it alone, as ip=single-dhcp"},
		{"dhcp,single-dhcp", "give it alone"},
		{"dhcp,dhcp", `autoconf "dhcp" is listed twice`},
		{"off,dhcp6", `"off" does not combine`},
		{"eth0:dhcp6x", `autoconf "dhcp6x" is not one of dhcp, on, any, dhcp6`},
		{"eth0:static", "static needs an address"},
		{"eth0:dhcp:1500:52:54:00", `"52:54:00" is not a MAC address`},
		{"eth0:dhcp:1500:01:00:5e:00:00:01", "multicast"},
		{"eth0:dhcp:40", `MTU "40" is not a number from 68 to 65535`},
		{"eth0:dhcp:99999", "MTU"},
		{"eth0:dhcp:jumbo", "want [MTU][:MAC]"},
		{"eth0/1:dhcp", `"eth0/1" is not an interface name`},
		{"[2001:db8::5]::::::none", "needs a prefix length"},
		{"[2001:db8::5]:::255.255.255.0:::none", "not an IPv4 netmask or a prefix length"},
		{"[2001:db8::5]:::129:::none", "not a prefix length from 0 to 128"},
		{"[2001:db8::5/64]:::48:::none", "says /64, the netmask 48 /48"},
		{"[2001:db8::5::::::none", "a [ without its ]"},
		{"2001:db8::5]::::::none", "a ] without its ["},
		{"[[2001:db8::5]]:::64:::none", "a [ inside brackets"},
		{"[fe80::1%eth0]:::64:::none", "not an IPv4 address or an [IPv6] address"},
		{"10.0.0.5::[2001:db8::1]:24::eth0:none", "not of one IP version"},
		{"10.0.0.5:10.0.0.1/24::24::eth0:none", "peer address \"10.0.0.1/24\": a prefix length is not supported"},
		{"10.0.0.5:::24::eth0:none:10.0.0.53:10.0.0.54:10.0.0.1:10.0.0.2", "too many fields"},
		{"10.0.0.5:::24::eth0:none:dns.example", `DNS server "dns.example" is not an IPv4 address`},
		{"10.0.0.5:::24::eth0:ibft", "ibft"},
		{"[2001:db8::5]x:::64:::none", "text after the ]"},
		{":::::eth0:none", "without a client address"},
	} {
		_, err := ParseIP(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseIP(%q) = %v, want an error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Network
	}{
		{
			"BOOTIF=01-52-54-00-12-34-56 bond=bond0:eth0,eth1:mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4:9000 " +
				"vlan=vlan0042:bond0 ip=vlan0042:dhcp ip=vlan0042:auto6",
			Network{
				Bonds: []Bond{{Name: "bond0", Slaves: []string{"eth0", "eth1"}, MTU: 9000, Options: []BondOption{
					{"mode", "802.3ad"}, {"miimon", "100"}, {"lacp_rate", "fast"}, {"xmit_hash_policy", "layer3+4"}}}},
				VLANs: []VLAN{{Name: "vlan0042", Parent: "bond0", ID: 42}},
				IPs:   []IPConfig{{Device: "vlan0042", Autoconf: "dhcp"}, {Device: "vlan0042", Autoconf: "auto6"}},
			},
		},
		{
			"bond",
			Network{Bonds: []Bond{{Name: "bond0", Slaves: []string{"eth0", "eth1"}, Options: []BondOption{{"mode", "balance-rr"}}}}},
		},
		{
			"bond=bond1 bond=bond2:eth2 bond=bond3:eth3,eth4::1500 bond=bond4:eth5:mode=active-backup,primary=eth5,arp_ip_target=10.0.0.1;10.0.0.2,ad_actor_system=02-00-00-00-00-01",
			Network{Bonds: []Bond{
				{Name: "bond1", Slaves: []string{"eth0", "eth1"}, Options: []BondOption{{"mode", "balance-rr"}}},
				{Name: "bond2", Slaves: []string{"eth2"}},
				{Name: "bond3", Slaves: []string{"eth3", "eth4"}, MTU: 1500},
				{Name: "bond4", Slaves: []string{"eth5"}, Options: []BondOption{{"mode", "active-backup"}, {"primary", "eth5"},
					{"arp_ip_target", "10.0.0.1;10.0.0.2"}, {"ad_actor_system", "02-00-00-00-00-01"}}},
			}},
		},
		{
			"vlan=vlan5:eth0 vlan=eth0.0006:eth0 vlan=eth1.7:eth1 vlan=vlan4094:eth1",
			Network{VLANs: []VLAN{{"vlan5", "eth0", 5}, {"eth0.0006", "eth0", 6}, {"eth1.7", "eth1", 7}, {"vlan4094", "eth1", 4094}}},
		},
		{
			"ifname=bootnet:52:54:00:12:34:56 ifname=data:52-54-00-AB-CD-EF ip=bootnet:dhcp",
			Network{
				IfNames: []IfName{{"bootnet", mac("52:54:00:12:34:56")}, {"data", mac("52:54:00:ab:cd:ef")}},
				IPs:     []IPConfig{{Device: "bootnet", Autoconf: "dhcp"}},
			},
		},
		{
			"rd.route=192.168.200.0/24:192.168.100.222:ens10 rd.route=192.168.201.0/255.255.255.0:192.168.100.222 " +
				"rd.route=192.168.202.0/24::ens10 rd.route=[2001:DB8:3::/48]:[2001:DB8:2::1]:ens10 rd.route=[2001:db8:4::]/48:[2001:db8:2::1]",
			Network{Routes: []Route{
				{pfx("192.168.200.0/24"), addr("192.168.100.222"), "ens10"},
				{pfx("192.168.201.0/24"), addr("192.168.100.222"), ""},
				{pfx("192.168.202.0/24"), netip.Addr{}, "ens10"},
				{pfx("2001:db8:3::/48"), addr("2001:db8:2::1"), "ens10"},
				{pfx("2001:db8:4::/48"), addr("2001:db8:2::1"), ""},
			}},
		},
		{
			"nameserver=10.0.0.53 nameserver=2001:db8::53 nameserver=[2001:db8::54]",
			Network{Nameservers: []netip.Addr{addr("10.0.0.53"), addr("2001:db8::53"), addr("2001:db8::54")}},
		},
		{
			"rd.net.timeout.carrier=5 rd.net.timeout.ifup=20s rd.net.timeout.dhcp=0 rd.net.timeout.iflink=60 " +
				"rd.net.timeout.route=1 rd.net.timeout.ipv6dad=2 rd.net.timeout.ipv6auto=3",
			Network{Timeouts: NetTimeouts{Carrier: 5 * time.Second, IfUp: 20 * time.Second, DHCP: -1, IfLink: time.Minute,
				Route: time.Second, IPv6DAD: 2 * time.Second, IPv6Auto: 3 * time.Second}},
		},
		{
			// Dual stack on one NIC: one ip= per IP version.
			"ip=192.168.1.5::192.168.1.1:24::eth0:none ip=[2001:db8::5]::[2001:db8::1]:64::eth0:none ip=eth1:dhcp",
			Network{IPs: []IPConfig{
				{Addr: pfx("192.168.1.5/24"), Gateway: addr("192.168.1.1"), Device: "eth0", Autoconf: "none"},
				{Addr: pfx("2001:db8::5/64"), Gateway: addr("2001:db8::1"), Device: "eth0", Autoconf: "none"},
				{Device: "eth1", Autoconf: "dhcp"},
			}},
		},
	} {
		c, errs := Parse(tt.in)
		if len(errs) != 0 {
			t.Errorf("Parse(%q): %v", tt.in, errs)
		}
		if diff := cmp.Diff(tt.want, c.Network, cmpConfig...); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
		roundTrip(t, c.Network)
	}
}

// roundTrip checks that n's parameters parse back to n, without an error.
func roundTrip(t *testing.T, n Network) {
	t.Helper()
	line := strings.Join(n.Params(), " ")
	c, errs := Parse(line)
	if len(errs) != 0 {
		t.Errorf("Parse(Params()) = %v for %q", errs, line)
	}
	if diff := cmp.Diff(n, c.Network, cmpConfig...); diff != "" {
		t.Errorf("%q parses back otherwise (-first +back):\n%s", line, diff)
	}
}

func TestNetworkParamErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"vlan=vlan42", `vlan="vlan42": want NAME:PHYDEV`},
		{"vlan=:eth0", "want NAME:PHYDEV"},
		{"vlan=vlan0:eth0", "VLAN id 0 (of vlan0) is not from 1 to 4094"},
		{"vlan=vlan4095:eth0", "not from 1 to 4094"},
		{"vlan=eth0.99999:eth0", "not from 1 to 4094"},
		{"vlan=mgmt:eth0", `no VLAN id in the name "mgmt"`},
		{"vlan=eth0.x:eth0", "no VLAN id"},
		{"vlan=eth0.5:eth0.5", "a VLAN on itself"},
		{"vlan=vlan5:averyveryverylongname", "not an interface name"},
		{"bond=", `bond="": bond name: empty interface name`},
		{"bond=bond0::mode=802.3ad", "no slaves"},
		{"bond=bond0:eth0,eth0", "slave eth0 is listed twice"},
		{"bond=bond0:eth0,bond0", "bond0 is a slave of itself"},
		{"bond=bond0:eth0,:mode=1", "slave: empty interface name"},
		{"bond=bond0:eth0:mode=802.3ad,miimon", `option "miimon" is not NAME=VALUE`},
		{"bond=bond0:eth0:mode=lacp", `mode="lacp": want balance-rr, active-backup`},
		{"bond=bond0:eth0:lacp_rate=quick", `lacp_rate="quick": want slow, fast`},
		{"bond=bond0:eth0:xmit_hash_policy=layer4", "xmit_hash_policy"},
		{"bond=bond0:eth0:miimon=often", `miimon="often": want a number`},
		{"bond=bond0:eth0:mode=1,mode=2", "option mode is given twice"},
		{"bond=bond0:eth0:speed=fast", `unknown bonding option "speed"`},
		{"bond=bond0:eth0,eth1:primary=eth2", "primary=eth2 is not one of the slaves (eth0,eth1)"},
		{"bond=bond0:eth0:arp_ip_target=10.0.0.1;x", "IPv4 addresses separated by semicolons"},
		{"bond=bond0:eth0:ad_actor_system=02", "want a MAC address with dashes"},
		{"bond=bond0:eth0:mode=1:1500:x", "too many fields"},
		{"bond=bond0:eth0:mode=1:15", "MTU"},
		{"ifname=bootnet", "want NAME:MAC"},
		{"ifname=bootnet:52:54:00", "not a MAC address"},
		{"ifname=boot/net:52:54:00:12:34:56", "not an interface name"},
		{"rd.route=10.0.0.0/8", "want NET/PREFIX:GATEWAY[:IF]"},
		{"rd.route=10.0.0.0:10.0.0.1", "no prefix length"},
		{"rd.route=10.0.0.1/8:10.0.0.254", "host bits set: want 10.0.0.0/8"},
		{"rd.route=10.0.0.0/33:10.0.0.254", "not a prefix length from 0 to 32"},
		{"rd.route=10.0.0.0/8:[2001:db8::1]", "not of one IP version"},
		{"rd.route=10.0.0.0/8:", "neither a gateway nor an interface"},
		{"rd.route=2001:db8::/32:[2001:db8::1]", "want NET/PREFIX:GATEWAY[:IF]"},
		{"rd.route=[2001:db8::/32]:[2001:db8::1]:eth0:x", "want NET/PREFIX:GATEWAY[:IF]"},
		{"nameserver=dns.example", `nameserver="dns.example": want an IPv4 or IPv6 address`},
		{"nameserver=0.0.0.0", "want an IPv4 or IPv6 address"},
		{"nameserver", "want an IPv4 or IPv6 address"},
		{"rd.net.timeout.carrier=soon", `rd.net.timeout.carrier="soon": want whole seconds`},
		{"rd.net.timeout.dhcp=1.5", "want whole seconds"},
		{"rd.net.timeout.ifup=-1", "want whole seconds"},
	} {
		c, errs := Parse(tt.in)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want one error containing %q", tt.in, errs, tt.want)
		}
		if n := c.Network; len(n.VLANs)+len(n.Bonds)+len(n.IfNames)+len(n.Routes)+len(n.Nameservers) != 0 || n.Timeouts != (NetTimeouts{}) {
			t.Errorf("Parse(%q) kept %+v", tt.in, n)
		}
	}
	// Unknown rd.net.* parameters are someone else's, as before.
	if _, errs := Parse("rd.net.timeout.forever=1 rd.neednet=1"); len(errs) != 0 {
		t.Errorf("unknown rd.net parameters: %v", errs)
	}
}

// TestCrossChecks: what only the whole line shows is reported on the parameter at fault,
// which is skipped; the rest boots.
func TestCrossChecks(t *testing.T) {
	for _, tt := range []struct {
		in   string
		errs []string // key="value": substring, in order
		want Network
	}{
		{
			in:   "ip=eth0:dhcp ip=10.0.0.5:::24::eth0:none",
			errs: []string{`ip="eth0:dhcp": replaced by the later ip=10.0.0.5:::255.255.255.0::eth0:none`},
			want: Network{IPs: []IPConfig{{Addr: pfx("10.0.0.5/24"), Device: "eth0", Autoconf: "none"}}},
		},
		{
			in:   "ip=dhcp ip=single-dhcp ip=dhcp6",
			errs: []string{`ip="dhcp": replaced by the later ip=single-dhcp`},
			want: Network{IPs: []IPConfig{{Autoconf: "single-dhcp"}, {Autoconf: "dhcp6"}}},
		},
		{
			in:   "ip=eth0:dhcp,dhcp6 ip=eth0:auto6",
			errs: []string{`ip="eth0:dhcp,dhcp6": replaced by the later ip=eth0:auto6`},
			want: Network{IPs: []IPConfig{{Device: "eth0", Autoconf: "auto6"}}},
		},
		{
			in:   "vlan=vlan42:eth9 bond=bond0:eth0,eth1 vlan=vlan43:bond1 vlan=vlan44:eth0 vlan=eth1.5:vlan42",
			errs: []string{`vlan="vlan43:bond1": bond1 is named like a bond, but no bond=bond1`, `vlan="vlan44:eth0": eth0 is a slave of bond0: configure bond0`, `vlan="eth1.5:vlan42": vlan42 is a VLAN`},
			want: Network{
				VLANs: []VLAN{{"vlan42", "eth9", 42}},
				Bonds: []Bond{{Name: "bond0", Slaves: []string{"eth0", "eth1"}}},
			},
		},
		{
			in:   "bond=bond0:eth0,eth1 bond=bond1:eth1,eth2 bond=bond2:bond0 bond=bond0:eth0,eth3",
			errs: []string{`bond="bond0:eth0,eth1": replaced by the later bond=bond0:eth0,eth3`, `bond="bond2:bond0": slave bond0 is a bond`},
			want: Network{Bonds: []Bond{{Name: "bond1", Slaves: []string{"eth1", "eth2"}}, {Name: "bond0", Slaves: []string{"eth0", "eth3"}}}},
		},
		{
			in:   "bond=bond0:eth0,eth1 bond=bond1:eth1,eth2",
			errs: []string{`bond="bond1:eth1,eth2": eth1 is already a slave of bond0`},
			want: Network{Bonds: []Bond{{Name: "bond0", Slaves: []string{"eth0", "eth1"}}}},
		},
		{
			in:   "bond=bond0:eth0,eth1 ip=eth1:dhcp ip=bond1:dhcp ip=eth0.7:dhcp6 rd.route=10.0.0.0/8::eth0",
			errs: []string{`ip="eth1:dhcp": eth1 is a slave of bond0`, `ip="bond1:dhcp": bond1 is named like a bond`, `ip="eth0.7:dhcp6": eth0.7 is named like a VLAN, but no vlan=eth0.7`, `rd.route="10.0.0.0/8::eth0": eth0 is a slave of bond0`},
			want: Network{Bonds: []Bond{{Name: "bond0", Slaves: []string{"eth0", "eth1"}}}},
		},
		{
			in:   "vlan=vlan42:eth0 vlan=eth0.42:eth0 vlan=bond0:eth1 bond=bond0:eth2",
			errs: []string{`vlan="vlan42:eth0": replaced by the later vlan=eth0.42:eth0`, `vlan="bond0:eth1": no VLAN id`},
			want: Network{VLANs: []VLAN{{"eth0.42", "eth0", 42}}, Bonds: []Bond{{Name: "bond0", Slaves: []string{"eth2"}}}},
		},
		{
			in:   "ifname=boot:52:54:00:12:34:56 ifname=boot:52:54:00:12:34:57 ifname=other:52:54:00:12:34:57 ip=other:dhcp::02:00:00:00:00:01",
			errs: []string{`ifname="boot:52:54:00:12:34:56": replaced by the later ifname=boot:52:54:00:12:34:57`, `ifname="boot:52:54:00:12:34:57": replaced by the later ifname=other`, `ip="other:dhcp::02:00:00:00:00:01": it sets the MAC address of other, which ifname= finds by its MAC`},
			want: Network{IfNames: []IfName{{"other", mac("52:54:00:12:34:57")}}},
		},
		{
			in:   "rd.route=10.0.0.0/8:10.0.0.1 rd.route=10.0.0.0/8:10.0.0.2 rd.route=10.0.0.0/8:10.0.0.3:eth1",
			errs: []string{`rd.route="10.0.0.0/8:10.0.0.1": replaced by the later rd.route=10.0.0.0/8:10.0.0.2`},
			want: Network{Routes: []Route{{pfx("10.0.0.0/8"), addr("10.0.0.2"), ""}, {pfx("10.0.0.0/8"), addr("10.0.0.3"), "eth1"}}},
		},
	} {
		c, errs := Parse(tt.in)
		if len(errs) != len(tt.errs) {
			t.Errorf("Parse(%q) = %d errors %v, want %d", tt.in, len(errs), errs, len(tt.errs))
		}
		for i := range min(len(errs), len(tt.errs)) {
			var pe *ParamError
			if !errors.As(errs[i], &pe) || !strings.Contains(errs[i].Error(), tt.errs[i]) {
				t.Errorf("Parse(%q) error %d = %v, want a *ParamError containing %q", tt.in, i, errs[i], tt.errs[i])
			}
		}
		if diff := cmp.Diff(tt.want, c.Network, cmpConfig...); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
		roundTrip(t, c.Network)
	}
}

// TestLegacyIP: Config.IP is the last ip= for IPv4, as /init's IPv4 bring-up acted on before
// the network parameters grew, else the last ip= (IPv6 only).
func TestLegacyIP(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want *IPConfig
	}{
		{"ip=eth0:dhcp ip=eth1:dhcp", &IPConfig{Device: "eth1", Autoconf: "dhcp"}},
		{"ip=eth0:dhcp ip=eth1:dhcp6", &IPConfig{Device: "eth0", Autoconf: "dhcp"}},
		{"ip=dhcp6 ip=[2001:db8::5]:::64::eth0:none", &IPConfig{Addr: netip.MustParsePrefix("2001:db8::5/64"), Device: "eth0", Autoconf: "none"}},
		{"ip=eth0:dhcp ip=eth0:bogus6", &IPConfig{Device: "eth0", Autoconf: "dhcp"}},
	} {
		c, _ := Parse(tt.in)
		if diff := cmp.Diff(tt.want, c.IP, cmpConfig...); diff != "" {
			t.Errorf("Parse(%q).IP (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseNetworkAlone(t *testing.T) {
	params, _ := Split("ip=eth0:dhcp ramroot=http://x/ vlan=vlan5:eth0 vlan=vlan5:eth1 nameserver=x")
	n, errs := ParseNetwork(params)
	want := []struct {
		index int
		text  string
	}{{1, "not a network parameter"}, {2, "replaced by the later vlan=vlan5:eth1"}, {4, "want an IPv4 or IPv6 address"}}
	if len(errs) != len(want) {
		t.Fatalf("ParseNetwork: %v, want %d errors", errs, len(want))
	}
	for i, w := range want {
		var pe *ParamError
		if !errors.As(errs[i], &pe) || pe.Index != w.index || !strings.Contains(pe.Error(), w.text) {
			t.Errorf("error %d: %v, want index %d and %q", i, errs[i], w.index, w.text)
		}
	}
	if got := strings.Join(n.Params(), " "); got != "vlan=vlan5:eth1 ip=eth0:dhcp" {
		t.Errorf("Params() = %q", got)
	}
}

func TestParamsQuoting(t *testing.T) {
	n := Network{IPs: []IPConfig{{Addr: pfx("10.0.0.5/24"), Hostname: "a host", Autoconf: "none"}}, Timeouts: NetTimeouts{DHCP: -1, Carrier: 3 * time.Second}}
	got := strings.Join(n.Params(), " ")
	if want := `ip="10.0.0.5:::255.255.255.0:a host::none" rd.net.timeout.carrier=3 rd.net.timeout.dhcp=0`; got != want {
		t.Errorf("Params() = %s, want %s", got, want)
	}
	roundTrip(t, n)
}

func TestBondMode(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"bond=bond0:eth0", "balance-rr"},
		{"bond=bond0:eth0:mode=4", "802.3ad"},
		{"bond=bond0:eth0:mode=802.3ad", "802.3ad"},
		{"bond=bond0:eth0:miimon=100,mode=1", "active-backup"},
	} {
		c, errs := Parse(tt.in)
		if len(errs) != 0 || len(c.Bonds) != 1 || c.Bonds[0].Mode() != tt.want {
			t.Errorf("Parse(%q): %+v %v, want mode %s", tt.in, c.Bonds, errs, tt.want)
		}
	}
}

// TestPending: what /init parses but does not act on is listed (an ip= for a second
// interface, a route through it, IPv6), what it acts on (the boot interface's ip=, bonds,
// VLANs, renames, routes, name servers, BOOTIF) is not.
func TestPending(t *testing.T) {
	const other = "ip= for another interface (one interface is configured): "
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"ip=dhcp BOOTIF=01-52-54-00-12-34-56", nil},
		{"ip=10.0.0.5::10.0.0.1:255.255.255.0:node:eth0:none", nil},
		{"ip=eth0:dhcp", nil},
		{"ip=eth0:dhcp:9000", nil},
		{"bond=bond0:eth0,eth1:mode=802.3ad vlan=vlan42:bond0 ip=vlan42:dhcp", nil},
		{"ifname=boot:52:54:00:12:34:56 vlan=boot.7:boot ip=boot.7:dhcp", nil},
		{"nameserver=10.0.0.53 rd.route=10.1.0.0/16:10.0.0.1", nil},
		{"ip=eth0:dhcp ip=10.9.0.5::10.9.0.1:255.255.255.0::eth1:none rd.route=10.1.0.0/16:10.0.0.1:eth0",
			[]string{other + "ip=eth0:dhcp", "routes through another interface: rd.route=10.1.0.0/16:10.0.0.1:eth0"}},
		{"ip=dhcp6", nil},
		{"ip=eth0:dhcp ip=eth0:dhcp6", nil},
		{"ip=eth0:dhcp6 ip=eth1:dhcp", []string{other + "ip=eth0:dhcp6"}},
	} {
		c, problems := Parse(tt.line)
		if len(problems) > 0 {
			t.Errorf("%s: %v", tt.line, problems)
		}
		if got := c.Network.Pending(c.IP); !slices.Equal(got, tt.want) {
			t.Errorf("%s: Pending = %q, want %q", tt.line, got, tt.want)
		}
	}
}
