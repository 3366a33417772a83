package netup

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/vishvananda/netlink"
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
		as, err := addrList(link, netlink.FAMILY_V6)
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
	ra     *routerAdvert
	router netip.Addr
	at     time.Time
}

// icmpConn is a raw ICMPv6 socket bound to ll on the interface that sends with hop limit 255
// (RFC 4861 requires it of every ND message), receives router advertisements only, and
// reports each packet's hop limit.
func icmpConn(ifi *net.Interface, ll netip.Addr) (*net.IPConn, error) {
	conn, err := net.ListenIP("ip6:ipv6-icmp", &net.IPAddr{IP: ll.AsSlice(), Zone: ifi.Name})
	if err != nil {
		return nil, err
	}
	raw, err := conn.SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		var f unix.ICMPv6Filter // a set bit blocks that type
		for i := range f.Data {
			f.Data[i] = ^uint32(0)
		}
		f.Data[icmpRouterAdvertisement>>5] &^= 1 << (icmpRouterAdvertisement & 31)
		if serr = unix.SetsockoptICMPv6Filter(int(fd), unix.IPPROTO_ICMPV6, unix.ICMPV6_FILTER, &f); serr != nil {
			return
		}
		for _, o := range [][2]int{{unix.IPV6_MULTICAST_HOPS, 255}, {unix.IPV6_UNICAST_HOPS, 255}, {unix.IPV6_RECVHOPLIMIT, 1}} {
			if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, o[0], o[1]); serr != nil {
				return
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("setting up the ICMPv6 socket: %w", err)
	}
	return conn, nil
}

// hopLimit is the IPV6_HOPLIMIT of a packet's control messages; -1 if there is none.
func hopLimit(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4 {
			return int(int32(binary.NativeEndian.Uint32(m.Data)))
		}
	}
	return -1
}

// solicit sends router solicitations from ll on the interface by rsSchedule and delivers
// every valid advertisement (hop limit 255, a link-local source and a well-formed message,
// RFC 4861 6.1.2) to ads until ctx is done. It calls noteHeard(ctx) on each. It returns ctx's
// error, or the socket's.
func solicit(ctx context.Context, ifi *net.Interface, ll netip.Addr, optimistic bool, logf func(string, ...any), ads chan<- advert) error {
	conn, err := icmpConn(ifi, ll)
	if err != nil {
		return fmt.Errorf("opening the ICMPv6 socket: %w", err)
	}
	defer conn.Close()
	var mac net.HardwareAddr
	if !optimistic { // RFC 4429 3.2: no link-layer option from an optimistic address
		mac = ifi.HardwareAddr
	}
	rs := routerSolicitation(mac)
	allRouters := &net.IPAddr{IP: net.ParseIP("ff02::2"), Zone: ifi.Name}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	b, oob := make([]byte, 1500), make([]byte, 128)
	start := time.Now()
	for n := 0; ; n++ {
		if _, err := conn.WriteToIP(rs, allRouters); err != nil {
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
			k, oobn, _, from, err := conn.ReadMsgIP(b, oob)
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
			src, _ := netip.AddrFromSlice(from.IP)
			if hopLimit(oob[:oobn]) != 255 || !src.IsLinkLocalUnicast() {
				continue
			}
			ra, err := parseRA(b[:k])
			if err != nil {
				continue
			}
			noteHeard(ctx)
			select {
			case ads <- advert{ra: ra, router: src.WithZone(""), at: time.Now()}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}
