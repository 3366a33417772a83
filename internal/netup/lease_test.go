package netup

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/rfc1035label"
	"github.com/ramboot/ramboot/internal/cmdline"
)

var (
	testMAC  = net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	cmpNet   = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})
	cmpEmpty = cmpopts.EquateEmpty()
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

func ipnet(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestSelectRoutes(t *testing.T) {
	def := pfx("0.0.0.0/0")
	for _, tt := range []struct {
		name      string
		classless []Route
		routers   []netip.Addr
		want      []Route
		wantGW    netip.Addr
	}{
		{name: "nothing"},
		{
			name:    "router only",
			routers: []netip.Addr{ip("10.0.0.1"), ip("10.0.0.2")},
			want:    []Route{{Dst: def, Gateway: ip("10.0.0.1")}},
			wantGW:  ip("10.0.0.1"),
		},
		{
			name:    "unspecified router skipped",
			routers: []netip.Addr{ip("0.0.0.0"), ip("10.0.0.2")},
			want:    []Route{{Dst: def, Gateway: ip("10.0.0.2")}},
			wantGW:  ip("10.0.0.2"),
		},
		{
			name:      "121 without default wins over 3: no default route",
			classless: []Route{{Dst: pfx("192.0.2.0/24"), Gateway: ip("10.0.0.254")}},
			routers:   []netip.Addr{ip("10.0.0.1")},
			want:      []Route{{Dst: pfx("192.0.2.0/24"), Gateway: ip("10.0.0.254")}},
		},
		{
			name: "121 default wins over 3, on-link first",
			classless: []Route{
				{Dst: def, Gateway: ip("172.16.0.1")},
				{Dst: pfx("198.51.100.0/24"), Gateway: ip("10.0.0.254")},
				{Dst: pfx("172.16.0.0/30")},
			},
			routers: []netip.Addr{ip("10.0.0.1")},
			want: []Route{
				{Dst: pfx("172.16.0.0/30")},
				{Dst: def, Gateway: ip("172.16.0.1")},
				{Dst: pfx("198.51.100.0/24"), Gateway: ip("10.0.0.254")},
			},
			wantGW: ip("172.16.0.1"),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := selectRoutes(tt.classless, tt.routers)
			if diff := cmp.Diff(tt.want, got, cmpNet); diff != "" {
				t.Errorf("selectRoutes (-want +got):\n%s", diff)
			}
			if gw := defaultGateway(got); gw != tt.wantGW {
				t.Errorf("defaultGateway = %v, want %v", gw, tt.wantGW)
			}
		})
	}
}

func TestNeedsOnLink(t *testing.T) {
	addr := pfx("10.0.0.5/24")
	rs := []Route{{Dst: pfx("172.16.0.0/30")}}
	for _, tt := range []struct {
		r    Route
		want bool
	}{
		{Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.1")}, false},
		{Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("172.16.0.1")}, false},
		{Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("192.168.9.9")}, true},
		{Route{Dst: pfx("172.16.0.0/30")}, false},
	} {
		if got := needsOnLink(addr, rs, tt.r); got != tt.want {
			t.Errorf("needsOnLink(%v) = %v, want %v", tt.r, got, tt.want)
		}
	}
}

func ack(t testing.TB, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{
		dhcpv4.WithMessageType(dhcpv4.MessageTypeAck),
		dhcpv4.WithHwAddr(testMAC),
		dhcpv4.WithYourIP(net.IPv4(10, 0, 0, 5)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 0, 0, 1))),
	}, mods...)...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLeaseFromACK(t *testing.T) {
	search := &rfc1035label.Labels{Labels: []string{"lab.example", "example"}}
	for _, tt := range []struct {
		name string
		ack  []dhcpv4.Modifier
		ip   *cmdline.IPConfig
		want Lease
	}{
		{
			name: "minimal: classful mask, no routes",
			want: Lease{Addr: pfx("10.0.0.5/8"), Server: ip("10.0.0.1")},
		},
		{
			name: "full",
			ack: []dhcpv4.Modifier{
				dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
				dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(10, 0, 0, 1))),
				dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(10, 0, 0, 53), net.IPv4(10, 0, 0, 54))),
				dhcpv4.WithOption(dhcpv4.OptDomainName("ignored.example")),
				dhcpv4.WithOption(dhcpv4.OptDomainSearch(search)),
				dhcpv4.WithOption(dhcpv4.OptHostName("node7")),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{0x23, 0x28})),
				dhcpv4.WithOption(dhcpv4.OptBootFileName("pxelinux.0")),
				dhcpv4.WithOption(dhcpv4.OptTFTPServerName("tftp.example")),
				dhcpv4.WithServerIP(net.IPv4(10, 0, 0, 2)),
			},
			want: Lease{
				Addr: pfx("10.0.0.5/24"), Gateway: ip("10.0.0.1"), Server: ip("10.0.0.1"),
				DNS:      []netip.Addr{ip("10.0.0.53"), ip("10.0.0.54")},
				Search:   []string{"lab.example", "example"},
				Hostname: "node7", MTU: 9000, BootFile: "pxelinux.0", TFTPServer: "tftp.example",
				Routes: []Route{{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.0.1")}},
			},
		},
		{
			name: "option 121 and option 3: 121 wins",
			ack: []dhcpv4.Modifier{
				dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
				dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(10, 0, 0, 1))),
				dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(
					&dhcpv4.Route{Dest: ipnet("192.0.2.0/24"), Router: net.IPv4(10, 0, 0, 254)},
					&dhcpv4.Route{Dest: ipnet("10.1.0.0/16"), Router: net.IPv4zero},
				)),
				dhcpv4.WithServerIP(net.IPv4(10, 0, 0, 2)),
				dhcpv4.WithOption(dhcpv4.OptDomainName("lab.example")),
			},
			want: Lease{
				Addr: pfx("10.0.0.5/24"), Server: ip("10.0.0.1"), TFTPServer: "10.0.0.2",
				Search: []string{"lab.example"},
				Routes: []Route{
					{Dst: pfx("10.1.0.0/16")},
					{Dst: pfx("192.0.2.0/24"), Gateway: ip("10.0.0.254")},
				},
			},
		},
		{
			name: "ip= hostname and DNS win; bad server strings dropped",
			ack: []dhcpv4.Modifier{
				dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
				dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(10, 0, 0, 53))),
				dhcpv4.WithOption(dhcpv4.OptDomainName("evil\nnameserver 6.6.6.6")),
				dhcpv4.WithOption(dhcpv4.OptHostName("server-name")),
				dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{0, 10})), // < 68
			},
			ip: &cmdline.IPConfig{Autoconf: "dhcp", Hostname: "mine", DNS: []netip.Addr{ip("192.0.2.53")}},
			want: Lease{
				Addr: pfx("10.0.0.5/24"), Server: ip("10.0.0.1"),
				DNS: []netip.Addr{ip("192.0.2.53")}, Hostname: "mine",
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := ack(t, tt.ack...)
			got, err := leaseFromACK("eth0", testMAC, a, tt.ip)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Iface, tt.want.MAC, tt.want.DHCP = "eth0", testMAC, true
			if diff := cmp.Diff(&tt.want, got, cmpNet, cmpopts.IgnoreFields(Lease{}, "Options", "Obtained"), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("leaseFromACK (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[uint8][]byte(a.Options), got.Options); diff != "" {
				t.Errorf("Options (-ack +lease):\n%s", diff)
			}
		})
	}
}

func TestLeaseFromACKErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		ack  *dhcpv4.DHCPv4
	}{
		{"no address", ack(t, dhcpv4.WithYourIP(net.IPv4zero))},
		{"bad mask", ack(t, dhcpv4.WithNetmask(net.IPv4Mask(255, 0, 255, 0)))},
	} {
		if l, err := leaseFromACK("eth0", testMAC, tt.ack, nil); err == nil {
			t.Errorf("%s: leaseFromACK = %v, want an error", tt.name, l)
		}
	}
}

func TestStaticLease(t *testing.T) {
	c, err := cmdline.ParseIP("10.0.2.15:10.0.2.4:10.0.2.2:255.255.255.0:host1:eth1:off:10.0.2.3")
	if err != nil {
		t.Fatal(err)
	}
	got, err := staticLease("eth1", testMAC, c)
	if err != nil {
		t.Fatal(err)
	}
	want := &Lease{
		Iface: "eth1", MAC: testMAC, Addr: pfx("10.0.2.15/24"), Gateway: ip("10.0.2.2"),
		DNS: []netip.Addr{ip("10.0.2.3")}, Hostname: "host1", Server: ip("10.0.2.4"),
		Routes: []Route{{Dst: pfx("0.0.0.0/0"), Gateway: ip("10.0.2.2")}},
	}
	if diff := cmp.Diff(want, got, cmpNet); diff != "" {
		t.Errorf("staticLease (-want +got):\n%s", diff)
	}
	if _, err := staticLease("eth1", testMAC, &cmdline.IPConfig{Autoconf: "dhcp"}); err == nil {
		t.Error("staticLease without an address: no error")
	}
}

func TestMakePlan(t *testing.T) {
	mustIP := func(s string) *cmdline.IPConfig {
		c, err := cmdline.ParseIP(s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tt := range []struct {
		c    Config
		want plan
	}{
		{Config{}, plan{}},
		{Config{IP: mustIP("dhcp")}, plan{}},
		{Config{BootIF: testMAC}, plan{mac: testMAC}},
		{Config{IP: mustIP(":::::eth1:dhcp")}, plan{device: "eth1"}},
		{Config{BootIF: testMAC, IP: mustIP(":::::eth1:dhcp")}, plan{mac: testMAC}},
		{Config{IP: mustIP("10.0.0.5::10.0.0.1:24::eth1:off")}, plan{static: true, device: "eth1"}},
		{Config{IP: mustIP("10.0.0.5::10.0.0.1:24:::none")}, plan{static: true}},
		{Config{BootIF: testMAC, IP: mustIP("10.0.0.5::10.0.0.1:24::eth1:off")}, plan{static: true, mac: testMAC}},
	} {
		got := makePlan(tt.c)
		if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(plan{})); diff != "" {
			t.Errorf("makePlan(%+v) (-want +got):\n%s", tt.c, diff)
		}
	}
}

func TestValidDomain(t *testing.T) {
	for s, want := range map[string]bool{
		"node7": true, "node7.lab.example": true, "node7.lab.example.": true, "a_b": true,
		"": false, "-x": false, "x-": false, "a..b": false, "a b": false, "a\nb": false,
		string(make([]byte, 64)): false,
	} {
		if got := validDomain(s); got != want {
			t.Errorf("validDomain(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestRenderResolvConf(t *testing.T) {
	for _, tt := range []struct {
		dns    []netip.Addr
		search []string
		want   string
	}{
		{nil, nil, "# Written by ramboot from the boot NIC's configuration.\n"},
		{
			[]netip.Addr{ip("10.0.0.53"), ip("10.0.0.54")}, []string{"lab.example", "example"},
			"# Written by ramboot from the boot NIC's configuration.\n" +
				"search lab.example example\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n",
		},
	} {
		if got := renderResolvConf(tt.dns, tt.search); got != tt.want {
			t.Errorf("renderResolvConf(%v, %v) = %q, want %q", tt.dns, tt.search, got, tt.want)
		}
	}
}

func TestLeaseStrings(t *testing.T) {
	l := &Lease{Iface: "eth0", MAC: testMAC, Addr: pfx("10.0.0.5/24"), Gateway: ip("10.0.0.1"),
		DNS: []netip.Addr{ip("10.0.0.53")}, Hostname: "node7", DHCP: true}
	if got, want := l.String(), "eth0 (52:54:00:12:34:56) 10.0.0.5/24 dhcp gw 10.0.0.1 dns 10.0.0.53 host node7"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := l.BootIF(), "01-52-54-00-12-34-56"; got != want {
		t.Errorf("BootIF() = %q, want %q", got, want)
	}
}

// FuzzLeaseFromACK feeds server packets (outside input) through leaseFromACK and the
// renderers: no panics, and nothing a server sends adds lines to the files written.
func FuzzLeaseFromACK(f *testing.F) {
	f.Add(ack(f).ToBytes())
	f.Add(ack(f,
		dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
		dhcpv4.WithOption(dhcpv4.OptRouter(net.IPv4(10, 0, 0, 1))),
		dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(&dhcpv4.Route{Dest: ipnet("192.0.2.0/24"), Router: net.IPv4(10, 0, 0, 254)})),
		dhcpv4.WithOption(dhcpv4.OptDNS(net.IPv4(10, 0, 0, 53))),
		dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: []string{"a.example"}})),
		dhcpv4.WithOption(dhcpv4.OptHostName("node7")),
	).ToBytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		l, err := leaseFromACK("eth0", testMAC, m, nil)
		if err != nil {
			return
		}
		if !l.Addr.IsValid() || !l.Addr.Addr().Is4() {
			t.Fatalf("lease address %v", l.Addr)
		}
		lines := 1 + len(l.DNS)
		if len(l.Search) > 0 {
			lines++
		}
		if got := strings.Count(renderResolvConf(l.DNS, l.Search), "\n"); got != lines {
			t.Fatalf("resolv.conf has %d lines, want %d (search %q)", got, lines, l.Search)
		}
		if strings.ContainsAny(l.Hostname, "\n\r\" ") {
			t.Fatalf("hostname %q", l.Hostname)
		}
		l.DHCP = false // the static renderers write more of the lease
		tp := plain(l)
		renderNetworkd(tp)
		for _, r := range []func(*imageTopo) string{renderIfupdown, renderNetplan, renderUdevRule} {
			r(tp)
		}
	})
}
