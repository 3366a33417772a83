package netup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/atomicfile"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// pollInterval is how often links are listed while waiting for one to appear or get carrier.
// Polling (rather than an RTNLGRP_LINK subscription) keeps every wait a plain bounded loop.
var pollInterval = 100 * time.Millisecond

// Up brings up the boot NIC and configures it (see the package doc): it sets the chosen link
// up, runs DHCP on it (or applies a static ip=), then replaces the link's IPv4 addresses with
// the lease's, installs its routes — replacing any existing default route —, sets the MTU,
// rewrites c.ResolvConf and sets the hostname. When racing DHCP it sets every candidate link
// up and the losers down again; links it did not touch stay as they were.
//
// Up returns within LinkTimeout plus DHCPAttempts × DHCPTimeout (and a little), or when ctx
// is done. Errors wrap ErrNoLink, ErrNoCarrier or ErrNoLease where those apply.
func Up(ctx context.Context, c Config) (*Lease, error) {
	c = c.withDefaults()
	t, err := makeTopology(c)
	if err != nil {
		return nil, fmt.Errorf("bringing up the network: %w", err)
	}
	p := makePlan(c)
	if t.target != "" {
		// A bond or VLAN is what gets the address; BOOTIF= named its member (the bond has
		// its MAC).
		p.mac, p.device = nil, t.target
	}
	if len(t.renames)+len(t.bonds)+len(t.vlans) > 0 {
		c.Logf("netup: %s", t)
	}
	c.Logf("netup: %s", p)
	if lo, err := netlink.LinkByName("lo"); err == nil {
		if err := netlink.LinkSetUp(lo); err != nil {
			c.Logf("netup: setting lo up: %v", err)
		}
	}
	bonds, err := applyTopology(ctx, c, t)
	if err != nil {
		return nil, fmt.Errorf("bringing up the network: %w", err)
	}
	var (
		l    *Lease
		link netlink.Link
	)
	switch {
	case p.mac != nil || p.device != "":
		l, link, err = upChosen(ctx, c, p)
	case p.static:
		l, link, err = upFirstCarrier(ctx, c)
	default:
		l, link, err = race(ctx, c)
	}
	if err != nil {
		return nil, fmt.Errorf("bringing up the network: %w", err)
	}
	l.Bonds, l.VLANs = bonds, t.vlans
	if err := configure(c, link, l); err != nil {
		return nil, fmt.Errorf("configuring %s: %w", l.Iface, err)
	}
	c.Logf("netup: %s", l)
	return l, nil
}

// candidate reports whether DHCP racing should try link: an Ethernet NIC (or a veth, which
// is what tests and containers have), not loopback, bridges, bonds, tunnels or VLANs.
func candidate(link netlink.Link) bool {
	a := link.Attrs()
	if a.Flags&net.FlagLoopback != 0 || len(a.HardwareAddr) != 6 || a.EncapType != "ether" {
		return false
	}
	switch link.Type() {
	case "device", "veth":
		return true
	}
	return false
}

// carrier reports whether the link is up with carrier (IFF_LOWER_UP).
func carrier(link netlink.Link) bool {
	a := link.Attrs()
	return a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_LOWER_UP != 0
}

// waitLink waits until a link matching match exists, or the deadline.
func waitLink(ctx context.Context, deadline time.Time, match func(netlink.Link) bool) (netlink.Link, error) {
	for {
		links, err := linkList()
		if err != nil {
			return nil, fmt.Errorf("listing links: %w", err)
		}
		for _, l := range links {
			if match(l) {
				return l, nil
			}
		}
		if err := sleepUntil(ctx, deadline); err != nil {
			return nil, err
		}
	}
}

// waitCarrier sets link up and waits for carrier until the deadline; it returns the link's
// latest state.
func waitCarrier(ctx context.Context, c Config, link netlink.Link, deadline time.Time) (netlink.Link, error) {
	prepare6(c, link.Attrs().Name)
	if err := netlink.LinkSetUp(link); err != nil {
		return link, fmt.Errorf("setting %s up: %w", link.Attrs().Name, err)
	}
	for {
		l, err := netlink.LinkByIndex(link.Attrs().Index)
		if err != nil {
			return link, fmt.Errorf("reading %s: %w", link.Attrs().Name, err)
		}
		if carrier(l) {
			return l, nil
		}
		if err := sleepUntil(ctx, deadline); err != nil {
			if errors.Is(err, errDeadline) {
				err = fmt.Errorf("%w on %s", ErrNoCarrier, link.Attrs().Name)
			}
			return l, err
		}
	}
}

var errDeadline = errors.New("deadline reached")

// sleepUntil sleeps one poll interval, or returns errDeadline if the deadline has passed,
// or ctx's error.
func sleepUntil(ctx context.Context, deadline time.Time) error {
	d := time.Until(deadline)
	if d <= 0 {
		return errDeadline
	}
	t := time.NewTimer(min(d, pollInterval))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// upChosen brings up the link named by BOOTIF= or ip='s device. Without carrier it carries
// on anyway — the operator named this NIC, and some drivers report carrier late or never —
// and lets DHCP's own timeouts decide.
func upChosen(ctx context.Context, c Config, p plan) (*Lease, netlink.Link, error) {
	deadline := time.Now().Add(c.LinkTimeout)
	what := p.device
	match := func(l netlink.Link) bool { return l.Attrs().Name == p.device }
	if p.mac != nil {
		what = "MAC " + p.mac.String()
		match = func(l netlink.Link) bool { return bytes.Equal(l.Attrs().HardwareAddr, p.mac) }
	}
	link, err := waitLink(ctx, deadline, match)
	if errors.Is(err, errDeadline) {
		return nil, nil, fmt.Errorf("%w: %s did not appear within %v", ErrNoLink, what, c.LinkTimeout)
	}
	if err != nil {
		return nil, nil, err
	}
	name := link.Attrs().Name
	if err := linkSettings(c, link); err != nil {
		return nil, nil, err
	}
	link, err = waitCarrier(ctx, c, link, deadline)
	if errors.Is(err, ErrNoCarrier) {
		c.Logf("netup: %s: no carrier after %v, trying anyway", name, c.LinkTimeout)
	} else if err != nil {
		return nil, nil, err
	}
	l, err := acquire(ctx, c, link)
	return l, link, err
}

// upFirstCarrier is a static ip= without a device: the first Ethernet link to get carrier.
// Other links are set down again if Up set them up.
func upFirstCarrier(ctx context.Context, c Config) (*Lease, netlink.Link, error) {
	deadline := time.Now().Add(c.LinkTimeout)
	up := map[int]netlink.Link{} // links set up here, by index
	defer func() {
		for _, l := range up {
			netlink.LinkSetDown(l)
		}
	}()
	for {
		links, err := linkList()
		if err != nil {
			return nil, nil, fmt.Errorf("listing links: %w", err)
		}
		sort.Slice(links, func(i, j int) bool { return links[i].Attrs().Index < links[j].Attrs().Index })
		seen := false
		for _, link := range links {
			if !candidate(link) {
				continue
			}
			seen = true
			if carrier(link) {
				delete(up, link.Attrs().Index)
				l, err := acquire(ctx, c, link)
				return l, link, err
			}
			if link.Attrs().Flags&net.FlagUp == 0 {
				prepare6(c, link.Attrs().Name)
				if err := netlink.LinkSetUp(link); err != nil {
					c.Logf("netup: setting %s up: %v", link.Attrs().Name, err)
					continue
				}
				up[link.Attrs().Index] = link
			}
		}
		if err := sleepUntil(ctx, deadline); errors.Is(err, errDeadline) {
			if !seen {
				return nil, nil, fmt.Errorf("%w: no Ethernet link within %v", ErrNoLink, c.LinkTimeout)
			}
			return nil, nil, fmt.Errorf("%w on any link within %v", ErrNoCarrier, c.LinkTimeout)
		} else if err != nil {
			return nil, nil, err
		}
	}
}

// race runs DHCP on every candidate link, each as soon as it has carrier, and takes the first
// lease. Links that appear until LinkTimeout join the race. The losers' DHCP is cancelled, and
// the links Up set up are set down again; nothing is configured on them (DHCP runs on raw
// sockets, so a lease is only an answer until configure applies it).
func race(ctx context.Context, c Config) (*Lease, netlink.Link, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	deadline := time.Now().Add(c.LinkTimeout)

	type racer struct {
		link    netlink.Link
		wasUp   bool
		carrier bool   // set by its goroutine before DHCP starts (read after it returned)
		outcome string // why it won or lost, for Lease.Race
	}
	type result struct {
		index   int
		lease   *Lease
		link    netlink.Link
		err     error
		carrier bool
		took    time.Duration
	}
	racers := map[int]*racer{}
	results := make(chan result)
	running := 0
	scanning := true
	done := ctx.Done()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()

	var (
		win     *result
		errs    []error
		scanErr error
	)
	for {
		if scanning && win == nil {
			if !time.Now().Before(deadline) {
				scanning = false
			} else if links, err := linkList(); err != nil {
				scanErr = fmt.Errorf("listing links: %w", err)
				scanning = false
			} else {
				for _, link := range links {
					a := link.Attrs()
					if !candidate(link) || racers[a.Index] != nil {
						continue
					}
					racers[a.Index] = &racer{link: link, wasUp: a.Flags&net.FlagUp != 0}
					running++
					c.Logf("netup: %s (%s): joining the DHCP race", a.Name, a.HardwareAddr)
					go func() {
						start := time.Now()
						r := result{index: a.Index}
						r.link, r.err = waitCarrier(ctx, c, link, deadline)
						if r.err == nil {
							r.carrier = true
							r.lease, r.err = acquire(ctx, c, r.link)
						}
						r.took = time.Since(start)
						results <- r
					}()
				}
			}
		}
		if running == 0 && (!scanning || win != nil) {
			break
		}
		select {
		case r := <-results:
			running--
			rc := racers[r.index]
			rc.carrier = r.carrier
			switch {
			case r.err == nil && win == nil:
				rc.outcome = fmt.Sprintf("won: %s after %v", r.lease.got(), r.took.Round(time.Millisecond))
			case r.err == nil:
				rc.outcome = "lost: its lease came after the winner's"
			case ctx.Err() != nil && win != nil && r.carrier:
				rc.outcome = "lost: carrier, but no lease yet when the winner had one"
			case ctx.Err() != nil && win != nil:
				rc.outcome = "lost: no carrier yet when the winner had a lease"
			case errors.Is(r.err, ErrNoCarrier):
				rc.outcome = fmt.Sprintf("lost: no carrier within %v", c.LinkTimeout)
			default:
				rc.outcome = "lost: " + r.err.Error()
			}
			switch {
			case r.err == nil && win == nil:
				win = &r
				cancel() // stop the others
			case r.err != nil && win == nil && ctx.Err() == nil:
				errs = append(errs, r.err)
			}
		case <-tick.C:
		case <-done:
			scanning, done = false, nil
		}
	}

	for i, r := range racers {
		if (win == nil || i != win.index) && !r.wasUp {
			if err := netlink.LinkSetDown(r.link); err != nil {
				c.Logf("netup: setting %s down: %v", r.link.Attrs().Name, err)
			}
		}
	}
	if win != nil {
		if len(racers) > 1 {
			idx := make([]int, 0, len(racers))
			for i := range racers {
				idx = append(idx, i)
			}
			sort.Ints(idx)
			for _, i := range idx {
				r := racers[i]
				line := fmt.Sprintf("%s (%s): %s", r.link.Attrs().Name, r.link.Attrs().HardwareAddr, r.outcome)
				win.lease.Race = append(win.lease.Race, line)
				c.Logf("netup: race: %s", line)
			}
		}
		return win.lease, win.link, nil
	}
	if err := ctx.Err(); err != nil { // the caller's: ours is only cancelled for a winner
		return nil, nil, err
	}
	if scanErr != nil {
		return nil, nil, scanErr
	}
	if len(racers) == 0 {
		return nil, nil, fmt.Errorf("%w: no Ethernet link within %v", ErrNoLink, c.LinkTimeout)
	}
	var names []string
	for _, r := range racers {
		names = append(names, r.link.Attrs().Name)
	}
	sort.Strings(names)
	noLease := false
	for _, err := range errs {
		noLease = noLease || errors.Is(err, ErrNoLease)
	}
	if !noLease {
		return nil, nil, fmt.Errorf("%w on %s within %v", ErrNoCarrier, strings.Join(names, ", "), c.LinkTimeout)
	}
	return nil, nil, fmt.Errorf("racing DHCP on %s: %w", strings.Join(names, ", "), errors.Join(errs...))
}

// configure applies l to link. Order matters: the MTU and address before the routes, and
// on-link routes before the routes whose gateways they make reachable (selectRoutes sorts).
func configure(c Config, link netlink.Link, l *Lease) error {
	proto := netlink.RouteProtocol(unix.RTPROT_BOOT)
	if l.DHCP {
		proto = unix.RTPROT_DHCP
	}
	if l.MTU > 0 && l.MTU != link.Attrs().MTU {
		if err := netlink.LinkSetMTU(link, l.MTU); err != nil {
			return fmt.Errorf("setting MTU %d: %w", l.MTU, err)
		}
	}
	if l.Addr.IsValid() {
		if err := configure4(link, l, proto); err != nil {
			return err
		}
	}
	if c.Net != nil {
		for _, a := range c.Net.Nameservers {
			if !slices.Contains(l.DNS, a) {
				l.DNS = append(l.DNS, a) // nameserver= adds to the server's (dracut)
			}
		}
	}
	if l.V6 != nil {
		// IPv6's addresses, its route, and resolv.conf with both families' servers.
		if err := configure6(c, link, l); err != nil {
			return fmt.Errorf("IPv6: %w", err)
		}
	} else if len(l.DNS) > 0 || len(l.Search) > 0 {
		if err := atomicfile.WriteFile(c.ResolvConf, []byte(renderResolvConf(l.DNS, l.Search)), 0o644); err != nil {
			return fmt.Errorf("writing %s: %w", c.ResolvConf, err)
		}
	}
	if err := extraRoutes(c, link, l); err != nil {
		return err
	}
	if l.Hostname != "" {
		// Optional: a machine without its name still boots.
		if err := unix.Sethostname([]byte(l.Hostname)); err != nil {
			c.Logf("netup: sethostname %q: %v", l.Hostname, err)
		}
	}
	return nil
}

// linkSettings applies ip='s MTU and MAC fields (ip=…:MTU:MAC) to the link they are for: the
// one ip= names, or the one chosen when ip= names none.
func linkSettings(c Config, link netlink.Link) error {
	if c.IP == nil || (c.IP.Device != "" && c.IP.Device != link.Attrs().Name) {
		return nil
	}
	if c.IP.MAC != nil && !bytes.Equal(c.IP.MAC, link.Attrs().HardwareAddr) {
		// The MAC of a link that is up can only be changed by drivers that allow it.
		if err := netlink.LinkSetDown(link); err != nil {
			return fmt.Errorf("setting %s down: %w", link.Attrs().Name, err)
		}
		if err := netlink.LinkSetHardwareAddr(link, c.IP.MAC); err != nil {
			return fmt.Errorf("ip=: setting %s's MAC to %s: %w", link.Attrs().Name, c.IP.MAC, err)
		}
		c.Logf("netup: %s: MAC set to %s (ip=)", link.Attrs().Name, c.IP.MAC)
	}
	if c.IP.MTU > 0 && c.IP.MTU != link.Attrs().MTU {
		if err := netlink.LinkSetMTU(link, c.IP.MTU); err != nil {
			return fmt.Errorf("ip=: setting %s's MTU to %d: %w", link.Attrs().Name, c.IP.MTU, err)
		}
	}
	return nil
}

// extraRoutes installs rd.route= routes for the configured interface: those naming it, and
// those naming no interface, in the families it has addresses in.
func extraRoutes(c Config, link netlink.Link, l *Lease) error {
	if c.Net == nil {
		return nil
	}
	for _, r := range c.Net.Routes {
		v4 := r.Dst.Addr().Is4()
		if r.Device != "" && r.Device != link.Attrs().Name || v4 && !l.Addr.IsValid() || !v4 && l.V6 == nil {
			continue
		}
		bits := 32
		if !v4 {
			bits = 128
		}
		nr := &netlink.Route{
			LinkIndex: link.Attrs().Index,
			Dst:       &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), bits)},
			Protocol:  unix.RTPROT_BOOT,
			Scope:     netlink.SCOPE_LINK,
		}
		if r.Gateway.IsValid() {
			nr.Gw, nr.Scope = r.Gateway.AsSlice(), netlink.SCOPE_UNIVERSE
		}
		if err := netlink.RouteReplace(nr); err != nil {
			return fmt.Errorf("adding rd.route=%s: %w", r, err)
		}
		l.Routes = append(l.Routes, Route{Dst: r.Dst, Gateway: r.Gateway})
		c.Logf("netup: %s: route %s (rd.route=)", link.Attrs().Name, l.Routes[len(l.Routes)-1])
	}
	return nil
}

// configure4 replaces the link's IPv4 addresses with the lease's and installs its routes.
func configure4(link netlink.Link, l *Lease, proto netlink.RouteProtocol) error {
	// Up owns the NIC's IPv4 configuration: an earlier Up (the recovery loop retries) may
	// have left another address.
	old, err := addrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("listing addresses: %w", err)
	}
	for _, a := range old {
		if a.Scope == unix.RT_SCOPE_UNIVERSE && a.IPNet.String() != l.Addr.String() {
			if err := netlink.AddrDel(link, &a); err != nil {
				return fmt.Errorf("removing %s: %w", a.IPNet, err)
			}
		}
	}
	addr := addr4(l) // with the lease's lifetimes (keep_linux.go)
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("adding %s: %w", l.Addr, err)
	}
	for _, r := range l.Routes {
		nr := &netlink.Route{
			LinkIndex: link.Attrs().Index,
			Dst:       &net.IPNet{IP: r.Dst.Addr().AsSlice(), Mask: net.CIDRMask(r.Dst.Bits(), 32)},
			Src:       l.Addr.Addr().AsSlice(),
			Protocol:  proto,
			Scope:     netlink.SCOPE_LINK,
		}
		if r.Gateway.IsValid() {
			nr.Gw, nr.Scope = r.Gateway.AsSlice(), netlink.SCOPE_UNIVERSE
			if needsOnLink(l.Addr, l.Routes, r) {
				nr.Flags = int(netlink.FLAG_ONLINK)
			}
		}
		if err := netlink.RouteReplace(nr); err != nil {
			return fmt.Errorf("adding route %s: %w", r, err)
		}
	}
	return nil
}
