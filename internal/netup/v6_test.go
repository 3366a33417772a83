package netup

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/mdlayher/ndp"
	"github.com/ramboot/ramboot/internal/cmdline"
)

var mac6 = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x10}

func TestSLAACAddr(t *testing.T) {
	for _, tt := range []struct {
		prefix string
		mac    string
		want   string
	}{
		{"fd00:1::/64", "02:00:5e:00:00:10", "fd00:1::5eff:fe00:10"},
		{"2001:db8:0:7::/64", "52:54:00:12:34:56", "2001:db8:0:7:5054:ff:fe12:3456"},
		{"2001:db8::/48", "52:54:00:12:34:56", ""}, // SLAAC over Ethernet is /64 only
		{"2001:db8::/64", "52:54:00:12:34", ""},
	} {
		mac, _ := net.ParseMAC(tt.mac)
		a, ok := slaacAddr(netip.MustParsePrefix(tt.prefix), mac)
		if tt.want == "" {
			if ok {
				t.Errorf("%s %s: %s, want none", tt.prefix, tt.mac, a)
			}
			continue
		}
		if !ok || a != netip.MustParseAddr(tt.want) {
			t.Errorf("%s %s: %s %t, want %s", tt.prefix, tt.mac, a, ok, tt.want)
		}
	}
}

// raOnWire marshals ra with ndp, the reference, and parses it back with parseRA.
func raOnWire(t testing.TB, ra *ndp.RouterAdvertisement) *routerAdvert {
	b, err := ndp.MarshalMessage(ra)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseRA(b)
	if err != nil {
		t.Fatalf("parseRA(%x): %v", b, err)
	}
	return r
}

func TestLease6FromRA(t *testing.T) {
	now := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	router := netip.MustParseAddr("fe80::1")
	pi := func(p string, l, a bool, valid, pref time.Duration) *ndp.PrefixInformation {
		pp := netip.MustParsePrefix(p)
		return &ndp.PrefixInformation{PrefixLength: uint8(pp.Bits()), OnLink: l, AutonomousAddressConfiguration: a,
			ValidLifetime: valid, PreferredLifetime: pref, Prefix: pp.Addr()}
	}
	ra := raOnWire(t, &ndp.RouterAdvertisement{
		CurrentHopLimit: 64, OtherConfiguration: true, RouterLifetime: 1800 * time.Second,
		Options: []ndp.Option{
			pi("fd00:1::/64", true, true, time.Hour, 30*time.Minute),
			pi("fd00:2::/64", false, true, ndp.Infinity, ndp.Infinity),
			pi("fd00:3::/48", true, true, time.Hour, time.Hour),      // not /64: on-link only
			pi("fd00:4::/64", true, true, 0, 0),                      // valid 0: ignored
			pi("fd00:5::/64", true, true, time.Minute, time.Hour),    // preferred > valid
			pi("fe80::/64", true, true, time.Hour, time.Hour),        // link-local: ignored
			pi("fd00:6::/64", true, false, time.Hour, time.Hour),     // no A flag
			pi("fd00:1::/64", true, true, time.Hour, 30*time.Minute), // twice
			&ndp.RecursiveDNSServer{Lifetime: time.Hour, Servers: []netip.Addr{netip.MustParseAddr("fd00:1::53")}},
			&ndp.RecursiveDNSServer{Lifetime: 0, Servers: []netip.Addr{netip.MustParseAddr("fd00:1::54")}},
			&ndp.DNSSearchList{Lifetime: time.Hour, DomainNames: []string{"lab.test", "example.org"}},
			&ndp.MTU{MTU: 1400},
		},
	})
	l, onLink := lease6FromRA(ra, router, mac6, now)
	want := &Lease6{
		Addrs: []Addr6{
			{Prefix: netip.MustParsePrefix("fd00:1::5eff:fe00:10/64"), From: "slaac", Obtained: now, Valid: time.Hour, Preferred: 30 * time.Minute},
			{Prefix: netip.MustParsePrefix("fd00:2::5eff:fe00:10/64"), From: "slaac", Obtained: now},
		},
		Gateway: router, GatewayLifetime: 1800 * time.Second, Obtained: now, Other: true,
		DNS:    []netip.Addr{netip.MustParseAddr("fd00:1::53")},
		Search: []string{"lab.test", "example.org"},
		MTU:    1400,
	}
	if diff := cmp.Diff(want, l, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("lease (-want +got):\n%s", diff)
	}
	wantOn := []netip.Prefix{netip.MustParsePrefix("fd00:1::/64"), netip.MustParsePrefix("fd00:3::/48"),
		netip.MustParsePrefix("fd00:4::/64"), netip.MustParsePrefix("fd00:5::/64"), netip.MustParsePrefix("fd00:6::/64")}
	if !slices.Equal(onLink, wantOn) {
		t.Errorf("on-link %v, want %v", onLink, wantOn)
	}

	// Router lifetime 0: not a default router; a small MTU is not IPv6's.
	ra = raOnWire(t, &ndp.RouterAdvertisement{ManagedConfiguration: true, Options: []ndp.Option{&ndp.MTU{MTU: 1000}}})
	l, _ = lease6FromRA(ra, router, mac6, now)
	if l.Gateway.IsValid() || l.MTU != 0 || !l.Managed || len(l.Addrs) != 0 {
		t.Errorf("lifetime 0: %+v", l)
	}
}

// reply is a DHCPv6 REPLY as a server sends it, parsed back from its bytes.
func reply(t testing.TB, mods ...dhcpv6.Modifier) *dhcpv6.Message {
	m := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply, TransactionID: dhcpv6.TransactionID{1, 2, 3}}
	m.AddOption(dhcpv6.OptServerID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 1}}))
	for _, mod := range mods {
		mod(m)
	}
	p, err := dhcpv6.MessageFromBytes(m.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func iaAddr(a string, pref, valid time.Duration) dhcpv6.OptIAAddress {
	return dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP(a), PreferredLifetime: pref, ValidLifetime: valid}
}

func TestLease6FromReply(t *testing.T) {
	now := time.Date(2026, 12, 4, 22, 0, 0, 0, time.UTC)
	server := netip.MustParseAddr("fe80::1")
	r := reply(t,
		dhcpv6.WithIAID([4]byte{0, 0, 0, 0x10}),
		dhcpv6.WithIANA(iaAddr("fd00:1::1:10", time.Hour, 2*time.Hour), iaAddr("fd00:1::1:11", 3*time.Hour, time.Hour), iaAddr("fd00:1::1:12", 0, 0)),
		dhcpv6.WithDNS(net.ParseIP("fd00:1::53")),
		dhcpv6.WithDomainSearchList("lab.test"),
		dhcpv6.WithOption(dhcpv6.OptBootFileURL("http://[fd00:1::1]:8080/menus/lab.yaml")),
	)
	l, err := lease6FromReply(r, server, now, false)
	if err != nil {
		t.Fatal(err)
	}
	want := &Lease6{
		Addrs:       []Addr6{{Prefix: netip.MustParsePrefix("fd00:1::1:10/128"), From: "dhcpv6", Obtained: now, Valid: 2 * time.Hour, Preferred: time.Hour}},
		DNS:         []netip.Addr{netip.MustParseAddr("fd00:1::53")},
		Search:      []string{"lab.test"},
		BootFileURL: "http://[fd00:1::1]:8080/menus/lab.yaml",
		Server:      server,
	}
	cmpAddr := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	cmpPrefix := cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
	if diff := cmp.Diff(want, l, cmpAddr, cmpPrefix); diff != "" {
		t.Errorf("lease (-want +got):\n%s", diff)
	}
	onLinkLength(l.Addrs, []netip.Prefix{netip.MustParsePrefix("fd00:9::/64"), netip.MustParsePrefix("fd00:1::/64")})
	if l.Addrs[0].Prefix != netip.MustParsePrefix("fd00:1::1:10/64") {
		t.Errorf("on-link length: %s", l.Addrs[0].Prefix)
	}

	noAddrs := reply(t, dhcpv6.WithIAID([4]byte{1}), dhcpv6.WithOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "none left"}))
	if _, err := lease6FromReply(noAddrs, server, now, false); err == nil || !strings.Contains(err.Error(), "none left") {
		t.Errorf("NoAddrsAvail: %v", err)
	}
	empty := reply(t, dhcpv6.WithDNS(net.ParseIP("fd00::53")), dhcpv6.WithOption(dhcpv6.OptBootFileURL("http://x/\nevil")))
	if _, err := lease6FromReply(empty, server, now, false); err == nil {
		t.Error("a reply without an address is a lease")
	}
	info, err := lease6FromReply(empty, server, now, true)
	if err != nil || len(info.Addrs) != 0 || len(info.DNS) != 1 || info.BootFileURL != "" {
		t.Errorf("information reply: %+v, %v (want its DNS server and no boot URL with a newline)", info, err)
	}
	adv := reply(t)
	adv.MessageType = dhcpv6.MessageTypeAdvertise
	if _, err := lease6FromReply(adv, server, now, false); err == nil {
		t.Error("an ADVERTISE is a lease")
	}
}

func TestMerge6(t *testing.T) {
	ra := &Lease6{Addrs: []Addr6{{Prefix: netip.MustParsePrefix("fd00::a/64"), From: "slaac"}}, Gateway: netip.MustParseAddr("fe80::1"),
		DNS: []netip.Addr{netip.MustParseAddr("fd00::53")}, Search: []string{"ra.test"}, MTU: 1400}
	d := &Lease6{Addrs: []Addr6{{Prefix: netip.MustParsePrefix("fd00::b/64"), From: "dhcpv6"}}, Server: netip.MustParseAddr("fe80::2"),
		DNS: []netip.Addr{netip.MustParseAddr("fd00::54"), netip.MustParseAddr("fd00::53")}, Search: []string{"dhcp.test"}, BootFileURL: "http://[fd00::1]/x.yaml"}
	m := merge6(ra, d)
	if len(m.Addrs) != 2 || m.Gateway != ra.Gateway || m.MTU != 1400 || m.Server != d.Server || m.BootFileURL != d.BootFileURL ||
		!slices.Equal(m.DNS, []netip.Addr{netip.MustParseAddr("fd00::54"), netip.MustParseAddr("fd00::53")}) ||
		!slices.Equal(m.Search, []string{"dhcp.test", "ra.test"}) {
		t.Errorf("merged %+v", m)
	}
	if len(ra.Addrs) != 1 {
		t.Error("merge6 changed its argument")
	}
}

func TestFamiliesOf(t *testing.T) {
	for _, tt := range []struct {
		ip, other string
		want      string
	}{
		{"", "", "DHCPv4 and IPv6 auto6"},
		{"dhcp", "", "DHCPv4"},
		{"eth0:dhcp", "", "DHCPv4"},
		{"dhcp6", "", "IPv6 dhcp6"},
		{"auto6", "", "IPv6 auto6"},
		{"either6", "", "IPv6 either6"},
		{"link6", "", "IPv6 link6"},
		{"dhcp,dhcp6", "", "DHCPv4 and IPv6 dhcp6"},
		{"eth0:dhcp,auto6", "", "DHCPv4 and IPv6 auto6"},
		{"[fd00::5]::[fd00::1]:64::eth0:none", "", "IPv6 static"},
		{"10.0.0.5::10.0.0.1:255.255.255.0::eth0:none", "", "static IPv4"},
		{"10.0.0.5::10.0.0.1:255.255.255.0::eth0:none", "[fd00::5]::[fd00::1]:64::eth0:none", "static IPv4 and IPv6 static"},
		{"eth0:dhcp", "eth0:auto6", "DHCPv4 and IPv6 auto6"},
		{"eth0:dhcp", "eth1:auto6", "DHCPv4"},
		{"off", "", "nothing"},
	} {
		c := Config{}
		if tt.ip != "" {
			ip, err := cmdline.ParseIP(tt.ip)
			if err != nil {
				t.Fatalf("%s: %v", tt.ip, err)
			}
			c.IP = ip
			c.Net = &cmdline.Network{IPs: []cmdline.IPConfig{*ip}}
			if tt.other != "" {
				o, err := cmdline.ParseIP(tt.other)
				if err != nil {
					t.Fatalf("%s: %v", tt.other, err)
				}
				c.Net.IPs = append(c.Net.IPs, *o)
			}
		}
		if got := familiesOf(c).String(); got != tt.want {
			t.Errorf("ip=%s %s: %s, want %s", tt.ip, tt.other, got, tt.want)
		}
	}
}

// FuzzLease6 feeds arbitrary router advertisements and DHCPv6 replies through the parsers
// and into lease6FromRA and lease6FromReply: no panic, and what comes out is fit to be
// configured and written into files.
func FuzzLease6(f *testing.F) {
	for _, seed := range raSeeds(f) {
		f.Add(seed)
	}
	f.Add(reply(f, dhcpv6.WithIAID([4]byte{1}), dhcpv6.WithIANA(iaAddr("fd00::10", time.Hour, time.Hour)),
		dhcpv6.WithDomainSearchList("lab.test"), dhcpv6.WithOption(dhcpv6.OptBootFileURL("http://[fd00::1]/m.yaml"))).ToBytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		now := time.Now()
		var ls []*Lease6
		if ra, err := parseRA(b); err == nil {
			l, _ := lease6FromRA(ra, netip.MustParseAddr("fe80::1"), mac6, now)
			ls = append(ls, l)
		}
		if m, err := dhcpv6.MessageFromBytes(b); err == nil {
			for _, info := range []bool{false, true} {
				if l, err := lease6FromReply(m, netip.MustParseAddr("fe80::2"), now, info); err == nil {
					ls = append(ls, l)
				}
			}
		}
		for _, l := range ls {
			for _, a := range l.Addrs {
				if !a.Prefix.IsValid() || !a.Prefix.Addr().Is6() || a.Prefix.Addr().IsLinkLocalUnicast() || a.Preferred > a.Valid && a.Valid != 0 {
					t.Errorf("address %+v", a)
				}
			}
			for _, s := range l.Search {
				if !validDomain(s) {
					t.Errorf("search domain %q", s)
				}
			}
			if strings.ContainsAny(l.BootFileURL, "\n\r\x00") {
				t.Errorf("boot URL %q", l.BootFileURL)
			}
		}
	})
}

func raSeeds(t testing.TB) [][]byte {
	var out [][]byte
	for _, ra := range []*ndp.RouterAdvertisement{
		{RouterLifetime: time.Minute, ManagedConfiguration: true, Options: []ndp.Option{
			&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true, ValidLifetime: time.Hour, PreferredLifetime: time.Hour, Prefix: netip.MustParseAddr("fd00::")},
			&ndp.DNSSearchList{Lifetime: time.Hour, DomainNames: []string{"lab.test", "b.example.org"}},
			&ndp.RecursiveDNSServer{Lifetime: time.Hour, Servers: []netip.Addr{netip.MustParseAddr("fd00::53"), netip.MustParseAddr("fd00::54")}},
			&ndp.MTU{MTU: 1500},
			&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac6},
		}},
		{OtherConfiguration: true},
	} {
		b, err := ndp.MarshalMessage(ra)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// fromNDP is ndp's reading of an advertisement in parseRA's terms.
func fromNDP(ra *ndp.RouterAdvertisement) *routerAdvert {
	r := &routerAdvert{Managed: ra.ManagedConfiguration, Other: ra.OtherConfiguration, RouterLifetime: ra.RouterLifetime}
	for _, o := range ra.Options {
		switch o := o.(type) {
		case *ndp.PrefixInformation:
			p, err := o.Prefix.Prefix(int(o.PrefixLength))
			if err != nil {
				continue
			}
			r.Prefixes = append(r.Prefixes, prefixInfo{Prefix: p, OnLink: o.OnLink, Auto: o.AutonomousAddressConfiguration,
				Valid: o.ValidLifetime, Preferred: o.PreferredLifetime})
		case *ndp.RecursiveDNSServer:
			r.RDNSS = append(r.RDNSS, rdnss{Lifetime: o.Lifetime, Servers: o.Servers})
		case *ndp.DNSSearchList:
			r.DNSSL = append(r.DNSSL, dnssl{Lifetime: o.Lifetime, Domains: o.DomainNames})
		case *ndp.MTU:
			r.MTU = o.MTU
		}
	}
	return r
}

// FuzzParseRA checks parseRA against ndp: where ndp reads a router advertisement, parseRA
// reads one too, and the two configure the same lease. (Search domains are compared where
// they are plain ASCII: ndp decodes Punycode labels, which resolv.conf would not take.)
func FuzzParseRA(f *testing.F) {
	for _, seed := range raSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		mine, err := parseRA(b)
		m, nerr := ndp.ParseMessage(b)
		ra, isRA := m.(*ndp.RouterAdvertisement)
		if nerr != nil || !isRA || b[1] != 0 {
			return
		}
		if err != nil {
			t.Fatalf("ndp reads %+v, parseRA: %v", ra, err)
		}
		now := time.Unix(1e9, 0)
		router := netip.MustParseAddr("fe80::1")
		got, gotOn := lease6FromRA(mine, router, mac6, now)
		want, wantOn := lease6FromRA(fromNDP(ra), router, mac6, now)
		ascii := func(ss []string) []string {
			var out []string
			for _, s := range ss {
				if !strings.Contains(strings.ToLower(s), "xn--") {
					out = append(out, s)
				}
			}
			return out
		}
		got.Search, want.Search = ascii(got.Search), ascii(want.Search)
		cmpAddr := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
		cmpPrefix := cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })
		if diff := cmp.Diff(want, got, cmpAddr, cmpPrefix); diff != "" {
			t.Errorf("lease (-ndp +parseRA):\n%s", diff)
		}
		if !slices.Equal(gotOn, wantOn) {
			t.Errorf("on-link %v, ndp %v", gotOn, wantOn)
		}
	})
}

// TestRouterSolicitation: ndp reads what routerSolicitation builds.
func TestRouterSolicitation(t *testing.T) {
	for _, mac := range []net.HardwareAddr{mac6, nil} {
		m, err := ndp.ParseMessage(routerSolicitation(mac))
		if err != nil {
			t.Fatal(err)
		}
		rs, ok := m.(*ndp.RouterSolicitation)
		if !ok {
			t.Fatalf("%T", m)
		}
		switch {
		case mac == nil && len(rs.Options) != 0:
			t.Errorf("options %v without a MAC", rs.Options)
		case mac != nil && (len(rs.Options) != 1 || rs.Options[0].(*ndp.LinkLayerAddress).Addr.String() != mac.String()):
			t.Errorf("options %v, want the source link-layer address %s", rs.Options, mac)
		}
	}
}

// TestLease6Describe: a lease with IPv6 only says so, without an invalid IPv4 address.
func TestLease6Describe(t *testing.T) {
	l := &Lease{Iface: "eth0", MAC: mac6, V6: &Lease6{
		Addrs:   []Addr6{{Prefix: netip.MustParsePrefix("fd00::5eff:fe00:10/64"), From: "slaac"}},
		Gateway: netip.MustParseAddr("fe80::1"), DNS: []netip.Addr{netip.MustParseAddr("fd00::53")},
		BootFileURL: "http://[fd00::1]/m.yaml", Server: netip.MustParseAddr("fe80::1"),
	}}
	if got, want := l.String(), "eth0 (02:00:5e:00:00:10) fd00::5eff:fe00:10/64 slaac gw fe80::1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	d := strings.Join(l.Describe(), "\n")
	for _, want := range []string{"address    fd00::5eff:fe00:10/64 by SLAAC", "gateway    fe80::1", "DNS        fd00::53",
		"server     fe80::1 (DHCPv6)", "boot URL   http://[fd00::1]/m.yaml (DHCPv6)"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe lacks %q:\n%s", want, d)
		}
	}
	if strings.Contains(d, "invalid") {
		t.Errorf("Describe:\n%s", d)
	}
}
