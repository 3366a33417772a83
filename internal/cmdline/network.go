package cmdline

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Network is the network part of the command line, in dracut's syntax (dracut.cmdline(7)):
// ip= (repeatable), vlan=, bond=, ifname=, rd.route=, nameserver= and rd.net.timeout.*. A menu
// entry's network: block parses into the same value (ParseNetwork). Params renders it back,
// for a kexec'd kernel.
type Network struct {
	IPs         []IPConfig // ip=, in order; at most one per interface and IP version
	VLANs       []VLAN
	Bonds       []Bond
	IfNames     []IfName
	Routes      []Route
	Nameservers []netip.Addr
	Timeouts    NetTimeouts
}

// VLAN is vlan=NAME:PARENT, an 802.1Q interface on a NIC or a bond.
type VLAN struct {
	Name   string // vlan0042, vlan42, eth0.0042 or eth0.42: dracut's four naming styles
	Parent string
	ID     int // 1 to 4094, from the name
}

func (v VLAN) String() string { return v.Name + ":" + v.Parent }

// Bond is bond=NAME:SLAVES:OPTIONS[:MTU]: a bonding interface over NICs. The bare parameter
// bond (and bond=NAME) mean dracut's default, bond0 (NAME) over eth0,eth1 in mode balance-rr.
type Bond struct {
	Name    string
	Slaves  []string
	Options []BondOption // in order, as given
	MTU     int          // 0 when not given
}

// BondOption is one of a bond's options, as the bonding driver names them (modinfo bonding).
type BondOption struct{ Name, Value string }

// Option returns the value of the named option.
func (b *Bond) Option(name string) (string, bool) {
	for _, o := range b.Options {
		if o.Name == name {
			return o.Value, true
		}
	}
	return "", false
}

// bondModes are the bonding modes by number.
var bondModes = []string{"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"}

// Mode returns the bonding mode by name (802.3ad for mode=4); balance-rr when not given.
func (b *Bond) Mode() string {
	m, _ := b.Option("mode")
	if n, err := strconv.Atoi(m); err == nil && n >= 0 && n < len(bondModes) {
		return bondModes[n]
	}
	if m == "" {
		return bondModes[0]
	}
	return m
}

func (b Bond) String() string {
	s := b.Name + ":" + strings.Join(b.Slaves, ",")
	opts := make([]string, len(b.Options))
	for i, o := range b.Options {
		opts[i] = o.Name + "=" + o.Value
	}
	switch {
	case b.MTU != 0:
		s += ":" + strings.Join(opts, ",") + ":" + strconv.Itoa(b.MTU)
	case len(opts) > 0:
		s += ":" + strings.Join(opts, ",")
	}
	return s
}

// IfName is ifname=NAME:MAC: the NIC with that MAC is renamed NAME.
type IfName struct {
	Name string
	MAC  net.HardwareAddr
}

func (n IfName) String() string { return n.Name + ":" + n.MAC.String() }

// Route is rd.route=NET/PREFIX:[GW][:IF]; IPv6 as [NET/PREFIX]:[GW].
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr // invalid: on-link
	Device  string     // "" when not given
}

func (r Route) String() string {
	dst := r.Dst.String()
	if r.Dst.Addr().Is6() {
		dst = "[" + dst + "]"
	}
	s := dst + ":" + addrString(r.Gateway)
	if r.Device != "" {
		s += ":" + r.Device
	}
	return s
}

// NetTimeouts are rd.net.timeout.*=SECONDS. Each is 0 when not given (the default), and
// negative when given as 0.
type NetTimeouts struct {
	Carrier  time.Duration // until a NIC has carrier
	IfUp     time.Duration // until a link is up
	DHCP     time.Duration // of a DHCP exchange
	IfLink   time.Duration // until a link shows up
	Route    time.Duration // until a route shows up
	IPv6DAD  time.Duration // until IPv6 duplicate address detection is done
	IPv6Auto time.Duration // until IPv6 autoconfiguration has an address
}

// timeoutNames are the suffixes of rd.net.timeout.*, in NetTimeouts' order.
var timeoutNames = []string{"carrier", "ifup", "dhcp", "iflink", "route", "ipv6dad", "ipv6auto"}

func (t *NetTimeouts) field(name string) *time.Duration {
	return [...]*time.Duration{&t.Carrier, &t.IfUp, &t.DHCP, &t.IfLink, &t.Route, &t.IPv6DAD, &t.IPv6Auto}[slices.Index(timeoutNames, name)]
}

// IsNetworkParam reports whether key is one of Network's parameters.
func IsNetworkParam(key string) bool {
	switch key {
	case "ip", "vlan", "bond", "ifname", "rd.route", "nameserver":
		return true
	}
	name, ok := strings.CutPrefix(key, "rd.net.timeout.")
	return ok && slices.Contains(timeoutNames, name)
}

// Params renders the network as command-line parameters (key=value, quoted when the value has
// a space) that parse back to the same Network.
func (n *Network) Params() []string {
	var out []string
	add := func(key string, v fmt.Stringer) {
		s := v.String()
		if strings.ContainsAny(s, " \t\n\r") {
			s = `"` + s + `"`
		}
		out = append(out, key+"="+s)
	}
	for _, x := range n.IfNames {
		add("ifname", x)
	}
	for _, x := range n.Bonds {
		add("bond", x)
	}
	for _, x := range n.VLANs {
		add("vlan", x)
	}
	for _, x := range n.IPs {
		add("ip", x)
	}
	for _, x := range n.Routes {
		add("rd.route", x)
	}
	for _, x := range n.Nameservers {
		add("nameserver", x)
	}
	for _, name := range timeoutNames {
		if d := *n.Timeouts.field(name); d != 0 {
			out = append(out, fmt.Sprintf("rd.net.timeout.%s=%d", name, max(d, 0)/time.Second))
		}
	}
	return out
}

// ParseNetwork parses network parameters alone (a menu's network: block): each one must be a
// network parameter (IsNetworkParam). As with Parse, each bad one is skipped with a
// *ParamError, whose Index is its place in params.
func ParseNetwork(params []Param) (Network, []error) {
	var b netBuilder
	var errs []error
	for i, p := range params {
		err := errors.New("not a network parameter")
		if IsNetworkParam(p.Key) {
			err = b.add(p, i)
		}
		if err != nil {
			errs = append(errs, &ParamError{Key: p.Key, Value: p.Value, Index: i, Err: err})
		}
	}
	return b.finish(params, errs)
}

// netBuilder collects network parameters, remembering where each item came from for the
// checks that need the whole line.
type netBuilder struct {
	n    Network
	from struct {
		ip, vlan, bond, ifname, route []int // per item: the index of its parameter
	}
}

// add parses one network parameter, the at'th of the line, into b.
func (b *netBuilder) add(p Param, at int) error {
	v := p.Value
	switch p.Key {
	case "ip":
		c, err := ParseIP(v)
		if err != nil {
			return err
		}
		b.n.IPs = append(b.n.IPs, *c)
		b.from.ip = append(b.from.ip, at)
	case "vlan":
		x, err := parseVLAN(v)
		if err != nil {
			return err
		}
		b.n.VLANs = append(b.n.VLANs, x)
		b.from.vlan = append(b.from.vlan, at)
	case "bond":
		x, err := parseBond(v, p.HasValue)
		if err != nil {
			return err
		}
		b.n.Bonds = append(b.n.Bonds, x)
		b.from.bond = append(b.from.bond, at)
	case "ifname":
		x, err := parseIfName(v)
		if err != nil {
			return err
		}
		b.n.IfNames = append(b.n.IfNames, x)
		b.from.ifname = append(b.from.ifname, at)
	case "rd.route":
		x, err := parseRoute(v)
		if err != nil {
			return err
		}
		b.n.Routes = append(b.n.Routes, x)
		b.from.route = append(b.from.route, at)
	case "nameserver":
		a, err := parseNameserver(v)
		if err != nil {
			return err
		}
		b.n.Nameservers = append(b.n.Nameservers, a)
	default:
		d, ok := parseSeconds(v)
		if !ok || d < 0 || d%time.Second != 0 {
			return errors.New("want whole seconds, e.g. 10")
		}
		if d == 0 {
			d = -1
		}
		*b.n.Timeouts.field(strings.TrimPrefix(p.Key, "rd.net.timeout.")) = d
	}
	return nil
}

func parseVLAN(v string) (VLAN, error) {
	name, parent, ok := strings.Cut(v, ":")
	if !ok || name == "" || parent == "" {
		return VLAN{}, errors.New("want NAME:PHYDEV, e.g. vlan42:eth0 or eth0.42:eth0")
	}
	for _, s := range []string{name, parent} {
		if err := checkIfName(s); err != nil {
			return VLAN{}, err
		}
	}
	if name == parent {
		return VLAN{}, fmt.Errorf("%s is a VLAN on itself", name)
	}
	id, err := vlanID(name)
	if err != nil {
		return VLAN{}, err
	}
	return VLAN{Name: name, Parent: parent, ID: id}, nil
}

// vlanID reads the VLAN id from a name in one of dracut's four styles: vlan0042, vlan42,
// eth0.0042, eth0.42.
func vlanID(name string) (int, error) {
	digits, ok := strings.CutPrefix(name, "vlan")
	if !ok || !isDigits(digits) {
		i := strings.LastIndexByte(name, '.')
		if digits = name[i+1:]; i <= 0 || !isDigits(digits) {
			return 0, fmt.Errorf("no VLAN id in the name %q: want vlanN or DEV.N (vlan0042, vlan42, eth0.0042, eth0.42)", name)
		}
	}
	id, err := strconv.Atoi(digits)
	if err != nil || id < 1 || id > 4094 {
		return 0, fmt.Errorf("VLAN id %s (of %s) is not from 1 to 4094", digits, name)
	}
	return id, nil
}

// bondOptions are the bonding options bond= accepts, with their values: words separated by
// |, # for a number, "if" for an interface (one of the slaves), "mac", or "ip4s" for IPv4
// addresses separated by semicolons.
var bondOptions = map[string]string{
	"mode":              "balance-rr|active-backup|balance-xor|broadcast|802.3ad|balance-tlb|balance-alb|0|1|2|3|4|5|6",
	"lacp_rate":         "slow|fast|0|1",
	"lacp_active":       "on|off|0|1",
	"xmit_hash_policy":  "layer2|layer3+4|layer2+3|encap2+3|encap3+4|vlan+srcmac|0|1|2|3|4|5",
	"ad_select":         "stable|bandwidth|count|0|1|2",
	"arp_validate":      "none|active|backup|all|filter|filter_active|filter_backup|0|1|2|3|4|5|6",
	"arp_all_targets":   "any|all|0|1",
	"primary_reselect":  "always|better|failure|0|1|2",
	"fail_over_mac":     "none|active|follow|0|1|2",
	"all_slaves_active": "0|1",
	"use_carrier":       "0|1",
	"tlb_dynamic_lb":    "0|1",
	"miimon":            "#",
	"updelay":           "#",
	"downdelay":         "#",
	"peer_notif_delay":  "#",
	"arp_interval":      "#",
	"min_links":         "#",
	"resend_igmp":       "#",
	"num_grat_arp":      "#",
	"num_unsol_na":      "#",
	"packets_per_slave": "#",
	"lp_interval":       "#",
	"missed_max":        "#",
	"ad_actor_sys_prio": "#",
	"ad_user_port_key":  "#",
	"primary":           "if",
	"active_slave":      "if",
	"ad_actor_system":   "mac",
	"arp_ip_target":     "ip4s",
}

func parseBond(v string, hasValue bool) (Bond, error) {
	if !hasValue {
		v = "bond0"
	}
	f := strings.Split(v, ":")
	if len(f) > 4 {
		return Bond{}, errors.New("too many fields: want NAME:SLAVES:OPTIONS[:MTU], slaves and options separated by commas")
	}
	for len(f) < 4 {
		f = append(f, "")
	}
	b := Bond{Name: f[0]}
	if err := checkIfName(b.Name); err != nil {
		return Bond{}, fmt.Errorf("bond name: %w", err)
	}
	if !strings.Contains(v, ":") {
		// dracut's default for bond and bond=NAME.
		f[1], f[2] = "eth0,eth1", "mode=balance-rr"
	}
	if f[1] == "" {
		return Bond{}, errors.New("no slaves: want NAME:SLAVES[:OPTIONS[:MTU]], e.g. bond0:eth0,eth1:mode=802.3ad")
	}
	for _, s := range strings.Split(f[1], ",") {
		switch err := checkIfName(s); {
		case err != nil:
			return Bond{}, fmt.Errorf("slave: %w", err)
		case s == b.Name:
			return Bond{}, fmt.Errorf("%s is a slave of itself", s)
		case slices.Contains(b.Slaves, s):
			return Bond{}, fmt.Errorf("slave %s is listed twice", s)
		}
		b.Slaves = append(b.Slaves, s)
	}
	if f[2] != "" {
		for _, o := range strings.Split(f[2], ",") {
			name, val, ok := strings.Cut(o, "=")
			if err := checkBondOption(name, val, ok, &b); err != nil {
				return Bond{}, err
			}
			b.Options = append(b.Options, BondOption{Name: name, Value: val})
		}
	}
	if f[3] != "" {
		mtu, err := parseMTU(f[3])
		if err != nil {
			return Bond{}, err
		}
		b.MTU = mtu
	}
	return b, nil
}

func checkBondOption(name, val string, hasValue bool, b *Bond) error {
	kind, known := bondOptions[name]
	switch {
	case !hasValue || name == "":
		return fmt.Errorf("option %q is not NAME=VALUE (options are separated by commas, e.g. mode=802.3ad,miimon=100)", name)
	case !known:
		return fmt.Errorf("unknown bonding option %q (see modinfo bonding)", name)
	case slices.ContainsFunc(b.Options, func(o BondOption) bool { return o.Name == name }):
		return fmt.Errorf("option %s is given twice", name)
	}
	var ok bool
	switch kind {
	case "#":
		ok = isDigits(val) && len(val) <= 9
	case "if":
		ok = slices.Contains(b.Slaves, val)
		if !ok {
			return fmt.Errorf("%s=%s is not one of the slaves (%s)", name, val, strings.Join(b.Slaves, ","))
		}
	case "mac":
		ok = isMAC(val) && !strings.Contains(val, ":")
		if !ok {
			return fmt.Errorf("%s=%q: want a MAC address with dashes (52-54-00-12-34-56): colons separate bond='s fields", name, val)
		}
	case "ip4s":
		ok = val != ""
		for _, s := range strings.Split(val, ";") {
			if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
				ok = false
			}
		}
	default:
		ok = slices.Contains(strings.Split(kind, "|"), val)
	}
	if !ok {
		want := strings.ReplaceAll(kind, "|", ", ")
		switch kind {
		case "#":
			want = "a number"
		case "ip4s":
			want = "IPv4 addresses separated by semicolons"
		}
		return fmt.Errorf("%s=%q: want %s", name, val, want)
	}
	return nil
}

func parseIfName(v string) (IfName, error) {
	name, mac, ok := strings.Cut(v, ":")
	if !ok {
		return IfName{}, errors.New("want NAME:MAC, e.g. bootnet:52:54:00:12:34:56")
	}
	if err := checkIfName(name); err != nil {
		return IfName{}, err
	}
	m, err := parseMAC(mac)
	if err != nil {
		return IfName{}, err
	}
	return IfName{Name: name, MAC: m}, nil
}

func parseRoute(v string) (Route, error) {
	f, err := splitFields(v)
	if err != nil {
		return Route{}, err
	}
	if len(f) < 2 || len(f) > 3 {
		return Route{}, errors.New("want NET/PREFIX:GATEWAY[:IF] (IPv6 in brackets: [2001:db8::/32]:[2001:db8::1])")
	}
	a, bits, err := parseAddrPrefix(f[0], "destination")
	if err != nil {
		return Route{}, err
	}
	if bits < 0 {
		return Route{}, fmt.Errorf("destination %q has no prefix length: want NET/PREFIX", f[0])
	}
	r := Route{Dst: netip.PrefixFrom(a, bits)}
	if m := r.Dst.Masked(); m != r.Dst {
		return Route{}, fmt.Errorf("destination %s has host bits set: want %s", r.Dst, m)
	}
	if r.Gateway, err = parseAddrField(f[1], "gateway"); err != nil {
		return Route{}, err
	}
	if r.Gateway.IsValid() && r.Gateway.Is4() != a.Is4() {
		return Route{}, fmt.Errorf("the gateway %s and the destination %s are not of one IP version", r.Gateway, r.Dst)
	}
	if len(f) == 3 && f[2] != "" {
		if err := checkIfName(f[2]); err != nil {
			return Route{}, err
		}
		r.Device = f[2]
	}
	if !r.Gateway.IsValid() && r.Device == "" {
		return Route{}, errors.New("neither a gateway nor an interface: want NET/PREFIX:GATEWAY[:IF] or NET/PREFIX::IF")
	}
	return r, nil
}

func parseNameserver(v string) (netip.Addr, error) {
	s := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" || a.IsUnspecified() {
		return netip.Addr{}, errors.New("want an IPv4 or IPv6 address")
	}
	return a, nil
}

// Pending lists, one line each, the network parameters of n that are parsed and checked but
// that this /init does not act on: it configures one interface (acted, the ip= it acts on:
// Config.IP, and the ip= of the other IP version for it), with the bonds, VLANs, renames,
// routes and name servers it needs, so an ip= for
// another interface, or a route through one, is not applied. /init says so on the console
// rather than boot as if they had been.
func (n *Network) Pending(acted *IPConfig) []string {
	var out []string
	add := func(what string, params []string) {
		if len(params) > 0 {
			out = append(out, what+": "+strings.Join(params, " "))
		}
	}
	var ips, routes []string
	for i := range n.IPs {
		c := &n.IPs[i]
		if acted == nil || c.Device != acted.Device {
			ips = append(ips, "ip="+c.String())
		}
	}
	for _, r := range n.Routes {
		if r.Device != "" && (acted == nil || acted.Device != r.Device) {
			routes = append(routes, "rd.route="+r.String())
		}
	}
	add("ip= for another interface (one interface is configured)", ips)
	add("routes through another interface", routes)
	return out
}
