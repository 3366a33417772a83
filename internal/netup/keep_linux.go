package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/ramboot/ramboot/internal/atomicfile"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Keeper keeps a DHCPv4 lease alive while /init waits (menu, shell, retries): it renews at T1,
// rebinds at T2, refreshes the address's lifetimes in the kernel on each ACK, and on a NAK or
// at the lease's end removes the address and starts over with DISCOVER (see keep.go for the
// decisions). One goroutine does the work; Fresh and Stop are for the code that downloads
// and hands the machine over.
type Keeper struct {
	c Config
	// sem is held while one exchange or reconfiguration runs, the goroutine's or Fresh's: they
	// never send or reconfigure at the same time.
	sem  chan struct{}
	wake chan struct{} // Fresh changed the lease: the goroutine reschedules

	mu      sync.Mutex
	lease   *Lease // the current lease: replaced on each change, never modified
	valid   bool   // lease's address is installed (false after a NAK or the lease's end)
	stopped bool
	next6   time.Time // when IPv6 is solicited again after a failed refresh (zero: times6's)

	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine has returned
}

// Keep starts keeping l, which Up configured, alive until ctx ends or Stop: its DHCPv4 lease,
// and its IPv6 addresses once v6Again is set. A static address (or nil) needs nothing:
// Fresh then returns l, and Stop does nothing. c is the Config
// Up ran with: its DHCP timeouts bound each re-acquisition, and Logf hears each step.
func Keep(ctx context.Context, c Config, l *Lease) *Keeper {
	k := &Keeper{
		c: c.withDefaults(), lease: l, valid: l != nil,
		sem: make(chan struct{}, 1), wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if refresh, _ := times6(v6of(l)); l == nil || !l.DHCP && (refresh.IsZero() || v6Again == nil) {
		k.cancel = func() {}
		close(k.done)
		return k
	}
	ctx, k.cancel = context.WithCancel(ctx)
	go k.run(ctx)
	return k
}

// Current is the lease as it stands (a renewal or re-acquisition replaces it), and whether
// its address is installed.
func (k *Keeper) Current() (*Lease, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lease, k.valid
}

func (k *Keeper) set(l *Lease, valid bool) {
	k.mu.Lock()
	k.lease, k.valid = l, valid
	k.mu.Unlock()
}

func (k *Keeper) lock(ctx context.Context) bool {
	select {
	case k.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (k *Keeper) unlock() { <-k.sem }

// Fresh is what /init calls before each download: the current lease, at once while its
// address is valid and not past T2. Past T2 it first tries one broadcast REQUEST (bounded
// by the DHCP timeout); if the address has lapsed (or the server NAKs), it starts over with
// DISCOVER, bounded by ctx and the DHCP attempts. It never returns a lease whose address is
// past its expiry: that is an error wrapping ErrNoLease.
func (k *Keeper) Fresh(ctx context.Context) (*Lease, error) {
	l, valid := k.Current()
	if l == nil || !l.DHCP && !k.lapsing6(l, time.Now()) || l.DHCP && valid && !lapsing(l, time.Now()) {
		return l, nil
	}
	if !l.DHCP {
		return k.fresh6(ctx)
	}
	if !k.lock(ctx) {
		return nil, fmt.Errorf("%w on %s: %w", ErrNoLease, l.Iface, context.Cause(ctx))
	}
	defer k.unlock()
	k.mu.Lock()
	stopped := k.stopped
	k.mu.Unlock()
	l, valid = k.Current()
	if ph, _ := schedule(l, time.Now()); valid && !stopped && (ph == phaseRenewing || ph == phaseRebinding) {
		k.c.Logf("netup: %s: lease ends at %s: rebinding before the download", l.Iface, clock(l.Expires()))
		k.extend(ctx, l, phaseRebinding, k.c.DHCPTimeout)
		l, valid = k.Current()
	}
	if ph, _ := schedule(l, time.Now()); (!valid || ph == phaseExpired) && !stopped {
		if err := k.reacquire(ctx, l, "the address lapsed"); err != nil {
			return nil, err
		}
		l, valid = k.Current()
	}
	k.poke()
	if ph, _ := schedule(l, time.Now()); !valid || ph == phaseExpired {
		return nil, fmt.Errorf("%w on %s: the address %s lapsed at %s", ErrNoLease, l.Iface, l.Addr, clock(l.Expires()))
	}
	if lapsing(l, time.Now()) {
		k.c.Logf("netup: %s: %s is valid only until %s: no server answers", l.Iface, l.Addr, clock(l.Expires()))
	}
	return l, nil
}

// lapsing6 reports whether an IPv6-only lease (no DHCPv4 to fall back on) is overdue: its
// refresh time passed and the goroutine's refresh failed (it is retrying), or it ended.
func (k *Keeper) lapsing6(l *Lease, now time.Time) bool {
	refresh, _ := times6(l.V6)
	k.mu.Lock()
	retrying := !k.next6.IsZero()
	k.mu.Unlock()
	return !refresh.IsZero() && !now.Before(refresh) && retrying
}

// fresh6 is Fresh for an IPv6-only lease: one refresh now; an error if it fails and the
// configuration has ended (its first address or router); the lease, with a word, if it
// fails but is still valid.
func (k *Keeper) fresh6(ctx context.Context) (*Lease, error) {
	if !k.lock(ctx) {
		l, _ := k.Current()
		return nil, fmt.Errorf("%w on %s: %w", ErrNoLease, l.Iface, context.Cause(ctx))
	}
	defer k.unlock()
	l, _ := k.Current()
	k.mu.Lock()
	stopped := k.stopped
	k.mu.Unlock()
	if !stopped && k.refresh6(ctx, l) {
		k.mu.Lock()
		k.next6 = time.Time{}
		k.mu.Unlock()
		k.poke()
		l, _ = k.Current()
		return l, nil
	}
	if _, end := times6(l.V6); !time.Now().Before(end) {
		return nil, fmt.Errorf("%w on %s: IPv6 ended at %s", ErrNoLease, l.Iface, clock(end))
	}
	k.c.Logf("netup: %s: IPv6 %s: no router or server answers", l.Iface, l.V6.addrList())
	return l, nil
}

// poke tells the goroutine that the lease changed.
func (k *Keeper) poke() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Stop ends the keeping before /init hands the machine over (switch_root, kexec): no
// goroutine is left to send after it returns. The address stays, with its lifetime set to
// forever: after switch_root the booted system's own DHCP client (systemd-networkd,
// ifupdown, as the image's network configuration tells it) takes the lease over, and an
// address that vanished at the old lease's end would cut the booted system off before its
// client has run. (After a kexec the next kernel starts from nothing anyway.) Stop is
// idempotent; after it, Fresh returns the lease without renewing it.
func (k *Keeper) Stop() {
	if !k.end() {
		return
	}
	l, valid := k.Current()
	if l == nil {
		return
	}
	link, err := netlink.LinkByName(l.Iface)
	if v6 := l.V6; v6 != nil && err == nil {
		for _, a := range v6.Addrs {
			if a.Valid <= 0 {
				continue // static: forever already
			}
			na := &netlink.Addr{IPNet: &net.IPNet{IP: a.Prefix.Addr().AsSlice(), Mask: net.CIDRMask(a.Prefix.Bits(), 128)}}
			if err := netlink.AddrReplace(link, na); err != nil { // no lifetimes: forever
				k.c.Logf("netup: %s: handing %s over: %v", l.Iface, a.Prefix, err)
			} else {
				k.c.Logf("netup: %s: handing %s over with lifetime forever", l.Iface, a.Prefix)
			}
		}
	}
	if !l.DHCP || !valid {
		return
	}
	if err == nil {
		a := addr4(&Lease{Addr: l.Addr}) // no lease times: forever
		err = netlink.AddrReplace(link, a)
	}
	if err != nil {
		k.c.Logf("netup: %s: handing %s over: %v", l.Iface, l.Addr, err)
		return
	}
	k.c.Logf("netup: %s: handing %s over with lifetime forever (lease until %s): the booted system's DHCP client renews it",
		l.Iface, l.Addr, clock(l.Expires()))
}

// End ends the keeping, as Stop does, but leaves the address's lifetime as it is: the kernel
// removes it at the lease's end. For a lease that is being replaced (Up again, with other
// network parameters).
func (k *Keeper) End() { k.end() }

// end stops the goroutine and waits for a Fresh in progress; it reports whether this was the
// first call.
func (k *Keeper) end() bool {
	k.cancel()
	<-k.done
	k.sem <- struct{}{} // a Fresh in progress finishes first (bounded by its timeouts)
	defer k.unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	first := !k.stopped
	k.stopped = true
	return first
}

// run is the goroutine: act when due, then sleep until the next step, a change or the end.
func (k *Keeper) run(ctx context.Context) {
	defer close(k.done)
	if l, _ := k.Current(); l != nil && l.DHCP {
		k.c.Logf("netup: %s: keeping %s: lease until %s, renewing at %s, rebinding at %s", l.Iface, l.Addr,
			clock(l.Expires()), clock(l.Obtained.Add(l.T1)), clock(l.Obtained.Add(l.T2)))
	}
	for {
		next, ok := k.step(ctx)
		if ctx.Err() != nil {
			return
		}
		var (
			t     *time.Timer
			timer <-chan time.Time
		)
		if ok {
			t = time.NewTimer(time.Until(next))
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-k.wake:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// step does what is due now, for IPv4 and IPv6, and returns when to look again (ok false:
// only when woken).
func (k *Keeper) step(ctx context.Context) (next time.Time, ok bool) {
	if !k.lock(ctx) {
		return time.Time{}, false
	}
	defer k.unlock()
	next, ok = k.step4(ctx)
	if n6, ok6 := k.step6(ctx); ok6 && (!ok || n6.Before(next)) {
		next, ok = n6, true
	}
	return next, ok
}

// step4 is step's DHCPv4 part.
func (k *Keeper) step4(ctx context.Context) (next time.Time, ok bool) {
	l, valid := k.Current()
	now := time.Now()
	ph, at := schedule(l, now)
	if !valid {
		ph = phaseExpired
	}
	switch ph {
	case phaseForever:
		return time.Time{}, false
	case phaseBound:
		return at, true
	case phaseRenewing, phaseRebinding:
		if k.extend(ctx, l, ph, at.Sub(now)) {
			return time.Now(), true // changed: schedule afresh
		}
		return at, true
	}
	if err := k.reacquire(ctx, l, "the lease ended"); err != nil {
		// Until the server answers again; Fresh tries at once when /init needs the network.
		return time.Now().Add(k.c.DHCPTimeout), true
	}
	return time.Now(), true
}

// step6 is step's IPv6 part: solicit again (router advertisements, DHCPv6, as ip= says) at
// half the shortest lifetime (times6), and after a failure again at retry6's times. The
// kernel removes an address whose valid lifetime ends.
func (k *Keeper) step6(ctx context.Context) (next time.Time, ok bool) {
	l, _ := k.Current()
	refresh, end := times6(v6of(l))
	if refresh.IsZero() || v6Again == nil {
		return time.Time{}, false
	}
	k.mu.Lock()
	next = k.next6
	k.mu.Unlock()
	if next.IsZero() || next.Before(refresh) {
		next = refresh
	}
	now := time.Now()
	if now.Before(next) {
		return next, true
	}
	if k.refresh6(ctx, l) {
		l, _ = k.Current()
		next, _ = times6(v6of(l))
		k.mu.Lock()
		k.next6 = time.Time{}
		k.mu.Unlock()
	} else {
		next = retry6(now, end, 2*end.Sub(refresh))
		k.mu.Lock()
		k.next6 = next
		k.mu.Unlock()
	}
	return next, !next.IsZero()
}

// refresh6 solicits IPv6 again — acquire's own way: router solicitation, then SLAAC and
// DHCPv6 as the advertisement and ip= say (a DHCPv6 Solicit/Request, not a Renew: the server
// answers the same DUID and IAID with the same address) — and installs the result with
// configure6 (the new lifetimes; addresses the router no longer advertises removed). It
// reports whether it succeeded.
func (k *Keeper) refresh6(ctx context.Context, l *Lease) bool {
	if v6Again == nil {
		return false
	}
	_, end := times6(l.V6)
	n := *l
	var err error
	n.V6, err = v6Again(ctx, k.c, &n)
	v6 := n.V6
	if err != nil {
		if ctx.Err() == nil {
			k.c.Logf("netup: %s: IPv6 again: %v (valid until %s)", l.Iface, err, clock(end))
		}
		return false
	}
	_, valid := k.Current()
	k.set(&n, valid)
	refresh, end := times6(v6)
	k.c.Logf("netup: %s: IPv6 refreshed: %s until %s (again at %s)", l.Iface, v6.addrList(), clock(end), clock(refresh))
	return true
}

// v6Again is how refresh6 solicits IPv6 again and installs the result on l's link (again6);
// nil keeps IPv4 only. (It links the IPv6 stack, ndp and DHCPv6, 311 KB, into /init, which Up
// links anyway since it configures IPv6.)
var v6Again = again6

// again6 is v6Again: acquire6 as ip= says (auto6 for a lease that has IPv6 from a Config
// that names none, as acquire's default) and configure6 with the result.
func again6(ctx context.Context, c Config, l *Lease) (*Lease6, error) {
	link, err := netlink.LinkByName(l.Iface)
	if err != nil {
		return nil, err
	}
	f := familiesOf(c)
	if f.v6 == v6None {
		f.v6 = v6Auto
	}
	v6, err := acquire6(ctx, c, link, f)
	if err != nil {
		return nil, err
	}
	n := *l
	n.V6 = v6
	return v6, configure6(c, link, &n)
}

// v6of is l's IPv6 side (nil for a nil l).
func v6of(l *Lease) *Lease6 {
	if l == nil {
		return nil
	}
	return l.V6
}

// extend sends one REQUEST for l — unicast to its server when renewing, broadcast when
// rebinding — and waits for the answer at most wait (but at least half a second, at most
// the DHCP timeout). It reports whether the lease changed: an ACK renews it (the address's
// lifetimes refreshed), a NAK makes it start over (reacquire).
func (k *Keeper) extend(ctx context.Context, l *Lease, ph leasePhase, wait time.Duration) bool {
	wait = min(max(wait, 500*time.Millisecond), k.c.DHCPTimeout)
	what := "renewing with " + l.Server.String()
	if ph == phaseRebinding || !l.Server.IsValid() {
		ph, what = phaseRebinding, "rebinding (broadcast)"
	}
	sent := time.Now()
	ack, err := k.request(ctx, l, ph == phaseRebinding, wait)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			k.c.Logf("netup: %s: %s: %v (lease until %s)", l.Iface, what, err, clock(l.Expires()))
		}
		return false
	case ack.MessageType() == dhcpv4.MessageTypeNak:
		why := fmt.Sprintf("NAK from %s", ack.ServerIdentifier())
		if m := ack.Message(); m != "" {
			why += fmt.Sprintf(" (%q)", m)
		}
		k.reacquire(ctx, l, why)
		return true
	}
	if yi, _ := netip.AddrFromSlice(ack.YourIPAddr); yi.Unmap() != l.Addr.Addr() {
		k.reacquire(ctx, l, fmt.Sprintf("ACK from %s for %s, not %s", ack.ServerIdentifier(), net.IP(ack.YourIPAddr), l.Addr.Addr()))
		return true
	}
	n := renewed(l, ack, sent)
	if err := k.install(n); err != nil {
		k.c.Logf("netup: %s: renewed, but %v", l.Iface, err)
		return false
	}
	how := "renewed"
	if ph == phaseRebinding {
		how = "rebound with " + n.Server.String()
	}
	if n.Expires().IsZero() {
		k.c.Logf("netup: %s: lease %s: infinite", l.Iface, how)
	} else {
		k.c.Logf("netup: %s: lease %s until %s (T1 %s)", l.Iface, how, clock(n.Expires()), clock(n.Obtained.Add(n.T1)))
	}
	return true
}

// renewed is l with the times of a renewal's ACK, counted from when the REQUEST was sent
// (RFC 2131 4.4.5), and its server (another may answer a rebinding REQUEST). The rest of l
// stays: some servers leave options out of a renewal's ACK.
func renewed(l *Lease, ack *dhcpv4.DHCPv4, sent time.Time) *Lease {
	n := *l
	n.Obtained = sent
	n.LeaseTime, n.T1, n.T2 = leaseTimes(ack)
	if s := addrs4([]net.IP{ack.ServerIdentifier()}); len(s) > 0 {
		n.Server = s[0]
	}
	return &n
}

// request is one renewing or rebinding REQUEST (RFC 2131 4.3.2, 4.4.5): ciaddr set, neither
// a server identifier nor a requested address, from the configured address over an ordinary
// UDP socket on the interface (the server answers ciaddr by unicast; a NAK may come
// broadcast, which the socket on 0.0.0.0:68 also hears). The message is built here, with
// message's transaction ID, for the reason request in dhcp_linux.go gives.
func (k *Keeper) request(ctx context.Context, l *Lease, broadcast bool, wait time.Duration) (*dhcpv4.DHCPv4, error) {
	conn, err := listen68(ctx, l.Iface)
	if err != nil {
		return nil, fmt.Errorf("opening a DHCP socket: %w", err)
	}
	client, err := nclient4.NewWithConn(conn, l.MAC,
		nclient4.WithTimeout(wait), nclient4.WithRetry(1), // retransmissions are schedule's
		nclient4.WithLogger(dhcpLogger{k.c.Logf, l.Iface}))
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer client.Close()
	dest := &net.UDPAddr{IP: net.IPv4bcast, Port: nclient4.ServerPort}
	if !broadcast && l.Server.IsValid() {
		dest.IP = l.Server.AsSlice()
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithHwAddr(l.MAC),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(l.Addr.Addr().AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptMaxMessageSize(nclient4.MaxMessageSize)),
		dhcpv4.WithRequestedOptions(requested...),
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier(classID)),
	}
	if k.c.IP != nil && validDomain(k.c.IP.Hostname) {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(k.c.IP.Hostname)))
	}
	ack, err := client.SendAndRead(ctx, dest, message(mods...),
		nclient4.IsMessageType(dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak))
	if errors.Is(err, nclient4.ErrNoResponse) {
		err = fmt.Errorf("no answer within %v", wait.Round(time.Millisecond))
	}
	return ack, err
}

// listen68 is a UDP socket on the DHCP client port, bound to iface (SO_BINDTODEVICE: a
// broadcast leaves through it, whatever the routes say).
func listen68(ctx context.Context, iface string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if serr == nil {
				serr = unix.BindToDevice(int(fd), iface)
			}
		})
		return errors.Join(err, serr)
	}}
	return lc.ListenPacket(ctx, "udp4", fmt.Sprintf(":%d", nclient4.ClientPort))
}

// install puts a renewed lease in place: new lifetimes on the address, or — if the address
// is gone meanwhile (the kernel dropped it at its end) — the whole configuration again.
func (k *Keeper) install(n *Lease) error {
	link, err := netlink.LinkByName(n.Iface)
	if err != nil {
		return err
	}
	if hasAddr(link, n.Addr) {
		err = netlink.AddrReplace(link, addr4(n))
	} else {
		err = configure(k.c, link, n)
	}
	if err != nil {
		return fmt.Errorf("configuring %s: %w", n.Addr, err)
	}
	k.set(n, true)
	return nil
}

// reacquire drops old's address (the kernel drops the routes through it) and starts over
// with DISCOVER, the way Up got the first lease, then configures the new lease — address,
// routes, MTU, DNS — as Up does.
func (k *Keeper) reacquire(ctx context.Context, old *Lease, why string) error {
	if _, valid := k.Current(); valid {
		k.c.Logf("netup: %s: %s: removing %s, starting over with DISCOVER", old.Iface, why, old.Addr)
		if link, err := netlink.LinkByName(old.Iface); err == nil {
			if err := netlink.AddrDel(link, addr4(&Lease{Addr: old.Addr})); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
				k.c.Logf("netup: %s: removing %s: %v", old.Iface, old.Addr, err)
			}
		}
		k.set(old, false)
	} else {
		k.c.Logf("netup: %s: %s: DISCOVER", old.Iface, why)
	}
	l, err := dhcpLease(ctx, k.c, old.Iface, old.MAC)
	if err != nil {
		k.c.Logf("netup: %s: %v", old.Iface, err)
		return err
	}
	carry(old, l)
	link, err := netlink.LinkByName(old.Iface)
	if err == nil {
		err = configure(k.c, link, l)
	}
	if err == nil && l.V6 != nil && len(l.V6.DNS)+len(l.V6.Search) > 0 {
		// configure wrote IPv4's servers alone; IPv6's follow them, as configure6 has it.
		dns, search := mergeAddrs(l.DNS, l.V6.DNS), mergeStrings(l.Search, l.V6.Search)
		err = atomicfile.WriteFile(k.c.ResolvConf, []byte(renderResolvConf(dns, search)), 0o644)
	}
	if err != nil {
		k.c.Logf("netup: %s: configuring %s: %v", old.Iface, l.Addr, err)
		return fmt.Errorf("configuring %s: %w", l.Addr, err)
	}
	k.set(l, true)
	k.c.Logf("netup: %s: new lease %s from %s until %s (T1 %s)", l.Iface, l.Addr, l.Server, clock(l.Expires()), clock(l.Obtained.Add(l.T1)))
	return nil
}

// carry copies into a re-acquired lease what Up set besides leaseFromACK: the links it
// created, the race's story, IPv6.
func carry(old, l *Lease) {
	l.Bonds, l.VLANs, l.Race, l.V6 = old.Bonds, old.VLANs, old.Race, old.V6
}

// hasAddr reports whether link has the IPv4 address p.
func hasAddr(link netlink.Link, p netip.Prefix) bool {
	as, err := addrList(link, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, a := range as {
		if a.IPNet != nil && a.IPNet.String() == p.String() {
			return true
		}
	}
	return false
}

// addr4 is l's IPv4 address as configure and the keeper install it: with the lease's remaining
// time as its valid and preferred lifetimes, so that the kernel itself drops an address whose
// lease ended (nothing uses it past its expiry, even if the keeper could not act); a static
// address or an infinite lease is installed forever.
func addr4(l *Lease) *netlink.Addr {
	valid, preferred := lifetimes(l, time.Now())
	return &netlink.Addr{
		IPNet:       &net.IPNet{IP: l.Addr.Addr().AsSlice(), Mask: net.CIDRMask(l.Addr.Bits(), 32)},
		ValidLft:    valid,
		PreferedLft: preferred,
	}
}

// clock is a time of day for the log (UTC in the initramfs).
func clock(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format("15:04:05")
}
