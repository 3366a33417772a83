package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/ramboot/ramboot/internal/atomicfile"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// infoTimeout bounds the stateless DHCPv6 exchange an advertisement's O flag asks for: it
// adds options (DNS, the boot file URL) to an address the link already has.
const infoTimeout = 5 * time.Second

// acquire gets the link's addresses as c.IP says (familiesOf: no ip= is DHCPv4 and auto6 at
// once), without installing any: the many-NIC race calls it on several links and configures
// only the winner. It does enable IPv6 on the link when IPv6 is asked for (enableIPv6: the
// kernel's own autoconfiguration off, the link-local address and its DAD).
//
// With both families, they run at once by dualStack's rule: a family that has heard no server
// is abandoned DefaultQuietGrace after the start once the other has its address; one that
// has heard is waited for within its own timeouts. DHCPv4 is bounded by DHCPAttempts ×
// DHCPTimeout, IPv6 by rd.net.timeout.ipv6auto, else the same. The Lease has an invalid Addr
// when only IPv6 succeeded, and a nil V6 when only IPv4 did. When no family succeeds, the
// error wraps ErrNoLease.
func acquire(ctx context.Context, c Config, link netlink.Link) (*Lease, error) {
	c = c.withDefaults()
	name, mac := link.Attrs().Name, link.Attrs().HardwareAddr
	f := familiesOf(c)
	c.Logf("netup: %s: %s", name, f)
	var v4 func(context.Context) (*Lease, error)
	switch {
	case f.static4:
		v4 = func(context.Context) (*Lease, error) { return staticLease(name, mac, f.ip4) }
	case f.dhcp4:
		v4 = func(ctx context.Context) (*Lease, error) { return dhcpLease(ctx, c, name, mac) }
	}
	var v6 func(context.Context) (*Lease6, error)
	if f.v6 != v6None {
		if err := enableIPv6(name); err != nil {
			if v4 == nil {
				return nil, err
			}
			c.Logf("netup: %s: %v; IPv4 only", name, err)
		} else {
			v6 = func(ctx context.Context) (*Lease6, error) { return acquire6(ctx, c, link, f) }
		}
	}
	var (
		l4         *Lease
		l6         *Lease6
		err4, err6 error
	)
	switch {
	case v4 != nil && v6 != nil:
		l4, l6, err4, err6 = dualStack(ctx, DefaultQuietGrace, func(format string, a ...any) {
			c.Logf("netup: %s: "+format, append([]any{name}, a...)...)
		}, v4, v6)
	case v4 != nil:
		l4, err4 = v4(ctx)
	case v6 != nil:
		l6, err6 = v6(ctx)
	default:
		return nil, fmt.Errorf("%w on %s: ip=%s configures no address", ErrNoLease, name, c.IP)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l4 == nil && l6 == nil {
		return nil, fmt.Errorf("%w on %s: %w", ErrNoLease, name, errors.Join(err4, err6))
	}
	if err6 != nil && !errors.Is(err6, errAbandoned) && l4 != nil {
		c.Logf("netup: %s: IPv6: %v", name, err6)
	}
	if err4 != nil && !errors.Is(err4, errAbandoned) && l6 != nil {
		c.Logf("netup: %s: IPv4: %v", name, err4)
	}
	l := l4
	if l == nil {
		l = &Lease{Iface: name, MAC: mac}
		if f.ip6 != nil && validDomain(f.ip6.Hostname) {
			l.Hostname = f.ip6.Hostname
		}
	}
	l.V6 = l6
	if l6 != nil {
		c.Logf("netup: %s: IPv6 %s", name, l6.addrList())
	}
	return l, nil
}

// prepare6 enables IPv6 on a link (enableIPv6) if c asks for IPv6 on it, for Up to call before
// it sets the link up: the kernel then never solicits or autoconfigures on its own, even when
// carrier, LACP or the race keep acquire waiting longer than the link-local address's DAD
// (after which the kernel would send its own solicitation). acquire does the same, later.
func prepare6(c Config, name string) {
	if familiesOf(c).v6 == v6None {
		return
	}
	if err := enableIPv6(name); err != nil && c.Logf != nil {
		c.Logf("netup: %s: %v", name, err)
	}
}

// v6Timeout bounds IPv6 autoconfiguration: rd.net.timeout.ipv6auto, else as long as DHCPv4's
// attempts.
func v6Timeout(c Config) time.Duration {
	if c.Net != nil && c.Net.Timeouts.IPv6Auto > 0 {
		return c.Net.Timeouts.IPv6Auto
	}
	return time.Duration(c.DHCPAttempts) * c.DHCPTimeout
}

// errNoRA is auto6's failure when no router advertised.
var errNoRA = errors.New("no router advertisement")

// acquire6 gets the IPv6 configuration by f.v6:
//
//   - static: the ip= address and gateway, at once.
//   - link6: the link-local address only.
//   - auto6: router solicitations until an advertisement; a SLAAC address in each of its
//     /64 prefixes with the A flag; DHCPv6 for addresses too if it says M, or a stateless
//     information request if it says only O.
//   - dhcp6: DHCPv6 for the address, and router solicitations at the same time for the
//     default router; once DHCPv6 has an address, an advertisement is waited for until
//     DefaultQuietGrace after the start (without one, the address is on-link only).
//   - either6: auto6; if no advertisement came within DefaultQuietGrace, or it leads to no
//     address, dhcp6.
//
// The whole is bounded by v6Timeout.
func acquire6(ctx context.Context, c Config, link netlink.Link, f families) (*Lease6, error) {
	if f.v6 == v6Static {
		return static6(f.ip6), nil
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, v6Timeout(c))
	defer cancel()
	name, mac := link.Attrs().Name, link.Attrs().HardwareAddr
	ll, optimistic, err := linkLocal(ctx, link, dadTimeout(c))
	if err != nil {
		return nil, err
	}
	if f.v6 == v6Link {
		return &Lease6{}, nil
	}
	ifi, err := net.InterfaceByIndex(link.Attrs().Index)
	if err != nil {
		return nil, err
	}
	rsCtx, stopRS := context.WithCancel(ctx)
	defer stopRS()
	ads := make(chan advert)
	rsErr := make(chan error, 1)
	go func() { rsErr <- solicit(rsCtx, ifi, ll, optimistic, c.Logf, ads) }()
	fromAd := func(a *advert) (*Lease6, []netip.Prefix) {
		l, onLink := lease6FromRA(a.ra, a.router, mac, a.at)
		c.Logf("netup: %s: router advertisement from %s: lifetime %v, M=%t O=%t, SLAAC %s",
			name, a.router, a.ra.RouterLifetime, l.Managed, l.Other, l.addrList())
		return l, onLink
	}

	mode := f.v6
	if mode == v6Auto || mode == v6Either {
		var wait <-chan time.Time
		if mode == v6Either {
			wait = time.After(time.Until(start.Add(DefaultQuietGrace)))
		}
		var ad *advert
		select {
		case a := <-ads:
			ad = &a
		case err := <-rsErr:
			return nil, err
		case <-wait:
			c.Logf("netup: %s: %v within %v: DHCPv6 (either6)", name, errNoRA, DefaultQuietGrace)
			mode = v6DHCP
		case <-ctx.Done():
			return nil, fmt.Errorf("%w within %v", errNoRA, v6Timeout(c))
		}
		if ad != nil {
			stopRS()
			l, onLink := fromAd(ad)
			switch {
			case l.Managed:
				d, err := dhcp6(ctx, name, mac, ll, false, c.Logf)
				if err != nil {
					if len(l.Addrs) == 0 {
						return nil, err
					}
					c.Logf("netup: %s: %v; SLAAC only", name, err)
					return l, nil
				}
				onLinkLength(d.Addrs, onLink)
				return merge6(l, d), nil
			case len(l.Addrs) == 0 && mode == v6Either:
				c.Logf("netup: %s: the router offers no SLAAC prefix: DHCPv6 (either6)", name)
				mode = v6DHCP
			case len(l.Addrs) == 0:
				return nil, fmt.Errorf("the router %s offers no SLAAC prefix and no DHCPv6 (M flag)", ad.router)
			case l.Other:
				ictx, cancel := context.WithTimeout(ctx, infoTimeout)
				d, err := dhcp6(ictx, name, mac, ll, true, c.Logf)
				cancel()
				if err != nil {
					c.Logf("netup: %s: %v; no DHCPv6 options", name, err)
					return l, nil
				}
				return merge6(l, d), nil
			default:
				return l, nil
			}
			if mode == v6DHCP { // either6 after an advertisement without addresses
				d, err := dhcp6(ctx, name, mac, ll, false, c.Logf)
				if err != nil {
					return nil, err
				}
				onLinkLength(d.Addrs, onLink)
				l.Addrs = nil
				return merge6(l, d), nil
			}
		}
	}

	// dhcp6: DHCPv6 and router solicitations at once.
	type res struct {
		l   *Lease6
		err error
	}
	dres := make(chan res, 1)
	go func() {
		l, err := dhcp6(ctx, name, mac, ll, false, c.Logf)
		dres <- res{l, err}
	}()
	var (
		ad *advert
		d  *res
	)
	for d == nil || ad == nil {
		var wait <-chan time.Time
		if d != nil {
			wait = time.After(time.Until(start.Add(DefaultQuietGrace)))
		}
		select {
		case a := <-ads:
			ad = &a
			stopRS()
		case r := <-dres:
			if r.err != nil {
				return nil, r.err
			}
			d = &r
		case err := <-rsErr:
			if !errors.Is(err, context.Canceled) {
				c.Logf("netup: %s: router solicitation: %v", name, err)
			}
			rsErr = nil
		case <-wait:
			c.Logf("netup: %s: %v within %v: DHCPv6 addresses on-link only, no default route", name, errNoRA, DefaultQuietGrace)
			return d.l, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("DHCPv6: %w", ctx.Err())
		}
	}
	l, onLink := fromAd(ad)
	onLinkLength(d.l.Addrs, onLink)
	l.Addrs = nil // dhcp6 asks for DHCPv6's addresses, not SLAAC's
	return merge6(l, d.l), nil
}

// configure6 applies l.V6 to link: the addresses with their lifetimes, replacing the link's
// other global IPv6 addresses (the kernel's own SLAAC, should it have run before acquire
// turned it off, or an earlier Up's); then it waits, within rd.net.timeout.ipv6dad or
// DefaultDADTimeout, for their duplicate address detection, and fails if one is in use by
// another host. Then the default route via the router, the IPv6 MTU, and c.ResolvConf with
// the IPv4 lease's DNS servers and search domains first and IPv6's after.
//
// The route is installed without an expiry (the netlink library has no field for it): the
// router's lifetime is in Lease6.GatewayLifetime for whoever keeps the lease.
func configure6(c Config, link netlink.Link, l *Lease) error {
	c = c.withDefaults()
	v6 := l.V6
	if v6 == nil {
		return nil
	}
	name := link.Attrs().Name
	if err := enableIPv6(name); err != nil {
		return err
	}
	if v6.MTU > 0 && v6.MTU <= link.Attrs().MTU {
		if err := sysctl6(name, "mtu", strconv.Itoa(v6.MTU)); err != nil {
			return fmt.Errorf("setting the IPv6 MTU %d: %w", v6.MTU, err)
		}
	}
	old, err := addrList(link, netlink.FAMILY_V6)
	if err != nil {
		return fmt.Errorf("listing addresses: %w", err)
	}
	want := func(ip net.IP) bool {
		a, _ := netip.AddrFromSlice(ip)
		return slices.ContainsFunc(v6.Addrs, func(x Addr6) bool { return x.Prefix.Addr() == a })
	}
	for _, a := range old {
		if a.Scope == unix.RT_SCOPE_UNIVERSE && !want(a.IP) {
			if err := netlink.AddrDel(link, &a); err != nil {
				return fmt.Errorf("removing %s: %w", a.IPNet, err)
			}
		}
	}
	now := time.Now()
	for _, a := range v6.Addrs {
		na := &netlink.Addr{IPNet: &net.IPNet{IP: a.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), 128)}}
		if a.Valid > 0 {
			valid := a.Obtained.Add(a.Valid).Sub(now)
			if valid < time.Second {
				return fmt.Errorf("%s expired before it was installed", a)
			}
			pref := max(a.Obtained.Add(a.Preferred).Sub(now), 0)
			na.ValidLft, na.PreferedLft = int(valid/time.Second), int(pref/time.Second)
		}
		if err := netlink.AddrReplace(link, na); err != nil {
			return fmt.Errorf("adding %s: %w", a.Prefix, err)
		}
	}
	if err := waitDAD(link, v6.Addrs, dadTimeout(c)); err != nil {
		return err
	}
	if v6.Gateway.IsValid() {
		proto := netlink.RouteProtocol(unix.RTPROT_RA)
		if v6.GatewayLifetime == 0 {
			proto = unix.RTPROT_BOOT
		}
		r := &netlink.Route{
			LinkIndex: link.Attrs().Index,
			Dst:       &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)},
			Gw:        v6.Gateway.AsSlice(),
			Protocol:  proto,
			Family:    netlink.FAMILY_V6,
		}
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("adding the default route via %s: %w", v6.Gateway, err)
		}
	}
	dns := mergeAddrs(l.DNS, v6.DNS)
	search := mergeStrings(l.Search, v6.Search)
	if len(dns) > 0 || len(search) > 0 {
		if err := atomicfile.WriteFile(c.ResolvConf, []byte(renderResolvConf(dns, search)), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", c.ResolvConf, err)
		}
	}
	return nil
}

// waitDAD waits until none of addrs is tentative on link, or timeout (then the addresses are
// left as they are, with a log line from the caller's error); an address whose DAD failed
// is an error.
func waitDAD(link netlink.Link, addrs []Addr6, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		as, err := addrList(link, netlink.FAMILY_V6)
		if err != nil {
			return fmt.Errorf("listing addresses: %w", err)
		}
		tentative := 0
		for _, a := range as {
			ip, _ := netip.AddrFromSlice(a.IP)
			if !slices.ContainsFunc(addrs, func(x Addr6) bool { return x.Prefix.Addr() == ip }) {
				continue
			}
			if a.Flags&unix.IFA_F_DADFAILED != 0 {
				return fmt.Errorf("%s is in use by another host (duplicate address detection)", ip)
			}
			if a.Flags&unix.IFA_F_TENTATIVE != 0 {
				tentative++
			}
		}
		if tentative == 0 {
			return nil
		}
		if err := sleepUntil(context.Background(), deadline); err != nil {
			return fmt.Errorf("duplicate address detection not done within %v", timeout)
		}
	}
}
