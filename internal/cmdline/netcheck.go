package cmdline

import (
	"fmt"
	"slices"
	"strings"
)

// finish runs the checks that need the whole line and returns the network with the items
// they refused taken out, and errs followed by one *ParamError per refused item (in the order
// of the parameters). A later parameter for the same thing (ip= for the same interface and IP
// version, vlan=, bond= or ifname= of the same name, rd.route= to the same destination)
// replaces the earlier one, as the kernel's own repeated parameters do: an operator who
// appends ip=... to a line at the menu means it to win.
func (b *netBuilder) finish(params []Param, errs []error) (Network, []error) {
	k := &checker{params: params, errs: errs}
	n, f := &b.n, &b.from

	keep := k.keepLast(f.ifname, "ifname", func(i int) string { return n.IfNames[i].String() }, func(i, j int) bool {
		x, y := n.IfNames[i], n.IfNames[j]
		return x.Name == y.Name || x.MAC.String() == y.MAC.String()
	})
	n.IfNames, f.ifname = keepOnly(n.IfNames, keep), keepOnly(f.ifname, keep)
	isIfName := func(s string) bool { return slices.ContainsFunc(n.IfNames, func(x IfName) bool { return x.Name == s }) }

	keep = k.keepLast(f.bond, "bond", func(i int) string { return n.Bonds[i].String() }, func(i, j int) bool {
		return n.Bonds[i].Name == n.Bonds[j].Name
	})
	n.Bonds, f.bond = keepOnly(n.Bonds, keep), keepOnly(f.bond, keep)
	isBond := func(s string) bool { return slices.ContainsFunc(n.Bonds, func(b Bond) bool { return b.Name == s }) }
	slaveOf := map[string]string{}
	keep = k.dropBad(f.bond, func(i int) error {
		b := &n.Bonds[i]
		if isIfName(b.Name) {
			return fmt.Errorf("%s is also the name ifname= gives a NIC", b.Name)
		}
		for _, s := range b.Slaves {
			if other, ok := slaveOf[s]; ok {
				return fmt.Errorf("%s is already a slave of %s", s, other)
			}
			if isBond(s) {
				return fmt.Errorf("slave %s is a bond: a bond's slaves are NICs", s)
			}
		}
		for _, s := range b.Slaves {
			slaveOf[s] = b.Name
		}
		return nil
	})
	n.Bonds, f.bond = keepOnly(n.Bonds, keep), keepOnly(f.bond, keep)

	keep = k.keepLast(f.vlan, "vlan", func(i int) string { return n.VLANs[i].String() }, func(i, j int) bool {
		x, y := n.VLANs[i], n.VLANs[j]
		return x.Name == y.Name || x.Parent == y.Parent && x.ID == y.ID
	})
	n.VLANs, f.vlan = keepOnly(n.VLANs, keep), keepOnly(f.vlan, keep)
	isVLAN := func(s string) bool { return slices.ContainsFunc(n.VLANs, func(v VLAN) bool { return v.Name == s }) }
	// defined refuses an interface the line should define but does not: a name like a bond's
	// or a VLAN's that no bond= or vlan= gives, and a bond's slave (which carries nothing of
	// its own).
	defined := func(dev string) error {
		if b, ok := slaveOf[dev]; ok {
			return fmt.Errorf("%s is a slave of %s: configure %s", dev, b, b)
		}
		if dev == "" || isBond(dev) || isVLAN(dev) {
			return nil
		}
		if _, err := vlanID(dev); err == nil {
			return fmt.Errorf("%s is named like a VLAN, but no vlan=%s:... defines it", dev, dev)
		}
		if strings.HasPrefix(dev, "bond") {
			return fmt.Errorf("%s is named like a bond, but no bond=%s:... defines it", dev, dev)
		}
		return nil
	}
	keep = k.dropBad(f.vlan, func(i int) error {
		v := &n.VLANs[i]
		switch {
		case isBond(v.Name):
			return fmt.Errorf("%s is also a bond", v.Name)
		case isVLAN(v.Parent):
			return fmt.Errorf("%s is a VLAN: a VLAN's parent is a NIC or a bond", v.Parent)
		}
		return defined(v.Parent)
	})
	n.VLANs, f.vlan = keepOnly(n.VLANs, keep), keepOnly(f.vlan, keep)

	keep = k.keepLast(f.ip, "ip", func(i int) string { return n.IPs[i].String() }, func(i, j int) bool {
		x, y := &n.IPs[i], &n.IPs[j]
		return x.Device == y.Device && (x.IPv4() && y.IPv4() || x.IPv6() && y.IPv6())
	})
	n.IPs, f.ip = keepOnly(n.IPs, keep), keepOnly(f.ip, keep)
	keep = k.dropBad(f.ip, func(i int) error {
		c := &n.IPs[i]
		if c.MAC != nil && isIfName(c.Device) {
			return fmt.Errorf("it sets the MAC address of %s, which ifname= finds by its MAC: use one or the other", c.Device)
		}
		return defined(c.Device)
	})
	n.IPs, f.ip = keepOnly(n.IPs, keep), keepOnly(f.ip, keep)

	keep = k.keepLast(f.route, "rd.route", func(i int) string { return n.Routes[i].String() }, func(i, j int) bool {
		return n.Routes[i].Dst == n.Routes[j].Dst && n.Routes[i].Device == n.Routes[j].Device
	})
	n.Routes, f.route = keepOnly(n.Routes, keep), keepOnly(f.route, keep)
	keep = k.dropBad(f.route, func(i int) error { return defined(n.Routes[i].Device) })
	n.Routes, f.route = keepOnly(n.Routes, keep), keepOnly(f.route, keep)

	// In the order of the line; an error about the whole line (an open quote) first.
	slices.SortStableFunc(k.errs, func(a, b error) int { return errIndex(a) - errIndex(b) })
	return b.n, k.errs
}

func errIndex(err error) int {
	if pe, ok := err.(*ParamError); ok {
		return pe.Index
	}
	return -1
}

// checker reports the items the checks refuse. Items are counted by their index in a kind's
// list; from maps them to their parameters.
type checker struct {
	params []Param
	errs   []error
}

func (k *checker) report(at int, err error) {
	p := k.params[at]
	k.errs = append(k.errs, &ParamError{Key: p.Key, Value: p.Value, Index: at, Err: err})
}

// keepLast returns which items stay: those that no later item is the same as. It reports the
// others as replaced.
func (k *checker) keepLast(from []int, key string, str func(int) string, same func(i, j int) bool) []bool {
	keep := make([]bool, len(from))
	for i := range from {
		keep[i] = true
		for j := i + 1; j < len(from); j++ {
			if same(i, j) {
				keep[i] = false
				k.report(from[i], fmt.Errorf("replaced by the later %s=%s", key, str(j)))
				break
			}
		}
	}
	return keep
}

// dropBad returns which items stay: those bad, called in order, does not refuse. It reports
// the others.
func (k *checker) dropBad(from []int, bad func(int) error) []bool {
	keep := make([]bool, len(from))
	for i := range from {
		err := bad(i)
		if err != nil {
			k.report(from[i], err)
		}
		keep[i] = err == nil
	}
	return keep
}

func keepOnly[T any](items []T, keep []bool) []T {
	var out []T
	for i, x := range items {
		if keep[i] {
			out = append(out, x)
		}
	}
	return out
}

// BootIP is the ip= that /init acts on (Config.IP): the last one that configures IPv4 and has
// no IPv6 address, else the last one (IPv6 only); nil if there is none. An ip= of the other IP
// version for the same interface is applied with it (ip=eth0:dhcp ip=eth0:dhcp6).
func (n *Network) BootIP() *IPConfig {
	for i := len(n.IPs) - 1; i >= 0; i-- {
		if c := n.IPs[i]; c.IPv4() && !c.Addr.Addr().Is6() {
			return &c
		}
	}
	if len(n.IPs) > 0 {
		c := n.IPs[len(n.IPs)-1]
		return &c
	}
	return nil
}
