package netup

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/ramboot/ramboot/internal/cmdline"
)

// KernelParams returns the network parameters, in dracut's syntax (dracut.cmdline(7)), that
// bring up the same network in a kexec'd kernel — the next ramboot, or a dracut initramfs:
//
//   - ifname=NAME:MAC for each NIC a parameter names (bond ports, a VLAN's parent, the NIC
//     with the address when there are others): the next kernel may probe NICs in another
//     order, and a name pinned by MAC keeps bond= and vlan= about the same NICs. The names
//     are this boot's, kernel names (eth0) included, which dracut accepts with a warning.
//   - bond=NAME:PORTS:OPTIONS[:MTU], vlan=NAME:PARENT (a VLAN whose name carries no id in one
//     of dracut's styles is called vlanN),
//   - ip= for the interface with the address: IF:dhcp, IF:auto6 or IF:dhcp6 (combined, as
//     dhcp,dhcp6), and the long static form for a static address, v4 or [v6] (one of each;
//     further static IPv6 addresses are not passed),
//   - rd.route=, nameserver= and rd.net.timeout.* as Net has them, and name servers of a
//     static address beyond the two ip= carries.
//
// With static, the IPv4 address is passed as static even if DHCP gave it (pxelinux's
// ipappend 1): the next kernel keeps it without asking again. A single NIC (no Links) names
// no interface: BOOTIF=, which kexec passes anyway, picks the NIC, as before. A single NIC on
// DHCPv4 alone needs no ip= at all (DHCPv4 is the default) and gets none unless static.
//
// The result parses back with cmdline.ParseNetwork. kexec.ComposeCmdline adds them only
// when the entry's own command line has no network parameters: the user's win, whole.
func (n *ImageNet) KernelParams(static bool) ([]string, error) {
	t, err := n.check()
	if err != nil {
		return nil, fmt.Errorf("network parameters for kexec: %w", err)
	}
	var out cmdline.Network
	if t.net != nil {
		out.Routes = slices.Clone(t.net.Routes)
		out.Nameservers = slices.Clone(t.net.Nameservers)
		out.Timeouts = t.net.Timeouts
	}
	names := map[string]string{} // this boot's name → the parameters'
	for _, k := range t.links {
		names[k.Name] = k.Name
		if k.Kind == ImageVLAN && !vlanNameHasID(k) {
			names[k.Name] = fmt.Sprintf("vlan%d", k.VLANID)
		}
	}
	if !t.plain {
		for _, k := range t.links {
			if k.Kind == ImageNIC && (t.under(k) || k.Name == t.top.Name) {
				out.IfNames = append(out.IfNames, cmdline.IfName{Name: k.Name, MAC: k.MAC})
			}
		}
	}
	for _, k := range t.links {
		switch k.Kind {
		case ImageBond:
			b := cmdline.Bond{Name: k.Name, Options: slices.Clone(k.BondOptions), MTU: k.MTU}
			for _, p := range t.ports(k.Name) {
				b.Slaves = append(b.Slaves, p.Name)
			}
			out.Bonds = append(out.Bonds, b)
		case ImageVLAN:
			out.VLANs = append(out.VLANs, cmdline.VLAN{Name: names[k.Name], Parent: names[k.Parent], ID: k.VLANID})
		}
	}
	device := ""
	if !t.plain {
		device = names[t.top.Name]
	}
	out.IPs, out.Nameservers = kernelIPs(t, device, static, out.Nameservers)
	return out.Params(), nil
}

// kernelIPs are the ip= parameters of the leased interface, and ns with the static name
// servers ip= has no room for.
func kernelIPs(t *imageTopo, device string, static bool, ns []netip.Addr) ([]cmdline.IPConfig, []netip.Addr) {
	l, c := t.lease, addrConfigOf(t)
	var ips []cmdline.IPConfig
	var auto []string
	staticV4 := c.static4 || (static && l.Addr.IsValid())
	switch {
	case staticV4:
		ip := cmdline.IPConfig{Addr: l.Addr, Server: l.Server, Hostname: l.Hostname, Device: device, Autoconf: "off"}
		if l.Gateway.IsValid() {
			ip.Gateway = l.Gateway
		}
		ip.DNS = slices.Clone(l.DNS[:min(len(l.DNS), 2)])
		for _, d := range l.DNS[len(ip.DNS):] {
			if !slices.Contains(ns, d) {
				ns = append(ns, d)
			}
		}
		if !validDomain(ip.Hostname) {
			ip.Hostname = ""
		}
		ips = append(ips, ip)
	case c.dhcp4:
		auto = append(auto, "dhcp")
	}
	switch {
	case c.dhcp6:
		auto = append(auto, "dhcp6")
	case c.slaac:
		auto = append(auto, "auto6")
	case c.static6:
		v6 := t.lease.V6
		ip := cmdline.IPConfig{Device: device, Autoconf: "off"}
		for _, a := range v6.Addrs {
			if a.From != "slaac" && a.From != "dhcpv6" {
				ip.Addr = a.Prefix
				break
			}
		}
		if v6.Gateway.IsValid() && v6.Gateway.Zone() == "" {
			ip.Gateway = v6.Gateway
		}
		ip.DNS = slices.Clone(v6.DNS[:min(len(v6.DNS), 2)])
		for _, d := range v6.DNS[len(ip.DNS):] {
			if !slices.Contains(ns, d) {
				ns = append(ns, d)
			}
		}
		ips = append(ips, ip)
	}
	if len(auto) > 0 && (len(auto) > 1 || auto[0] != "dhcp" || !t.plain) {
		a := cmdline.IPConfig{Device: device, Autoconf: auto[0]}
		if len(auto) > 1 {
			a.Autoconf += "," + auto[1]
		}
		ips = append([]cmdline.IPConfig{a}, ips...)
	}
	return ips, ns
}

// vlanNameHasID reports whether a VLAN's name says its id in one of dracut's four styles
// (vlan0042, vlan42, eth0.0042, eth0.42), as vlan= needs it to.
func vlanNameHasID(k ImageLink) bool {
	digits, ok := strings.CutPrefix(k.Name, "vlan")
	if !ok {
		digits, ok = strings.CutPrefix(k.Name, k.Parent+".")
	}
	id, err := strconv.Atoi(digits)
	return ok && err == nil && strings.Trim(digits, "0123456789") == "" && id == k.VLANID
}
