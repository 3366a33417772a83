package netup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// DefaultDADTimeout bounds each wait for IPv6 duplicate address detection (the link-local
// address in acquire, the global ones in configure6) when rd.net.timeout.ipv6dad is not
// given. The kernel's default DAD is one probe and one second (plus up to a second's delay).
const DefaultDADTimeout = 5 * time.Second

// rsSchedule is when router solicitations are sent, from the first: a quick round, so a
// router that missed the first answers within the dual-stack grace, then RFC 7559's backoff.
var rsSchedule = []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

// rsMaxInterval is the interval after the schedule's end.
const rsMaxInterval = 8 * time.Second

// rsNext is when the solicitation after the nth (from 0) is due, from the first.
func rsNext(n int) time.Duration {
	last := len(rsSchedule) - 1
	if n+1 <= last {
		return rsSchedule[n+1]
	}
	return rsSchedule[last] + rsMaxInterval*time.Duration(n+1-last)
}

// sysctl6 writes one of the link's IPv6 settings.
func sysctl6(iface, name, value string) error {
	return os.WriteFile("/proc/sys/net/ipv6/conf/"+iface+"/"+name, []byte(value), 0o644)
}

// enableIPv6 turns IPv6 on for the link and the kernel's own autoconfiguration off, so that it
// does not race ramboot: no router advertisements accepted (accept_ra=0; the kernel sends no
// solicitations then either), no SLAAC of its own (autoconf=0). The link-local address is
// still made, with duplicate address detection; optimistic DAD (RFC 4429), where the kernel
// has it, lets it be used during DAD.
func enableIPv6(iface string) error {
	for _, s := range [][2]string{{"accept_ra", "0"}, {"autoconf", "0"}, {"disable_ipv6", "0"}} {
		if err := sysctl6(iface, s[0], s[1]); err != nil {
			return fmt.Errorf("enabling IPv6 on %s: %w", iface, err)
		}
	}
	sysctl6(iface, "optimistic_dad", "1") // optional: CONFIG_IPV6_OPTIMISTIC_DAD
	return nil
}

// dadTimeout is rd.net.timeout.ipv6dad, else DefaultDADTimeout.
func dadTimeout(c Config) time.Duration {
	if c.Net != nil && c.Net.Timeouts.IPv6DAD > 0 {
		return c.Net.Timeouts.IPv6DAD
	}
	return DefaultDADTimeout
}

// linkLocal waits until link has a usable link-local address (DAD done, or optimistic), and
// reports it and whether it is still optimistic (then it must not be announced in a
// solicitation's link-layer option, RFC 4429 3.2).
func linkLocal(ctx context.Context, link netlink.Link, timeout time.Duration) (netip.Addr, bool, error) {
	deadline := time.Now().Add(timeout)
	for {
		as, err := netlink.AddrList(link, netlink.FAMILY_V6)
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("listing addresses: %w", err)
		}
		for _, a := range as {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok || !ip.IsLinkLocalUnicast() {
				continue
			}
			if a.Flags&unix.IFA_F_DADFAILED != 0 {
				return netip.Addr{}, false, fmt.Errorf("link-local address %s is in use by another host", ip)
			}
			if opt := a.Flags&unix.IFA_F_OPTIMISTIC != 0; opt || a.Flags&unix.IFA_F_TENTATIVE == 0 {
				return ip, opt, nil
			}
		}
		if err := sleepUntil(ctx, deadline); errors.Is(err, errDeadline) {
			return netip.Addr{}, false, fmt.Errorf("no usable link-local address on %s within %v", link.Attrs().Name, timeout)
		} else if err != nil {
			return netip.Addr{}, false, err
		}
	}
}

// advert is a router advertisement and its source.
type advert struct {
	ra     *ndp.RouterAdvertisement
	router netip.Addr
	at     time.Time
}

// solicit sends router solicitations from ll on the interface by rsSchedule and delivers
// every valid advertisement (hop limit 255 and a link-local source, RFC 4861 6.1.2) to ads
// until ctx is done. It calls noteHeard(ctx) on each. It returns ctx's error, or the socket's.
func solicit(ctx context.Context, ifi *net.Interface, ll netip.Addr, optimistic bool, logf func(string, ...any), ads chan<- advert) error {
	conn, _, err := ndp.Listen(ifi, ndp.Addr(ll.WithZone("").String()))
	if err != nil {
		return fmt.Errorf("opening the ICMPv6 socket: %w", err)
	}
	defer conn.Close()
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterAdvertisement)
	if err := conn.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("filtering ICMPv6: %w", err)
	}
	if err := conn.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
		return fmt.Errorf("asking for hop limits: %w", err)
	}
	rs := &ndp.RouterSolicitation{}
	if !optimistic {
		rs.Options = []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifi.HardwareAddr}}
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	start := time.Now()
	for n := 0; ; n++ {
		if err := conn.WriteTo(rs, nil, netip.IPv6LinkLocalAllRouters()); err != nil {
			logf("netup: %s: router solicitation: %v", ifi.Name, err)
		} else if n < len(rsSchedule) || n%8 == 0 {
			logf("netup: %s: router solicitation %d", ifi.Name, n+1)
		}
		next := start.Add(rsNext(n))
		for {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := conn.SetReadDeadline(next); err != nil {
				return err
			}
			m, cm, from, err := conn.ReadFrom()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				break
			}
			if err != nil {
				return fmt.Errorf("reading ICMPv6: %w", err)
			}
			ra, ok := m.(*ndp.RouterAdvertisement)
			if !ok || cm == nil || cm.HopLimit != ndp.HopLimit || !from.IsLinkLocalUnicast() {
				continue
			}
			noteHeard(ctx)
			select {
			case ads <- advert{ra: ra, router: from.WithZone(""), at: time.Now()}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}
