package netup

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"time"
)

// The router advertisement is parsed here, by hand, rather than with github.com/mdlayher/ndp
// (which the tests use as the reference to check this against, FuzzParseRA): ndp brings
// golang.org/x/net's ipv6, icmp and idna and golang.org/x/text's Unicode tables into /init,
// some 200 KiB of the 12 MiB budget, for the four options read here. Solicitations are sent
// and advertisements read on a plain net.IPConn (ra_linux.go).

// ICMPv6 types and the options of router advertisements (RFC 4861 4.1, 4.2, 4.6; RFC 8106).
const (
	icmpRouterSolicitation  = 133
	icmpRouterAdvertisement = 134

	optSourceLinkAddr = 1
	optPrefixInfo     = 3
	optMTU            = 5
	optRDNSS          = 25
	optDNSSL          = 31
)

// infinity is the lifetime 0xffffffff seconds: forever.
const infinity = time.Duration(0xffffffff) * time.Second

// routerAdvert is a router advertisement, with the options ramboot uses.
type routerAdvert struct {
	Managed, Other bool
	RouterLifetime time.Duration
	Prefixes       []prefixInfo
	RDNSS          []rdnss
	DNSSL          []dnssl
	MTU            uint32 // 0: no MTU option
}

type prefixInfo struct {
	Prefix           netip.Prefix // masked
	OnLink, Auto     bool         // the L and A flags
	Valid, Preferred time.Duration
}

type rdnss struct {
	Lifetime time.Duration
	Servers  []netip.Addr
}

type dnssl struct {
	Lifetime time.Duration
	Domains  []string
}

var errBadRA = errors.New("malformed router advertisement")

// parseRA reads an ICMPv6 router advertisement, b starting at the ICMPv6 type. Like RFC 4861
// 6.1.2 it rejects a wrong code, a short message and an option of length 0 or running past
// the end; an option of the wrong size for its type is skipped, as are unknown options.
func parseRA(b []byte) (*routerAdvert, error) {
	if len(b) < 16 || b[0] != icmpRouterAdvertisement || b[1] != 0 {
		return nil, errBadRA
	}
	ra := &routerAdvert{
		Managed:        b[5]&0x80 != 0,
		Other:          b[5]&0x40 != 0,
		RouterLifetime: time.Duration(binary.BigEndian.Uint16(b[6:8])) * time.Second,
	}
	for o := b[16:]; len(o) > 0; {
		if len(o) < 2 || o[1] == 0 || int(o[1])*8 > len(o) {
			return nil, errBadRA
		}
		opt := o[:int(o[1])*8]
		o = o[len(opt):]
		seconds := func(b []byte) time.Duration { return time.Duration(binary.BigEndian.Uint32(b)) * time.Second }
		switch opt[0] {
		case optPrefixInfo:
			if len(opt) != 32 || opt[2] > 128 {
				continue
			}
			p := netip.PrefixFrom(netip.AddrFrom16([16]byte(opt[16:32])), int(opt[2])).Masked()
			ra.Prefixes = append(ra.Prefixes, prefixInfo{
				Prefix: p, OnLink: opt[3]&0x80 != 0, Auto: opt[3]&0x40 != 0,
				Valid: seconds(opt[4:8]), Preferred: seconds(opt[8:12]),
			})
		case optMTU:
			if len(opt) == 8 {
				ra.MTU = binary.BigEndian.Uint32(opt[4:8])
			}
		case optRDNSS:
			if len(opt) < 24 || (len(opt)-8)%16 != 0 {
				continue
			}
			r := rdnss{Lifetime: seconds(opt[4:8])}
			for a := opt[8:]; len(a) > 0; a = a[16:] {
				r.Servers = append(r.Servers, netip.AddrFrom16([16]byte(a[:16])))
			}
			ra.RDNSS = append(ra.RDNSS, r)
		case optDNSSL:
			if len(opt) < 16 {
				continue
			}
			if ds, ok := parseDomains(opt[8:]); ok {
				ra.DNSSL = append(ra.DNSSL, dnssl{Lifetime: seconds(opt[4:8]), Domains: ds})
			}
		}
	}
	return ra, nil
}

// parseDomains reads DNSSL's names: each a sequence of length-prefixed labels ending with an
// empty one (RFC 1035 3.1, without compression, RFC 8106 5.2), then padding. Labels are
// ASCII without dots or spaces, else the option is discarded; names that are no host names
// are left to validDomain to refuse.
func parseDomains(b []byte) ([]string, bool) {
	var (
		names  []string
		labels []string
	)
	for i := 0; i < len(b); {
		n := int(b[i])
		i++
		if n == 0 {
			if len(labels) == 0 { // padding: the names end (what follows is ignored, as by ndp)
				break
			}
			names = append(names, strings.Join(labels, "."))
			labels = nil
			continue
		}
		if i+n > len(b) { // a label over 63 bytes is left to validDomain to refuse
			return nil, false
		}
		l := string(b[i : i+n])
		for _, c := range []byte(l) {
			if c >= 0x80 || c == ' ' || c == '.' {
				return nil, false
			}
		}
		labels = append(labels, l)
		i += n
	}
	if len(labels) > 0 || len(names) == 0 { // a name without its end, or none at all
		return nil, false
	}
	return names, true
}

// routerSolicitation is an ICMPv6 router solicitation (RFC 4861 4.1), with the source
// link-layer address option when mac is given. The checksum is left 0: the kernel fills it
// in on ICMPv6 raw sockets (RFC 3542 3.1).
func routerSolicitation(mac net.HardwareAddr) []byte {
	b := []byte{icmpRouterSolicitation, 0, 0, 0, 0, 0, 0, 0}
	if len(mac) == 6 {
		b = append(b, optSourceLinkAddr, 1)
		b = append(b, mac...)
	}
	return b
}
