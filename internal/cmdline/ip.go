package cmdline

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// IPConfig is ip= in the kernel's nfsroot syntax:
// ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>:<ntp0>
// or ip=<autoconf> alone (dhcp, on, any, off, none, ...), or dracut's ip=<device>:<autoconf>.
type IPConfig struct {
	Addr     netip.Prefix // client address with the netmask's length; invalid for DHCP
	Server   netip.Addr
	Gateway  netip.Addr
	Hostname string
	Device   string
	Autoconf string // "dhcp", "off", "none", "static" ...; "" if not given
	DNS      []netip.Addr
	NTP      netip.Addr
}

// DHCP reports whether the address is to be obtained by DHCP.
func (c *IPConfig) DHCP() bool {
	switch c.Autoconf {
	case "dhcp", "on", "any", "both", "bootp", "rarp":
		return true
	case "", "off", "none", "static":
		return !c.Addr.IsValid()
	}
	return false
}

// autoconfWords are the values ip= takes alone, and dracut's ip=<device>:<autoconf> after the
// device.
var autoconfWords = []string{"dhcp", "on", "any", "both", "bootp", "rarp", "off", "none"}

// ParseIP parses ip= (see IPConfig).
func ParseIP(v string) (*IPConfig, error) {
	f := strings.Split(v, ":")
	c := &IPConfig{}
	if len(f) == 1 {
		if slices.Contains(autoconfWords, v) {
			c.Autoconf = v
			return c, nil
		}
		return nil, errors.New("want dhcp, off, IFACE:dhcp or client:server:gw:netmask:hostname:device:autoconf")
	}
	if isDracutForm(f) {
		return parseDracutIP(f)
	}
	if len(f) > 10 {
		return nil, errors.New("too many fields")
	}
	for len(f) < 10 {
		f = append(f, "")
	}
	addr := func(i int, what string) (netip.Addr, error) {
		if f[i] == "" {
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(f[i])
		if err != nil || !a.Is4() {
			return netip.Addr{}, fmt.Errorf("%s %q is not an IPv4 address", what, f[i])
		}
		return a, nil
	}
	client, err := addr(0, "client address")
	if err != nil {
		return nil, err
	}
	if c.Server, err = addr(1, "server address"); err != nil {
		return nil, err
	}
	if c.Gateway, err = addr(2, "gateway"); err != nil {
		return nil, err
	}
	bits := -1
	if f[3] != "" {
		if n, err := strconv.Atoi(f[3]); err == nil && n >= 0 && n <= 32 {
			bits = n
		} else {
			m, err := addr(3, "netmask")
			if err != nil {
				return nil, err
			}
			ones, size := net.IPMask(m.AsSlice()).Size()
			if size == 0 {
				return nil, fmt.Errorf("netmask %q is not contiguous", f[3])
			}
			bits = ones
		}
	}
	c.Hostname, c.Device, c.Autoconf = f[4], f[5], f[6]
	switch c.Autoconf {
	case "", "off", "none", "static", "dhcp", "on", "any", "both", "bootp", "rarp":
	default:
		return nil, fmt.Errorf("autoconf %q is not dhcp, on, any, off or none", c.Autoconf)
	}
	for i := 7; i <= 8; i++ {
		d, err := addr(i, "DNS server")
		if err != nil {
			return nil, err
		}
		if d.IsValid() {
			c.DNS = append(c.DNS, d)
		}
	}
	if c.NTP, err = addr(9, "NTP server"); err != nil {
		return nil, err
	}
	if client.IsValid() {
		if bits < 0 {
			bits = ClassfulBits(client)
		}
		c.Addr = netip.PrefixFrom(client, bits)
	} else if c.Autoconf == "off" || c.Autoconf == "none" || c.Autoconf == "static" {
		return nil, errors.New("static configuration without a client address")
	}
	return c, nil
}

// isDracutForm tells dracut's ip=<device>:<autoconf>[:<mtu>[:<macaddr>]] from the kernel's
// form, whose second field is the server address: an autoconf word second, and first something
// that is not an address.
func isDracutForm(f []string) bool {
	if len(f) > 4 || !slices.Contains(autoconfWords, f[1]) {
		return false
	}
	_, err := netip.ParseAddr(f[0])
	return err != nil
}

func parseDracutIP(f []string) (*IPConfig, error) {
	dev := f[0]
	switch {
	case dev == "":
		return nil, fmt.Errorf("want IFACE:%s, got no interface name", f[1])
	case len(dev) > 15 || strings.ContainsAny(dev, "/\\"):
		return nil, fmt.Errorf("%q is not an interface name", dev)
	}
	for _, x := range f[2:] {
		if x != "" {
			return nil, errors.New("the mtu and macaddr fields of ip=IFACE:AUTOCONF:MTU:MAC are not supported")
		}
	}
	return &IPConfig{Device: dev, Autoconf: f[1]}, nil
}

// ClassfulBits is the kernel's default prefix length for an address given without a netmask.
func ClassfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	}
	return 24
}
