package netup

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/ramboot/ramboot/internal/cmdline"
)

// Lease6 is the IPv6 side of a Lease: what router advertisements, SLAAC, DHCPv6 or a static
// [v6] ip= configured on the interface.
type Lease6 struct {
	Addrs   []Addr6      // global addresses installed, each with its lifetimes
	Gateway netip.Addr   // the default router (link-local), from router advertisements
	DNS     []netip.Addr // RDNSS and DHCPv6 option 23
	Search  []string     // DNSSL and DHCPv6 option 24
	// BootFileURL is DHCPv6 option 59 (RFC 5970): the menu or image URL, as DHCPv4's boot
	// file is used.
	BootFileURL string
	Server      netip.Addr // the DHCPv6 server that answered; invalid without DHCPv6
	MTU         int        // from a router advertisement; 0 if none said
	// Obtained is when the router advertisement arrived; GatewayLifetime (its router
	// lifetime) counts from it. A zero GatewayLifetime with a valid Gateway means forever
	// (static ip=).
	Obtained        time.Time
	GatewayLifetime time.Duration
	// Managed and Other are the advertisement's M and O flags: addresses, or only other
	// configuration, from DHCPv6.
	Managed, Other bool
}

// Addr6 is one IPv6 address with its lifetimes, counted from Obtained. A zero Valid means
// forever (static).
type Addr6 struct {
	Prefix    netip.Prefix
	From      string // "slaac", "dhcpv6" or "static"
	Obtained  time.Time
	Valid     time.Duration
	Preferred time.Duration
}

// String is "fd00::1/64 slaac".
func (a Addr6) String() string { return a.Prefix.String() + " " + a.From }

// v6Method is how IPv6 is configured on the boot link: dracut's autoconf words.
type v6Method int

const (
	v6None   v6Method = iota
	v6Auto            // auto6: router advertisements, SLAAC, DHCPv6 if M or O says so
	v6DHCP            // dhcp6: DHCPv6 for the address, advertisements for the router
	v6Either          // either6: auto6, else dhcp6
	v6Link            // link6: the link-local address only
	v6Static          // ip= with an [IPv6] address
)

func (m v6Method) String() string {
	return [...]string{"none", "auto6", "dhcp6", "either6", "link6", "static"}[m]
}

// families is what acquire does on a link, from ip=.
type families struct {
	dhcp4, static4 bool
	v6             v6Method
	ip4, ip6       *cmdline.IPConfig // the ip= that configures each family; nil if none
}

func (f families) String() string {
	var s []string
	switch {
	case f.dhcp4:
		s = append(s, "DHCPv4")
	case f.static4:
		s = append(s, "static IPv4")
	}
	if f.v6 != v6None {
		s = append(s, "IPv6 "+f.v6.String())
	}
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, " and ")
}

// familiesOf decides the families from c.IP, and from another ip= in c.Net for the same
// interface and the other IP version (dracut allows one of each per interface, e.g.
// ip=eth0:dhcp ip=[fd00::5]::[fd00::1]:64::eth0:none). Without ip=: DHCPv4 and auto6 at
// once. ip=dhcp is IPv4 only; dhcp6, auto6, either6 and link6 are IPv6; a list (dhcp,auto6)
// asks for both.
func familiesOf(c Config) families {
	if c.IP == nil {
		return families{dhcp4: true, v6: v6Auto}
	}
	var f families
	ips := []*cmdline.IPConfig{c.IP}
	if c.Net != nil {
		for i := range c.Net.IPs {
			o := &c.Net.IPs[i]
			if o.Device == c.IP.Device && o.String() != c.IP.String() {
				ips = append(ips, o)
			}
		}
	}
	for _, ip := range ips {
		if f.ip4 == nil && ip.IPv4() {
			f.ip4 = ip
			if ip.Addr.IsValid() && ip.Addr.Addr().Is4() {
				f.static4 = true
			} else {
				// No autoconf at all is the kernel's default, DHCP; off and none ask for nothing.
				f.dhcp4 = slices.ContainsFunc(ip.Methods(), isDHCP4Word) || ip.Autoconf == "" && !ip.Addr.IsValid()
			}
		}
		if f.ip6 == nil && ip.IPv6() {
			f.ip6 = ip
			switch ms := ip.Methods(); {
			case ip.Addr.IsValid() && ip.Addr.Addr().Is6():
				f.v6 = v6Static
			case slices.Contains(ms, "auto6"):
				f.v6 = v6Auto
			case slices.Contains(ms, "either6"):
				f.v6 = v6Either
			case slices.Contains(ms, "dhcp6"):
				f.v6 = v6DHCP
			case slices.Contains(ms, "link6"):
				f.v6 = v6Link
			}
		}
	}
	return f
}

func isDHCP4Word(w string) bool {
	switch w {
	case "dhcp", "on", "any", "both", "bootp", "rarp", "single-dhcp":
		return true
	}
	return false
}

// slaacAddr is the address SLAAC forms in a /64 prefix from an Ethernet MAC (modified
// EUI-64, RFC 4291 appendix A): stable across boots, and it needs no entropy, which PID 1
// early in boot may not have (RFC 7217's stable-privacy addresses need a secret).
func slaacAddr(p netip.Prefix, mac net.HardwareAddr) (netip.Addr, bool) {
	if p.Bits() != 64 || !p.Addr().Is6() || p.Addr().Is4In6() || len(mac) != 6 {
		return netip.Addr{}, false
	}
	b := p.Masked().Addr().As16()
	b[8], b[9], b[10] = mac[0]^0x02, mac[1], mac[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b), true
}

// lifetime turns an advertised lifetime into Addr6's: infinity (0xffffffff s) is 0, forever.
func lifetime(d time.Duration) time.Duration {
	if d >= infinity {
		return 0
	}
	return d
}

// lease6FromRA is what a router advertisement from router (its link-local source) configures
// on a link with this MAC: the router as default gateway (if its lifetime is not 0), a SLAAC
// address in each /64 prefix with the A flag (RFC 4862 5.5.3: valid lifetime not 0,
// preferred not above valid, not link-local), RDNSS and DNSSL (RFC 8106), the MTU (at least
// IPv6's 1280), and the M and O flags. onLink are the prefixes with the L flag.
func lease6FromRA(ra *routerAdvert, router netip.Addr, mac net.HardwareAddr, now time.Time) (l *Lease6, onLink []netip.Prefix) {
	l = &Lease6{Obtained: now, Managed: ra.Managed, Other: ra.Other}
	if ra.RouterLifetime > 0 && router.Is6() && router.IsLinkLocalUnicast() {
		l.Gateway = router.WithZone("")
		l.GatewayLifetime = ra.RouterLifetime
	}
	for _, o := range ra.Prefixes {
		p := o.Prefix
		if !p.IsValid() || !p.Addr().Is6() || p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast() {
			continue
		}
		if o.OnLink && !slices.Contains(onLink, p) {
			onLink = append(onLink, p)
		}
		if !o.Auto || o.Valid == 0 || o.Preferred > o.Valid {
			continue
		}
		a, ok := slaacAddr(p, mac)
		if !ok || slices.ContainsFunc(l.Addrs, func(x Addr6) bool { return x.Prefix.Addr() == a }) {
			continue
		}
		l.Addrs = append(l.Addrs, Addr6{
			Prefix: netip.PrefixFrom(a, 64), From: "slaac", Obtained: now,
			Valid: lifetime(o.Valid), Preferred: lifetime(o.Preferred),
		})
	}
	for _, o := range ra.RDNSS {
		if o.Lifetime == 0 {
			continue
		}
		for _, s := range o.Servers {
			// A link-local server would need its zone in resolv.conf, and in the booted system.
			if s.Is6() && !s.Is4In6() && !s.IsUnspecified() && !s.IsMulticast() && !s.IsLinkLocalUnicast() && !slices.Contains(l.DNS, s) {
				l.DNS = append(l.DNS, s)
			}
		}
	}
	for _, o := range ra.DNSSL {
		if o.Lifetime == 0 {
			continue
		}
		for _, d := range o.Domains {
			if validDomain(d) && !slices.Contains(l.Search, d) {
				l.Search = append(l.Search, d)
			}
		}
	}
	if ra.MTU >= 1280 && ra.MTU <= 65535 {
		l.MTU = int(ra.MTU)
	}
	return l, onLink
}

// lease6FromReply is what a DHCPv6 Reply configures: the IA_NA's addresses (RFC 8415 21.6:
// valid lifetime not 0, preferred not above valid) as /128s — the router advertisement's
// on-link prefixes say which are on the link —, DNS servers (23), search list (24) and the
// boot file URL (59). A Reply with an error status, or an IA_NA with one, or none with an
// address, is an error unless infoOnly (the Reply to an Information-Request).
func lease6FromReply(reply *dhcpv6.Message, server netip.Addr, now time.Time, infoOnly bool) (*Lease6, error) {
	if reply.MessageType != dhcpv6.MessageTypeReply {
		return nil, fmt.Errorf("DHCPv6 %s, not a reply", reply.MessageType)
	}
	if s := reply.Options.Status(); s != nil && s.StatusCode != iana.StatusSuccess {
		return nil, fmt.Errorf("DHCPv6 reply: %s: %q", s.StatusCode, s.StatusMessage)
	}
	l := &Lease6{Server: server.WithZone(""), BootFileURL: reply.Options.BootFileURL()}
	for _, ia := range reply.Options.IANA() {
		if s := ia.Options.Status(); s != nil && s.StatusCode != iana.StatusSuccess {
			if !infoOnly {
				return nil, fmt.Errorf("DHCPv6 reply: IA_NA: %s: %q", s.StatusCode, s.StatusMessage)
			}
			continue
		}
		for _, a := range ia.Options.Addresses() {
			ip, ok := netip.AddrFromSlice(a.IPv6Addr)
			if !ok || !ip.Is6() || ip.Is4In6() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() || ip.IsMulticast() ||
				a.ValidLifetime == 0 || a.PreferredLifetime > a.ValidLifetime {
				continue
			}
			if slices.ContainsFunc(l.Addrs, func(x Addr6) bool { return x.Prefix.Addr() == ip }) {
				continue
			}
			l.Addrs = append(l.Addrs, Addr6{
				Prefix: netip.PrefixFrom(ip, 128), From: "dhcpv6", Obtained: now,
				Valid: lifetime(a.ValidLifetime), Preferred: lifetime(a.PreferredLifetime),
			})
		}
	}
	if len(l.Addrs) == 0 && !infoOnly {
		return nil, fmt.Errorf("DHCPv6 reply from %s has no address", server)
	}
	for _, ip := range reply.Options.DNS() {
		if a, ok := netip.AddrFromSlice(ip); ok && a.Is6() && !a.Is4In6() && !a.IsUnspecified() && !slices.Contains(l.DNS, a) {
			l.DNS = append(l.DNS, a)
		}
	}
	if ds := reply.Options.DomainSearchList(); ds != nil {
		for _, d := range ds.Labels {
			if validDomain(d) && !slices.Contains(l.Search, d) {
				l.Search = append(l.Search, d)
			}
		}
	}
	// Option 59 becomes a URL to fetch: a server's control character must not.
	if strings.ContainsFunc(l.BootFileURL, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		l.BootFileURL = ""
	}
	return l, nil
}

// onLinkLength gives each /128 DHCPv6 address the length of the advertised on-link prefix
// that holds it, so that the kernel's prefix route makes its neighbours reachable directly.
func onLinkLength(addrs []Addr6, onLink []netip.Prefix) {
	for i, a := range addrs {
		if a.Prefix.Bits() != 128 {
			continue
		}
		for _, p := range onLink {
			if p.Contains(a.Prefix.Addr()) {
				addrs[i].Prefix = netip.PrefixFrom(a.Prefix.Addr(), p.Bits())
				break
			}
		}
	}
}

// merge6 adds what a DHCPv6 reply (d) said to what router advertisements said (l): d's
// addresses after l's, DNS servers and search domains merged with d's first (a DHCPv6
// server is configured for the hosts, RDNSS for everyone), and d's server and boot file URL.
func merge6(l, d *Lease6) *Lease6 {
	if l == nil {
		return d
	}
	out := *l
	out.Addrs = slices.Clone(l.Addrs)
	for _, a := range d.Addrs {
		if !slices.ContainsFunc(out.Addrs, func(x Addr6) bool { return x.Prefix.Addr() == a.Prefix.Addr() }) {
			out.Addrs = append(out.Addrs, a)
		}
	}
	out.DNS = mergeAddrs(d.DNS, l.DNS)
	out.Search = mergeStrings(d.Search, l.Search)
	out.Server, out.BootFileURL = d.Server, d.BootFileURL
	return &out
}

func mergeAddrs(a, b []netip.Addr) []netip.Addr {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func mergeStrings(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// static6 is a static [v6] ip=: its address and gateway, forever, and its IPv6 DNS servers.
func static6(ip *cmdline.IPConfig) *Lease6 {
	l := &Lease6{Addrs: []Addr6{{Prefix: ip.Addr, From: "static"}}}
	if ip.Gateway.IsValid() && ip.Gateway.Is6() && !ip.Gateway.IsUnspecified() {
		l.Gateway = ip.Gateway
	}
	for _, d := range ip.DNS {
		if d.Is6() {
			l.DNS = append(l.DNS, d)
		}
	}
	return l
}

// addrList is the addresses as "a, b" for logs.
func (l *Lease6) addrList() string {
	s := make([]string, len(l.Addrs))
	for i, a := range l.Addrs {
		s[i] = a.String()
	}
	if len(s) == 0 {
		return "link-local only"
	}
	return strings.Join(s, ", ")
}
