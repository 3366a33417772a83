package netup

import (
	"net/netip"
	"time"
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
