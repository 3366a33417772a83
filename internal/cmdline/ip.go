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

// IPConfig is one ip= parameter, in any of the forms of the kernel (nfsroot.txt) and of dracut
// (dracut.cmdline(7)):
//
//	ip=AUTOCONF                                  dhcp, on, any, dhcp6, auto6, either6, link6, single-dhcp, off, none
//	ip=IF:AUTOCONF[:[MTU][:MAC]]                 dracut: one interface
//	ip=CLIENT:[PEER]:GW:NETMASK:HOSTNAME:IF:AUTOCONF[:[MTU][:MAC]]
//	ip=CLIENT:[PEER]:GW:NETMASK:HOSTNAME:IF:AUTOCONF[:[DNS1][:DNS2][:NTP]]
//
// IPv6 addresses are written in brackets ([2001:db8::1]) and their netmask is a prefix length;
// AUTOCONF may be a comma-separated list (dhcp,dhcp6). A MAC address is written with colons or
// dashes.
type IPConfig struct {
	Addr     netip.Prefix // client address with the netmask's length; invalid for DHCP
	Server   netip.Addr   // dracut's peer, the kernel's (NFS) server
	Gateway  netip.Addr
	Hostname string
	Device   string
	Autoconf string // "dhcp", "off", "dhcp,dhcp6" ... as given; "" if not given
	DNS      []netip.Addr
	NTP      netip.Addr
	MTU      int              // 0 when not given
	MAC      net.HardwareAddr // the address to set on Device; nil when not given
}

// The autoconf words. static is the kernel's synonym of off, and only in the long form.
var (
	dhcp4Words = []string{"dhcp", "on", "any", "both", "bootp", "rarp", "single-dhcp"}
	dhcp6Words = []string{"dhcp6", "auto6", "either6", "link6"}
	offWords   = []string{"off", "none", "static"}
)

// Methods returns the autoconf words (Autoconf split at commas); nil when none was given.
func (c *IPConfig) Methods() []string {
	if c.Autoconf == "" {
		return nil
	}
	return strings.Split(c.Autoconf, ",")
}

func (c *IPConfig) hasAny(words []string) bool {
	for _, m := range c.Methods() {
		if slices.Contains(words, m) {
			return true
		}
	}
	return false
}

// DHCP reports whether the IPv4 address is to be obtained by DHCP: an IPv4 DHCP word, or no
// client address and no IPv6 method.
func (c *IPConfig) DHCP() bool {
	if c.hasAny(dhcp4Words) {
		return true
	}
	return !c.hasAny(dhcp6Words) && !c.Addr.IsValid()
}

// IPv4 reports whether this ip= configures IPv4 on its interface: an IPv4 address, DHCP, or
// off/none without an address (which says "nothing here", for either family).
func (c *IPConfig) IPv4() bool {
	if c.Addr.IsValid() {
		return c.Addr.Addr().Is4() || c.hasAny(dhcp4Words)
	}
	return c.hasAny(dhcp4Words) || !c.hasAny(dhcp6Words)
}

// IPv6 reports whether this ip= configures IPv6 on its interface: an IPv6 address, an IPv6
// method (dhcp6, auto6, either6, link6), or off/none without an address.
func (c *IPConfig) IPv6() bool {
	if c.Addr.IsValid() {
		return c.Addr.Addr().Is6() || c.hasAny(dhcp6Words)
	}
	if c.hasAny(dhcp6Words) {
		return true
	}
	ms := c.Methods()
	return len(ms) > 0 && !slices.ContainsFunc(ms, func(m string) bool { return !slices.Contains(offWords, m) })
}

// The forms of ip=, for checkAutoconf.
const (
	formAlone = iota
	formDevice
	formLong
)

// checkAutoconf accepts an autoconf word or comma-separated list in one of the forms.
func checkAutoconf(s string, form int) error {
	words := strings.Split(s, ",")
	for i, w := range words {
		switch {
		case w == "ibft":
			return errors.New("ibft (iSCSI firmware tables) is not supported")
		case w == "single-dhcp" && (form != formAlone || len(words) > 1):
			return errors.New("single-dhcp races DHCP on every NIC: give it alone, as ip=single-dhcp")
		case w == "static" && form != formLong:
			return errors.New("static needs an address: CLIENT:[PEER]:GW:NETMASK:HOSTNAME:IF:none")
		case !slices.Contains(dhcp4Words, w) && !slices.Contains(dhcp6Words, w) && !slices.Contains(offWords, w):
			return fmt.Errorf("autoconf %q is not one of dhcp, on, any, dhcp6, auto6, either6, link6, single-dhcp, off or none", w)
		case slices.Contains(words[:i], w):
			return fmt.Errorf("autoconf %q is listed twice", w)
		case slices.Contains(offWords, w) && len(words) > 1:
			return fmt.Errorf("autoconf %q does not combine with others", w)
		}
	}
	return nil
}

// isAutoconf reports whether s reads as an autoconf list (valid or not in its place): what
// tells dracut's IF:AUTOCONF from the long form, whose second field is an address.
func isAutoconf(s string) bool {
	for _, w := range strings.Split(s, ",") {
		if w != "ibft" && !slices.Contains(dhcp4Words, w) && !slices.Contains(dhcp6Words, w) && !slices.Contains(offWords, w) {
			return false
		}
	}
	return true
}

// ParseIP parses the value of ip= (see IPConfig).
func ParseIP(v string) (*IPConfig, error) {
	f, err := splitFields(v)
	if err != nil {
		return nil, err
	}
	if len(f) == 1 {
		if !isAutoconf(v) {
			return nil, errors.New("want dhcp, off, IFACE:dhcp, dhcp6, auto6, either6, link6, single-dhcp or CLIENT:[PEER]:GW:NETMASK:HOSTNAME:IF:AUTOCONF")
		}
		if err := checkAutoconf(v, formAlone); err != nil {
			return nil, err
		}
		return &IPConfig{Autoconf: v}, nil
	}
	// The long form's second field is the peer: an address or nothing. A word there is an
	// autoconf, or a misspelt one ("eth0:dhcp7"), which the device form names as such.
	if !isAddrField(f[0]) && (isAutoconf(f[1]) || f[1] != "" && !isAddrField(f[1])) {
		return parseDeviceIP(f)
	}
	return parseLongIP(f)
}

// isAddrField reports whether a field is meant as an address (it is one, or is bracketed).
func isAddrField(s string) bool {
	if strings.HasPrefix(s, "[") {
		return true
	}
	_, err := netip.ParseAddr(s)
	if err != nil {
		_, err = netip.ParsePrefix(s)
	}
	return err == nil
}

// parseDeviceIP parses dracut's IF:AUTOCONF[:[MTU][:MAC]].
func parseDeviceIP(f []string) (*IPConfig, error) {
	c := &IPConfig{Device: f[0], Autoconf: f[1]}
	if c.Device == "" {
		return nil, fmt.Errorf("want IFACE:%s, got no interface name", f[1])
	}
	if err := checkIfName(c.Device); err != nil {
		return nil, err
	}
	if err := checkAutoconf(c.Autoconf, formDevice); err != nil {
		return nil, err
	}
	var err error
	if c.MTU, c.MAC, err = parseMTUMAC(f[2:]); err != nil {
		return nil, fmt.Errorf("after %s:%s, want [MTU][:MAC]: %w", f[0], f[1], err)
	}
	return c, nil
}

// parseLongIP parses CLIENT:[PEER]:GW:NETMASK:HOSTNAME:IF:AUTOCONF and what follows it.
func parseLongIP(f []string) (*IPConfig, error) {
	for len(f) < 7 {
		f = append(f, "")
	}
	c := &IPConfig{Hostname: f[4], Device: f[5], Autoconf: f[6]}
	client, bits, err := parseAddrPrefix(f[0], "client address")
	if err != nil {
		return nil, err
	}
	if c.Server, err = parseAddrField(f[1], "peer address"); err != nil {
		return nil, err
	}
	if c.Gateway, err = parseAddrField(f[2], "gateway"); err != nil {
		return nil, err
	}
	if f[3] != "" {
		n, err := parseMask(f[3], client.Is6())
		if err != nil {
			return nil, err
		}
		if bits >= 0 && n != bits {
			return nil, fmt.Errorf("the client address %s says /%d, the netmask %s /%d", f[0], bits, f[3], n)
		}
		bits = n
	}
	if c.Device != "" {
		if err := checkIfName(c.Device); err != nil {
			return nil, err
		}
	}
	if c.Autoconf != "" {
		if err := checkAutoconf(c.Autoconf, formLong); err != nil {
			return nil, err
		}
	}
	if err := c.parseTail(f[7:]); err != nil {
		return nil, err
	}
	if !client.IsValid() {
		if c.hasAny(offWords) {
			return nil, errors.New("static configuration without a client address")
		}
		return c, nil
	}
	for _, a := range []struct {
		what string
		a    netip.Addr
	}{{"peer", c.Server}, {"gateway", c.Gateway}} {
		if a.a.IsValid() && a.a.Is4() != client.Is4() {
			return nil, fmt.Errorf("the %s %s and the client address %s are not of one IP version", a.what, a.a, client)
		}
	}
	if bits < 0 {
		if client.Is6() {
			return nil, fmt.Errorf("IPv6 address %s needs a prefix length (the netmask field, e.g. 64)", client)
		}
		bits = ClassfulBits(client)
	}
	c.Addr = netip.PrefixFrom(client, bits)
	return c, nil
}

// parseTail reads the fields after AUTOCONF: [MTU][:MAC] (an MTU, or nothing, then a MAC) or
// [DNS1][:DNS2][:NTP].
func (c *IPConfig) parseTail(t []string) error {
	if len(t) == 0 {
		return nil
	}
	if isDigits(t[0]) || (t[0] == "" && isMAC(strings.Join(t[1:], ":"))) {
		var err error
		if c.MTU, c.MAC, err = parseMTUMAC(t); err != nil {
			return fmt.Errorf("after the autoconf field, want [MTU][:MAC] or [DNS1][:DNS2][:NTP]: %w", err)
		}
		return nil
	}
	if len(t) > 3 {
		return errors.New("too many fields: after the autoconf field, want [MTU][:MAC] or [DNS1][:DNS2][:NTP]")
	}
	for i, s := range t {
		what := "DNS server"
		if i == 2 {
			what = "NTP server"
		}
		a, err := parseAddrField(s, what)
		switch {
		case err != nil:
			return err
		case i == 2:
			c.NTP = a
		case a.IsValid():
			c.DNS = append(c.DNS, a)
		}
	}
	return nil
}

// parseMTUMAC reads [MTU][:MAC]; the MAC's colons made it several fields.
func parseMTUMAC(t []string) (mtu int, mac net.HardwareAddr, err error) {
	if len(t) == 0 {
		return 0, nil, nil
	}
	if t[0] != "" {
		if mtu, err = parseMTU(t[0]); err != nil {
			return 0, nil, err
		}
	}
	if m := strings.Join(t[1:], ":"); m != "" {
		if mac, err = parseMAC(m); err != nil {
			return 0, nil, err
		}
	}
	return mtu, mac, nil
}

func parseMTU(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if !isDigits(s) || err != nil || n < 68 || n > 65535 {
		return 0, fmt.Errorf("MTU %q is not a number from 68 to 65535", s)
	}
	return n, nil
}

// parseMAC reads a unicast Ethernet address, with colons or dashes.
func parseMAC(s string) (net.HardwareAddr, error) {
	mac, err := net.ParseMAC(s)
	switch {
	case err != nil || len(mac) != 6:
		return nil, fmt.Errorf("%q is not a MAC address like 52:54:00:12:34:56", s)
	case mac[0]&1 != 0:
		return nil, fmt.Errorf("%s is a multicast address, not a NIC's", mac)
	}
	return mac, nil
}

func isMAC(s string) bool {
	_, err := parseMAC(s)
	return err == nil
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// splitFields splits a value at colons outside brackets: an IPv6 address is one field.
func splitFields(v string) ([]string, error) {
	var out []string
	start, open := 0, false
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '[':
			if open {
				return nil, fmt.Errorf("%q: a [ inside brackets", v)
			}
			open = true
		case ']':
			if !open {
				return nil, fmt.Errorf("%q: a ] without its [", v)
			}
			open = false
		case ':':
			if !open {
				out = append(out, v[start:i])
				start = i + 1
			}
		}
	}
	if open {
		return nil, fmt.Errorf("%q: a [ without its ]", v)
	}
	return append(out, v[start:]), nil
}

// parseAddrPrefix reads an address with an optional prefix length: A, A/N, [A], [A/N] or
// [A]/N. bits is -1 without one; IPv6 must be bracketed (its colons would split the field);
// for IPv4, N may be a dotted netmask.
func parseAddrPrefix(s, what string) (a netip.Addr, bits int, err error) {
	if s == "" {
		return netip.Addr{}, -1, nil
	}
	body, suffix, bracketed := s, "", false
	if rest, ok := strings.CutPrefix(s, "["); ok {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return netip.Addr{}, -1, fmt.Errorf("%s %q: a [ without its ]", what, s)
		}
		body, suffix, bracketed = rest[:end], rest[end+1:], true
		if suffix != "" && suffix[0] != '/' {
			return netip.Addr{}, -1, fmt.Errorf("%s %q: text after the ]", what, s)
		}
	}
	if i := strings.IndexByte(body, '/'); i >= 0 {
		if suffix != "" {
			return netip.Addr{}, -1, fmt.Errorf("%s %q has two prefix lengths", what, s)
		}
		body, suffix = body[:i], body[i:]
	}
	a, err = netip.ParseAddr(body)
	if err != nil || a.Zone() != "" || (a.Is6() && !bracketed) {
		return netip.Addr{}, -1, fmt.Errorf("%s %q is not an IPv4 address or an [IPv6] address", what, s)
	}
	bits = -1
	if suffix != "" {
		if bits, err = parseMask(suffix[1:], a.Is6()); err != nil {
			return netip.Addr{}, -1, fmt.Errorf("%s %q: %w", what, s, err)
		}
	}
	return a, bits, nil
}

// parseAddrField reads an address without a prefix length.
func parseAddrField(s, what string) (netip.Addr, error) {
	a, bits, err := parseAddrPrefix(s, what)
	if err == nil && bits >= 0 {
		err = fmt.Errorf("%s %q: a prefix length is not supported here", what, s)
	}
	return a, err
}

// parseMask reads a prefix length, or for IPv4 a dotted netmask.
func parseMask(s string, v6 bool) (int, error) {
	limit := 32
	if v6 {
		limit = 128
	}
	if isDigits(s) {
		n, err := strconv.Atoi(s)
		if err != nil || n > limit {
			return 0, fmt.Errorf("netmask %q is not a prefix length from 0 to %d", s, limit)
		}
		return n, nil
	}
	m, err := netip.ParseAddr(s)
	if err != nil || !m.Is4() || v6 {
		return 0, fmt.Errorf("netmask %q is not an IPv4 netmask or a prefix length", s)
	}
	ones, size := net.IPMask(m.AsSlice()).Size()
	if size == 0 {
		return 0, fmt.Errorf("netmask %q is not contiguous", s)
	}
	return ones, nil
}

// checkIfName accepts a Linux interface name as the parameters can carry it: 1 to 15
// printable ASCII characters, not "." or "..", and none of the parameters' separators.
func checkIfName(s string) error {
	switch {
	case s == "":
		return errors.New("empty interface name")
	case len(s) > 15:
		return fmt.Errorf("%q is not an interface name: longer than 15 characters", s)
	case s == "." || s == "..":
		return fmt.Errorf("%q is not an interface name", s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`/:,;[]=%"\`, c) >= 0 {
			return fmt.Errorf("%q is not an interface name: it has %q", s, c)
		}
	}
	return nil
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

// String renders c as the value of ip=, in the shortest form that parses back to c: the
// autoconf alone, IF:AUTOCONF[:MTU[:MAC]], or the long form (IPv4 netmasks dotted, as the
// kernel's own ip= wants them). An IPConfig with both an MTU or MAC and DNS or NTP servers,
// which ParseIP never returns, renders its MTU and MAC only.
func (c IPConfig) String() string {
	var tail string
	switch {
	case c.MTU != 0 || c.MAC != nil:
		tail = ":"
		if c.MTU != 0 {
			tail += strconv.Itoa(c.MTU)
		}
		if c.MAC != nil {
			tail += ":" + c.MAC.String()
		}
	case len(c.DNS) > 0 || c.NTP.IsValid():
		f := []string{"", "", ""}
		for i, d := range c.DNS[:min(len(c.DNS), 2)] {
			f[i] = addrString(d)
		}
		f[2] = addrString(c.NTP)
		tail = ":" + strings.TrimRight(strings.Join(f, ":"), ":")
	}
	short := !c.Addr.IsValid() && !c.Server.IsValid() && !c.Gateway.IsValid() && c.Hostname == "" &&
		len(c.DNS) == 0 && !c.NTP.IsValid() && c.Autoconf != "" && !slices.Contains(c.Methods(), "static")
	switch {
	case short && c.Device == "" && tail == "":
		return c.Autoconf
	case short && c.Device != "" && !isAddrField(c.Device):
		return c.Device + ":" + c.Autoconf + tail
	}
	var client, mask string
	if c.Addr.IsValid() {
		client = addrString(c.Addr.Addr())
		mask = strconv.Itoa(c.Addr.Bits())
		if c.Addr.Addr().Is4() {
			mask = net.IP(net.CIDRMask(c.Addr.Bits(), 32)).String()
		}
	}
	return strings.Join([]string{client, addrString(c.Server), addrString(c.Gateway), mask, c.Hostname, c.Device, c.Autoconf}, ":") + tail
}

// addrString writes an address as the parameters do: IPv6 in brackets, "" for none.
func addrString(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return ""
	case a.Is6():
		return "[" + a.String() + "]"
	}
	return a.String()
}
