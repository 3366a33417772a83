package netup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/vishvananda/netlink"
)

// DefaultLACPTimeout bounds the wait for an 802.3ad partner. With lacp_rate=fast a switch
// answers within a few seconds; with slow it still answers the first LACPDU at once, but a
// port that missed it waits for the next one, 30 s later.
const DefaultLACPTimeout = 30 * time.Second

// lacpGrace is how long Up waits, once the aggregator has a partner and a first port, for the
// bond's other ports to join it: a member without a cable never will.
const lacpGrace = 3 * time.Second

// sysClassNet is where the bonding driver's options are written (a variable for tests).
var sysClassNet = "/sys/class/net"

// applyTopology renames NICs, creates bonds and VLANs as t says, and returns the bonds' state.
// What exists already with the right kind (an earlier Up in the recovery loop made it) is
// reused, so Up can run again.
func applyTopology(ctx context.Context, c Config, t topology) ([]BondState, error) {
	deadline := time.Now().Add(c.LinkTimeout)
	for _, r := range t.renames {
		if err := rename(ctx, deadline, r); err != nil {
			return nil, err
		}
	}
	if len(t.bonds) > 0 {
		c.loadModule("bonding")
	}
	if len(t.vlans) > 0 {
		c.loadModule("8021q")
	}
	var states []BondState
	for _, b := range t.bonds {
		var mac net.HardwareAddr
		if tb := t.bondUnder(t.target); tb != nil && tb.Name == b.Name {
			mac = t.bootMAC
		}
		st, err := makeBond(ctx, c, deadline, b, mac)
		if err != nil {
			return nil, fmt.Errorf("bond %s: %w", b.Name, err)
		}
		states = append(states, st)
	}
	for _, v := range t.vlans {
		if err := makeVLAN(ctx, deadline, v); err != nil {
			return nil, fmt.Errorf("vlan %s: %w", v.Name, err)
		}
		c.Logf("netup: %s: VLAN %d on %s", v.Name, v.ID, v.Parent)
	}
	return states, nil
}

// loadModule asks /init to load a driver (bonding, 8021q); a kernel with it built in, or a
// failure, is found out when the link is created.
func (c Config) loadModule(name string) {
	if c.LoadModule == nil {
		return
	}
	if err := c.LoadModule(name); err != nil {
		c.Logf("netup: loading %s: %v", name, err)
	}
}

// rename gives the NIC with r.MAC the name r.Name (ifname=). A link may only be renamed while
// it is down.
func rename(ctx context.Context, deadline time.Time, r cmdline.IfName) error {
	link, err := waitLink(ctx, deadline, func(l netlink.Link) bool {
		return bytes.Equal(l.Attrs().HardwareAddr, r.MAC) && l.Attrs().MasterIndex == 0 && candidate(l)
	})
	if errors.Is(err, errDeadline) {
		return fmt.Errorf("ifname=%s: %w: no NIC with MAC %s", r, ErrNoLink, r.MAC)
	}
	if err != nil {
		return err
	}
	if link.Attrs().Name == r.Name {
		return nil
	}
	if other, err := netlink.LinkByName(r.Name); err == nil {
		return fmt.Errorf("ifname=%s: the name %s is taken by the NIC with MAC %s", r, r.Name, other.Attrs().HardwareAddr)
	}
	if err := netlink.LinkSetDown(link); err != nil {
		return fmt.Errorf("ifname=%s: setting %s down: %w", r, link.Attrs().Name, err)
	}
	if err := netlink.LinkSetName(link, r.Name); err != nil {
		return fmt.Errorf("ifname=%s: renaming %s: %w", r, link.Attrs().Name, err)
	}
	return nil
}

// makeBond creates the bond (or takes the one there), sets its options, enslaves its NICs,
// sets it up and, in 802.3ad mode, waits for the LACP partner (see waitLACP). mac, if not nil,
// becomes the bond's MAC (BOOTIF='s NIC among the members).
func makeBond(ctx context.Context, c Config, deadline time.Time, b cmdline.Bond, mac net.HardwareAddr) (BondState, error) {
	st := BondState{Bond: b}
	link, err := netlink.LinkByName(b.Name)
	switch {
	case err == nil && link.Type() != "bond":
		return st, fmt.Errorf("%s exists and is a %s, not a bond", b.Name, link.Type())
	case err != nil:
		attrs := netlink.NewLinkAttrs()
		attrs.Name = b.Name
		if err := netlink.LinkAdd(netlink.NewLinkBond(attrs)); err != nil {
			return st, fmt.Errorf("creating it: %w (is the bonding driver in the initramfs?)", err)
		}
		if link, err = netlink.LinkByName(b.Name); err != nil {
			return st, err
		}
	}
	// A bond without slaves is configured, whether made here or found: loading the bonding
	// driver creates bond0 by itself (max_bonds=1), in balance-rr. One with slaves was
	// configured by an earlier Up.
	if len(slavesOf(link)) == 0 {
		// Options such as the mode can only change while the bond is down.
		if err := netlink.LinkSetDown(link); err != nil {
			return st, fmt.Errorf("setting it down: %w", err)
		}
		// The bonding driver parses its options itself, by the names and values bond= uses
		// (modinfo bonding): writing them to its sysfs files, as dracut does, takes every one
		// of them; netlink's typed Bond fields know only some, and only by name.
		for _, o := range b.Options {
			if o.Name == "primary" || o.Name == "active_slave" {
				continue // need the slaves
			}
			if err := bondOption(b.Name, o); err != nil {
				return st, err
			}
		}
	}
	if mac != nil && !bytes.Equal(link.Attrs().HardwareAddr, mac) {
		if err := netlink.LinkSetHardwareAddr(link, mac); err != nil {
			return st, fmt.Errorf("setting its MAC to BOOTIF's %s: %w", mac, err)
		}
	}
	if b.MTU > 0 {
		if err := netlink.LinkSetMTU(link, b.MTU); err != nil {
			return st, fmt.Errorf("setting MTU %d: %w", b.MTU, err)
		}
	}
	for _, name := range b.Slaves {
		s, err := waitLink(ctx, deadline, func(l netlink.Link) bool { return l.Attrs().Name == name })
		if errors.Is(err, errDeadline) {
			return st, fmt.Errorf("%w: slave %s did not appear", ErrNoLink, name)
		}
		if err != nil {
			return st, err
		}
		st.Members = append(st.Members, Member{Name: name, MAC: permanentMAC(s)})
		if s.Attrs().MasterIndex == link.Attrs().Index {
			continue
		}
		if s.Attrs().MasterIndex != 0 {
			return st, fmt.Errorf("slave %s already belongs to another interface", name)
		}
		// A NIC is enslaved while down.
		if err := netlink.LinkSetDown(s); err != nil {
			return st, fmt.Errorf("setting %s down: %w", name, err)
		}
		if err := netlink.LinkSetMasterByIndex(s, link.Attrs().Index); err != nil {
			return st, fmt.Errorf("enslaving %s: %w", name, err)
		}
	}
	for _, o := range b.Options {
		if o.Name == "primary" || o.Name == "active_slave" {
			if err := bondOption(b.Name, o); err != nil {
				return st, err
			}
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return st, fmt.Errorf("setting it up: %w", err)
	}
	if link, err = netlink.LinkByName(b.Name); err == nil {
		st.MAC = link.Attrs().HardwareAddr
	}
	c.Logf("netup: %s: %s over %s, MAC %s", b.Name, b.Mode(), strings.Join(b.Slaves, ","), st.MAC)
	if b.Mode() == "802.3ad" {
		timeout := c.LACPTimeout
		if timeout <= 0 {
			timeout = DefaultLACPTimeout
		}
		waitLACP(ctx, b.Name, &st, time.Now().Add(timeout))
		c.Logf("netup: %s", st.lacpSummary())
	}
	return st, nil
}

// bondOption writes one option to the bonding driver. arp_ip_target takes its addresses one
// by one, each with a +.
func bondOption(bond string, o cmdline.BondOption) error {
	file := filepath.Join(sysClassNet, bond, "bonding", o.Name)
	values := []string{o.Value}
	if o.Name == "arp_ip_target" {
		values = nil
		for _, a := range strings.Split(o.Value, ";") {
			values = append(values, "+"+a)
		}
	}
	for _, v := range values {
		if err := os.WriteFile(file, []byte(v), 0); err != nil {
			return fmt.Errorf("option %s=%s: the bonding driver refused it: %w", o.Name, v, err)
		}
	}
	return nil
}

// permanentMAC is a NIC's own MAC (a bond gives its members the bond's MAC).
func permanentMAC(l netlink.Link) net.HardwareAddr {
	if a := l.Attrs(); len(a.PermHWAddr) == 6 && !bytes.Equal(a.PermHWAddr, make([]byte, 6)) {
		return a.PermHWAddr
	}
	return l.Attrs().HardwareAddr
}

// waitLACP polls the bond's 802.3ad state until every member is collecting and distributing
// in the active aggregator with a partner, or lacpGrace after the first one is, or the
// deadline. It fills st.Partner and st.Ports.
func waitLACP(ctx context.Context, bond string, st *BondState, deadline time.Time) {
	var firstUp time.Time
	for {
		readLACP(bond, st)
		if st.LACPUp() {
			if firstUp.IsZero() {
				firstUp = time.Now()
			}
			if st.Ports == len(st.Members) || time.Since(firstUp) >= lacpGrace {
				return
			}
		}
		if sleepUntil(ctx, deadline) != nil {
			return
		}
	}
}

// readLACP reads the active aggregator's partner and counts its ports that collect and
// distribute, from the bonding driver's sysfs files (ad_partner_mac, ad_aggregator, and each
// member's bonding_slave/ad_aggregator_id and ad_actor_oper_port_state). They are read there,
// not from netlink's IFLA_BOND_AD_INFO, because the driver fills that attribute only on
// request with the full link info, and the member's state is the same either way.
func readLACP(bond string, st *BondState) {
	st.Partner, st.Ports = nil, 0
	read := func(parts ...string) string {
		b, _ := os.ReadFile(filepath.Join(append([]string{sysClassNet}, parts...)...))
		return strings.TrimSpace(string(b))
	}
	if p, err := net.ParseMAC(read(bond, "bonding", "ad_partner_mac")); err == nil && !bytes.Equal(p, make([]byte, 6)) {
		st.Partner = p
	}
	agg := read(bond, "bonding", "ad_aggregator")
	if agg == "" {
		return
	}
	for _, m := range st.Members {
		state, err := strconv.Atoi(read(m.Name, "bonding_slave", "ad_actor_oper_port_state"))
		want := lacpSync | lacpCollecting | lacpDistributing
		if err == nil && read(m.Name, "bonding_slave", "ad_aggregator_id") == agg && state&want == want {
			st.Ports++
		}
	}
}

// makeVLAN creates the 802.1Q interface on its parent (or takes the one there) and sets both up.
func makeVLAN(ctx context.Context, deadline time.Time, v cmdline.VLAN) error {
	parent, err := waitLink(ctx, deadline, func(l netlink.Link) bool { return l.Attrs().Name == v.Parent })
	if errors.Is(err, errDeadline) {
		return fmt.Errorf("%w: its parent %s did not appear", ErrNoLink, v.Parent)
	}
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(parent); err != nil {
		return fmt.Errorf("setting %s up: %w", v.Parent, err)
	}
	link, err := netlink.LinkByName(v.Name)
	if err == nil {
		vl, ok := link.(*netlink.Vlan)
		if !ok || vl.VlanId != v.ID || vl.ParentIndex != parent.Attrs().Index {
			return fmt.Errorf("%s exists and is not VLAN %d on %s", v.Name, v.ID, v.Parent)
		}
	} else {
		attrs := netlink.NewLinkAttrs()
		attrs.Name, attrs.ParentIndex = v.Name, parent.Attrs().Index
		link = &netlink.Vlan{LinkAttrs: attrs, VlanId: v.ID}
		if err := netlink.LinkAdd(link); err != nil {
			return fmt.Errorf("creating VLAN %d on %s: %w (is 8021q in the initramfs?)", v.ID, v.Parent, err)
		}
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("setting it up: %w", err)
	}
	return nil
}

// slavesOf lists the links enslaved to link.
func slavesOf(link netlink.Link) []netlink.Link {
	links, err := linkList()
	if err != nil {
		return nil
	}
	var out []netlink.Link
	for _, l := range links {
		if l.Attrs().MasterIndex == link.Attrs().Index {
			out = append(out, l)
		}
	}
	return out
}
