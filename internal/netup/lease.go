package netup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/ramboot/ramboot/internal/cmdline"
)

// leaseFromACK turns a DHCPACK into the Lease to configure on iface. ip, if not nil, is
// ip= from the command line: its hostname and DNS servers win over the server's, as with the
// kernel's own ipconfig.
func leaseFromACK(iface string, mac net.HardwareAddr, ack *dhcpv4.DHCPv4, ip *cmdline.IPConfig) (*Lease, error) {
	yi, ok := netip.AddrFromSlice(ack.YourIPAddr)
	if !ok || !yi.Unmap().Is4() || yi.Unmap().IsUnspecified() {
		return nil, fmt.Errorf("ack from %s has no address", ack.ServerIdentifier())
	}
	yi = yi.Unmap()
	bits := cmdline.ClassfulBits(yi)
	if m := ack.SubnetMask(); m != nil {
		ones, size := m.Size()
		if size != 32 {
			return nil, fmt.Errorf("ack for %s: netmask %s is not contiguous", yi, net.IP(m))
		}
		bits = ones
	}
	l := &Lease{
		Iface:    iface,
		MAC:      mac,
		Addr:     netip.PrefixFrom(yi, bits),
		DNS:      addrs4(ack.DNS()),
		Hostname: ack.HostName(),
		BootFile: ack.BootFileNameOption(),
		Options:  maps.Clone(map[uint8][]byte(ack.Options)),
		DHCP:     true,
		Obtained: time.Now(),
	}
	l.LeaseTime, l.T1, l.T2 = leaseTimes(ack)
	if l.BootFile == "" {
		l.BootFile = ack.BootFileName
	}
	if s := addrs4([]net.IP{ack.ServerIdentifier()}); len(s) > 0 {
		l.Server = s[0]
	}
	l.TFTPServer = ack.TFTPServerName()
	if s := addrs4([]net.IP{ack.ServerIPAddr}); l.TFTPServer == "" && len(s) > 0 {
		l.TFTPServer = s[0].String()
	}
	// Option 119 is the search list; option 15 is the old single domain.
	if ds := ack.DomainSearch(); ds != nil && len(ds.Labels) > 0 {
		l.Search = slices.Clone(ds.Labels)
	} else if d := ack.DomainName(); d != "" {
		l.Search = []string{d}
	}
	if b := ack.Options.Get(dhcpv4.OptionInterfaceMTU); len(b) == 2 {
		// RFC 2132 9.1: the minimum legal MTU is 68; below that the option is ignored.
		if mtu := int(binary.BigEndian.Uint16(b)); mtu >= 68 {
			l.MTU = mtu
		}
	}
	var classless []Route
	for _, r := range ack.ClasslessStaticRoute() {
		if r == nil || r.Dest == nil {
			continue
		}
		dst, err := prefix4(r.Dest)
		if err != nil {
			return nil, fmt.Errorf("ack for %s: option 121: %w", yi, err)
		}
		var gw netip.Addr
		if g := addrs4([]net.IP{r.Router}); len(g) > 0 {
			gw = g[0]
		}
		classless = append(classless, Route{Dst: dst, Gateway: gw})
	}
	l.Routes = selectRoutes(classless, addrs4(ack.Router()))
	l.Gateway = defaultGateway(l.Routes)
	// The hostname and search domains end up in files (resolv.conf, /etc/hostname, netplan):
	// a server's newline must not become a config line.
	if !validDomain(l.Hostname) {
		l.Hostname = ""
	}
	l.Search = slices.DeleteFunc(l.Search, func(s string) bool { return !validDomain(s) })
	if ip != nil {
		if ip.Hostname != "" && validDomain(ip.Hostname) {
			l.Hostname = ip.Hostname
		}
		if len(ip.DNS) > 0 {
			l.DNS = slices.Clone(ip.DNS)
		}
	}
	return l, nil
}

// leaseTimes reads an ACK's lease time (option 51), renewal time T1 (58) and rebinding time
// T2 (59). A lease time of 0xffffffff (RFC 2132 9.2: infinite), 0 or none at all is returned
// as 0, which Lease reads as "never expires"; T1 and T2 are then 0 too. T1 and T2 default to
// 0.5 and 0.875 of the lease time (RFC 2131 4.4.5), and a server's values that break
// T1 < T2 < lease time are replaced by those defaults.
func leaseTimes(ack *dhcpv4.DHCPv4) (lease, t1, t2 time.Duration) {
	secs := func(code dhcpv4.OptionCode) (time.Duration, bool) {
		b := ack.Options.Get(code)
		if len(b) != 4 {
			return 0, false
		}
		v := binary.BigEndian.Uint32(b)
		return time.Duration(v) * time.Second, v != 0 && v != 0xffffffff
	}
	lease, ok := secs(dhcpv4.OptionIPAddressLeaseTime)
	if !ok {
		return 0, 0, 0
	}
	t2, ok = secs(dhcpv4.OptionRebindingTimeValue)
	if !ok || t2 >= lease {
		t2 = lease * 7 / 8
	}
	t1, ok = secs(dhcpv4.OptionRenewTimeValue)
	if !ok || t1 >= t2 {
		t1 = lease / 2
		if t1 >= t2 { // a server's early T2
			t1 = t2 / 2
		}
	}
	return lease, t1, t2
}

// staticLease is ip= configured without DHCP.
func staticLease(iface string, mac net.HardwareAddr, ip *cmdline.IPConfig) (*Lease, error) {
	if !ip.Addr.IsValid() {
		return nil, errors.New("ip= has no client address")
	}
	l := &Lease{
		Iface:   iface,
		MAC:     mac,
		Addr:    ip.Addr,
		Gateway: ip.Gateway,
		DNS:     slices.Clone(ip.DNS),
		Server:  ip.Server,
	}
	if validDomain(ip.Hostname) {
		l.Hostname = ip.Hostname
	}
	if ip.Gateway.IsValid() && !ip.Gateway.IsUnspecified() {
		l.Routes = []Route{{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: ip.Gateway}}
	} else {
		l.Gateway = netip.Addr{}
	}
	return l, nil
}

// selectRoutes applies RFC 3442: when the server sends classless static routes (option
// 121), the client must ignore the router option (3) — a default route, if wanted, is one
// of the 121 routes (0.0.0.0/0). Otherwise the first router is the default gateway.
//
// On-link routes come first, so that gateways they make reachable can be installed after.
func selectRoutes(classless []Route, routers []netip.Addr) []Route {
	if len(classless) > 0 {
		out := slices.Clone(classless)
		slices.SortStableFunc(out, func(a, b Route) int {
			return boolInt(a.Gateway.IsValid()) - boolInt(b.Gateway.IsValid())
		})
		return out
	}
	for _, r := range routers {
		if r.IsValid() && !r.IsUnspecified() {
			return []Route{{Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Gateway: r}}
		}
	}
	return nil
}

// defaultGateway is the gateway of the default route among rs, if any.
func defaultGateway(rs []Route) netip.Addr {
	for _, r := range rs {
		if r.Dst.Bits() == 0 {
			return r.Gateway
		}
	}
	return netip.Addr{}
}

// needsOnLink reports whether r's gateway is outside every subnet the link reaches directly
// (the address's and the on-link routes'), so the kernel must be told it is on-link anyway
// (RTNH_F_ONLINK), as servers do send 121 routes via such gateways.
func needsOnLink(addr netip.Prefix, rs []Route, r Route) bool {
	if !r.Gateway.IsValid() || addr.Masked().Contains(r.Gateway) {
		return false
	}
	for _, o := range rs {
		if !o.Gateway.IsValid() && o.Dst.Contains(r.Gateway) {
			return false
		}
	}
	return true
}

// validDomain reports whether s is a DNS name (RFC 1123 host name syntax), dots allowed.
func validDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// addrs4 keeps the valid, specified IPv4 addresses of ips.
func addrs4(ips []net.IP) []netip.Addr {
	var out []netip.Addr
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		if a = a.Unmap(); a.Is4() && !a.IsUnspecified() {
			out = append(out, a)
		}
	}
	return out
}

func prefix4(n *net.IPNet) (netip.Prefix, error) {
	a, ok := netip.AddrFromSlice(n.IP)
	ones, size := n.Mask.Size()
	if !ok || !a.Unmap().Is4() || size != 32 {
		return netip.Prefix{}, fmt.Errorf("bad destination %s", n)
	}
	return netip.PrefixFrom(a.Unmap(), ones).Masked(), nil
}
