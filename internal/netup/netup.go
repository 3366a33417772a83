// Package netup brings up the boot NIC in ramboot's /init and describes the result.
//
// /init runs as PID 1 in an initramfs with no udev: kernel modules are loaded, links exist
// under their kernel names (eth0, eth1, …) and are down. Up picks one NIC — by BOOTIF= MAC,
// else by the ip= device, else by racing DHCPv4 on every Ethernet link with carrier — and
// configures only that one: IPv4 address, routes, MTU, /etc/resolv.conf and the hostname.
// Every wait is bounded (Config's timeouts); Up never waits forever.
//
// WriteImageConfig then writes the same configuration into the root filesystem that
// ramroot is about to switch_root into, for ifupdown, systemd-networkd and netplan.
//
// Deciding is pure and tested on any host (plan, leaseFromACK, selectRoutes, the renderers);
// doing is the netlink and raw-socket code in up_linux.go and dhcp_linux.go.
package netup

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/cmdline"
)

// Defaults, chosen for a bare-metal boot: NICs need a few seconds to negotiate, and switch
// ports without portfast drop traffic for a while after the link comes up, which the DHCP
// attempts (3 × 10 s, each retransmitting) cover.
const (
	DefaultLinkTimeout  = 10 * time.Second
	DefaultDHCPTimeout  = 10 * time.Second
	DefaultDHCPAttempts = 3
	DefaultResolvConf   = "/etc/resolv.conf"
)

// Errors Up wraps, for callers that branch (the menu's status line, the recovery loop).
var (
	// ErrNoLink: the NIC named by BOOTIF= or ip= never appeared, or there is no Ethernet link.
	ErrNoLink = errors.New("no network interface")
	// ErrNoCarrier: no candidate link got carrier within LinkTimeout.
	ErrNoCarrier = errors.New("no carrier")
	// ErrNoLease: DHCP failed on every link tried.
	ErrNoLease = errors.New("no DHCP lease")
)

// Config says which NIC to bring up and how long to wait for it.
type Config struct {
	// BootIF is the MAC address from BOOTIF= (pxelinux); it picks the NIC and wins over
	// IP.Device.
	BootIF net.HardwareAddr
	// IP is ip= from the kernel command line; nil means DHCP on whichever NIC answers first.
	IP *cmdline.IPConfig
	// Net is the whole network part of the command line (dracut's ip=, vlan=, bond=,
	// ifname=, rd.route=, nameserver=, rd.net.timeout.*), or a menu entry's network: block.
	// IP, when set, is the one of Net.IPs that Up acts on. Nil: none given.
	Net *cmdline.Network
	// LinkTimeout bounds the wait for the chosen NIC to appear and get carrier (default 10 s).
	LinkTimeout time.Duration
	// DHCPTimeout bounds one DHCP attempt, DISCOVER to ACK, retransmissions included
	// (default 10 s); DHCPAttempts attempts are made (default 3).
	DHCPTimeout  time.Duration
	DHCPAttempts int
	// ResolvConf is where DNS servers are written (default /etc/resolv.conf).
	ResolvConf string
	// LACPTimeout bounds the wait for an 802.3ad bond's partner (default 30 s).
	LACPTimeout time.Duration
	// LoadModule loads a kernel module by name (bonding, 8021q) before Up creates such a
	// link; nil when the kernel has them built in or /init cannot load modules.
	LoadModule func(name string) error
	// Logf receives progress messages; nil discards them.
	Logf func(string, ...any)
}

func (c Config) withDefaults() Config {
	if c.LinkTimeout <= 0 {
		c.LinkTimeout = DefaultLinkTimeout
	}
	if c.DHCPTimeout <= 0 {
		c.DHCPTimeout = DefaultDHCPTimeout
	}
	if c.DHCPAttempts <= 0 {
		c.DHCPAttempts = DefaultDHCPAttempts
	}
	if c.ResolvConf == "" {
		c.ResolvConf = DefaultResolvConf
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

// Lease is what Up configured. The menu shows it, kexec passes BOOTIF= from MAC, and
// WriteImageConfig turns it into the booted system's network configuration.
type Lease struct {
	Iface    string // kernel name in the initramfs, e.g. eth0
	MAC      net.HardwareAddr
	Addr     netip.Prefix
	Gateway  netip.Addr // the default route's gateway; invalid if there is none
	DNS      []netip.Addr
	Search   []string
	Hostname string
	Server   netip.Addr // the DHCP server, or ip='s server
	BootFile string     // option 67, else the BOOTP file field
	// TFTPServer is option 66, else the BOOTP next-server (siaddr).
	TFTPServer string
	// Options holds the ACK's raw options by code (pxelinux 209/210 are read from here).
	Options map[uint8][]byte
	// DHCP is true when the address came from DHCP, false for a static ip=.
	DHCP bool
	// Routes are the routes installed besides the connected subnet.
	Routes []Route
	// MTU is the MTU set from option 26; 0 if the link's was left alone.
	MTU int
	// Obtained is when the DHCPv4 ACK arrived; LeaseTime (option 51), T1 (58) and T2 (59)
	// count from it. A LeaseTime of 0 is an infinite lease (no option 51, or 0xffffffff),
	// and Obtained is zero for a static address: neither expires.
	Obtained  time.Time
	LeaseTime time.Duration
	T1, T2    time.Duration
	// Bonds are the bonds Up created (bond=), with their members and LACP state; VLANs the
	// VLAN interfaces (vlan=). Iface is the one of them that was addressed, if any.
	Bonds []BondState
	VLANs []cmdline.VLAN
	// Race says, when Up raced several NICs, which won and why each other one lost, one line
	// per NIC, for the console and the boot report.
	Race []string
	// V6 is the IPv6 configuration (router advertisements, SLAAC, DHCPv6 or a static [v6]
	// ip=); nil when IPv6 was not configured. Addr is invalid when there is no IPv4 address.
	V6 *Lease6
}

// String is the one-line summary for logs and the menu's status line.
func (l *Lease) String() string {
	var b strings.Builder
	how := "static"
	if l.DHCP {
		how = "dhcp"
	}
	fmt.Fprintf(&b, "%s (%s)", l.Iface, l.MAC)
	if l.Addr.IsValid() {
		fmt.Fprintf(&b, " %s %s", l.Addr, how)
	}
	if l.Gateway.IsValid() {
		fmt.Fprintf(&b, " gw %s", l.Gateway)
	}
	if l.V6 != nil {
		for _, a := range l.V6.Addrs {
			fmt.Fprintf(&b, " %s", a)
		}
		if len(l.V6.Addrs) == 0 {
			b.WriteString(" ipv6 link-local")
		}
		if l.V6.Gateway.IsValid() {
			fmt.Fprintf(&b, " gw %s", l.V6.Gateway)
		}
	}
	if len(l.DNS) > 0 {
		fmt.Fprintf(&b, " dns %s", joinAddrs(l.DNS, ","))
	}
	if l.Hostname != "" {
		fmt.Fprintf(&b, " host %s", l.Hostname)
	}
	return b.String()
}

// BootIF is the pxelinux form of the MAC, 01-aa-bb-cc-dd-ee-ff, for kexec's command line.
func (l *Lease) BootIF() string {
	return "01-" + strings.ReplaceAll(l.MAC.String(), ":", "-")
}

// Route is one IPv4 route. An invalid Gateway means on-link (RFC 3442's router 0.0.0.0).
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr
}

func (r Route) String() string {
	if !r.Gateway.IsValid() {
		return r.Dst.String() + " on-link"
	}
	return r.Dst.String() + " via " + r.Gateway.String()
}

// plan is what Up decided to do, from Config alone.
type plan struct {
	static bool             // configure ip= without DHCP
	mac    net.HardwareAddr // pick the link with this MAC
	device string           // else the link with this name
	// neither: race (DHCP) or the first link with carrier (static)
}

func (p plan) String() string {
	how := "dhcp"
	if p.static {
		how = "static"
	}
	switch {
	case p.mac != nil:
		return fmt.Sprintf("%s on the NIC with MAC %s", how, p.mac)
	case p.device != "":
		return fmt.Sprintf("%s on %s", how, p.device)
	case p.static:
		return "static on the first NIC with carrier"
	}
	return "dhcp on every NIC with carrier, first lease wins"
}

// makePlan decides which NIC and which method. BOOTIF= wins over ip='s device: it is what
// the PXE firmware booted from, and kexec keeps passing it on.
func makePlan(c Config) plan {
	var p plan
	if c.IP != nil {
		// A static address (either family) goes on one link; any autoconfiguration races.
		p.static = c.IP.Addr.IsValid()
		p.device = c.IP.Device
	}
	if c.BootIF != nil {
		p.mac, p.device = c.BootIF, ""
	}
	return p
}

func joinAddrs(as []netip.Addr, sep string) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, sep)
}

// Describe is the lease as lines for a person: interface, MAC, address and how it was got,
// gateway, routes, DNS, search domains, server, hostname, boot file (those present).
func (l *Lease) Describe() []string {
	how := "static (ip=)"
	if l.DHCP {
		how = "DHCP"
	}
	d := []string{
		"interface  " + l.Iface,
		"MAC        " + l.MAC.String(),
	}
	if l.Addr.IsValid() {
		d = append(d, "address    "+l.Addr.String()+" by "+how)
	}
	if l.Gateway.IsValid() {
		d = append(d, "gateway    "+l.Gateway.String())
	}
	if v6 := l.V6; v6 != nil {
		for _, a := range v6.Addrs {
			d = append(d, "address    "+a.Prefix.String()+" by "+map[string]string{"slaac": "SLAAC", "dhcpv6": "DHCPv6", "static": "static (ip=)"}[a.From])
		}
		if len(v6.Addrs) == 0 {
			d = append(d, "address    IPv6 link-local only")
		}
		if v6.Gateway.IsValid() {
			d = append(d, "gateway    "+v6.Gateway.String())
		}
		if v6.MTU > 0 {
			d = append(d, "IPv6 MTU   "+fmt.Sprint(v6.MTU))
		}
	}
	for _, r := range l.Routes {
		d = append(d, "route      "+r.String())
	}
	dns, search := l.DNS, l.Search
	if l.V6 != nil {
		dns, search = mergeAddrs(dns, l.V6.DNS), mergeStrings(search, l.V6.Search)
	}
	for _, s := range dns {
		d = append(d, "DNS        "+s.String())
	}
	if len(search) > 0 {
		d = append(d, "search     "+strings.Join(search, " "))
	}
	if l.Server.IsValid() {
		d = append(d, "server     "+l.Server.String())
	}
	if l.V6 != nil && l.V6.Server.IsValid() {
		d = append(d, "server     "+l.V6.Server.String()+" (DHCPv6)")
	}
	if l.Hostname != "" {
		d = append(d, "hostname   "+l.Hostname)
	}
	if l.BootFile != "" {
		d = append(d, "boot file  "+l.BootFile)
	}
	if l.V6 != nil && l.V6.BootFileURL != "" {
		d = append(d, "boot URL   "+l.V6.BootFileURL+" (DHCPv6)")
	}
	return d
}

// got says what the lease holds, for the race's lines: "lease 10.0.0.5/24 from 10.0.0.1",
// "IPv6 2001:db8::5/64 slaac", or both.
func (l *Lease) got() string {
	var parts []string
	if l.Addr.IsValid() {
		if l.DHCP {
			parts = append(parts, fmt.Sprintf("lease %s from %s", l.Addr, l.Server))
		} else {
			parts = append(parts, "static "+l.Addr.String())
		}
	}
	if l.V6 != nil {
		parts = append(parts, "IPv6 "+l.V6.addrList())
	}
	return strings.Join(parts, ", ")
}

// Addresses is the lease's addresses and gateways on one line, for the console:
// "10.0.0.5/24 via 10.0.0.1", "fd00::5/64 via fe80::1", or both separated by a comma.
func (l *Lease) Addresses() string {
	var parts []string
	if l.Addr.IsValid() {
		p := l.Addr.String()
		if l.Gateway.IsValid() {
			p += " via " + l.Gateway.String()
		}
		parts = append(parts, p)
	}
	if l.V6 != nil {
		for _, a := range l.V6.Addrs {
			parts = append(parts, a.Prefix.String())
		}
		if l.V6.Gateway.IsValid() && len(parts) > 0 {
			parts[len(parts)-1] += " via " + l.V6.Gateway.String()
		}
	}
	return strings.Join(parts, ", ")
}

// FirstAddr is the lease's IPv4 address, else its first IPv6 one; invalid if it has none.
func (l *Lease) FirstAddr() netip.Addr {
	if l.Addr.IsValid() {
		return l.Addr.Addr()
	}
	if l.V6 != nil && len(l.V6.Addrs) > 0 {
		return l.V6.Addrs[0].Prefix.Addr()
	}
	return netip.Addr{}
}

// Prefix is the lease's IPv4 address with its prefix length, else its first IPv6 one; "" if
// it has none.
func (l *Lease) Prefix() string {
	switch {
	case l.Addr.IsValid():
		return l.Addr.String()
	case l.V6 != nil && len(l.V6.Addrs) > 0:
		return l.V6.Addrs[0].Prefix.String()
	}
	return ""
}
