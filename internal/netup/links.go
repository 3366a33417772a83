package netup

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/ramboot/ramboot/internal/cmdline"
)

// topology is what Up creates before it addresses anything: NICs renamed (ifname=), bonds
// (bond=) and VLANs (vlan=), in that order, and which interface then gets the address.
type topology struct {
	renames []cmdline.IfName
	bonds   []cmdline.Bond
	vlans   []cmdline.VLAN
	// target is the interface to address: ip='s device, else the first VLAN, else the
	// first bond; "" when nothing virtual is asked for (BOOTIF= or the race decide).
	target string
	// bootMAC is BOOTIF='s MAC when it names a member of the bond under target: the bond
	// takes that MAC, so the boot network still sees the NIC the firmware booted from.
	bootMAC net.HardwareAddr
}

// makeTopology reads the topology from c.Net. A VLAN on a bond is created after the bond;
// a bond's slave or a VLAN's parent that is itself created here must be created first,
// which the order bonds-then-VLANs gives (dracut has the same order).
func makeTopology(c Config) (topology, error) {
	var t topology
	if c.Net == nil {
		return t, nil
	}
	t.renames = c.Net.IfNames
	t.bonds = c.Net.Bonds
	t.vlans = c.Net.VLANs
	virtual := map[string]bool{}
	for _, b := range t.bonds {
		if virtual[b.Name] {
			return t, fmt.Errorf("bond %s is given twice", b.Name)
		}
		virtual[b.Name] = true
	}
	for _, v := range t.vlans {
		if virtual[v.Name] {
			return t, fmt.Errorf("interface %s is given twice (vlan= and bond=, or two vlan=)", v.Name)
		}
		virtual[v.Name] = true
	}
	for _, b := range t.bonds {
		for _, s := range b.Slaves {
			if virtual[s] {
				return t, fmt.Errorf("bond %s: slave %s is a bond or a VLAN; bonds are made of NICs", b.Name, s)
			}
		}
	}
	for _, v := range t.vlans {
		if slices.ContainsFunc(t.vlans, func(o cmdline.VLAN) bool { return o.Name == v.Parent }) {
			return t, fmt.Errorf("vlan %s: its parent %s is a VLAN (no stacked VLANs)", v.Name, v.Parent)
		}
	}
	switch {
	case c.IP != nil && c.IP.Device != "":
		// ip= names the interface; a NIC named there is chosen as before (BOOTIF= first).
		if virtual[c.IP.Device] {
			t.target = c.IP.Device
		}
	case len(t.vlans) > 0:
		t.target = t.vlans[0].Name
	case len(t.bonds) > 0:
		t.target = t.bonds[0].Name
	}
	if b := t.bondUnder(t.target); b != nil && c.BootIF != nil {
		t.bootMAC = c.BootIF
	}
	return t, nil
}

// bondUnder returns the bond that name is, or that the VLAN name sits on; nil if none.
func (t topology) bondUnder(name string) *cmdline.Bond {
	for _, v := range t.vlans {
		if v.Name == name {
			name = v.Parent
		}
	}
	for i := range t.bonds {
		if t.bonds[i].Name == name {
			return &t.bonds[i]
		}
	}
	return nil
}

func (t topology) String() string {
	var parts []string
	for _, r := range t.renames {
		parts = append(parts, "rename "+r.MAC.String()+" to "+r.Name)
	}
	for _, b := range t.bonds {
		parts = append(parts, fmt.Sprintf("bond %s (%s) over %s", b.Name, b.Mode(), strings.Join(b.Slaves, ",")))
	}
	for _, v := range t.vlans {
		parts = append(parts, fmt.Sprintf("vlan %d %s on %s", v.ID, v.Name, v.Parent))
	}
	return strings.Join(parts, ", ")
}

// BondState is what Up found of a bond it created: its members, and for 802.3ad the LACP
// partner and how many members the active aggregator has.
type BondState struct {
	Bond    cmdline.Bond
	MAC     net.HardwareAddr
	Members []Member
	// Partner is the LACP partner's system MAC (802.3ad only; nil without a partner).
	Partner net.HardwareAddr
	// Ports is the number of members collecting and distributing in the active aggregator.
	Ports int
}

// Member is one NIC of a bond.
type Member struct {
	Name string
	MAC  net.HardwareAddr // its own (permanent) MAC, not the bond's
}

// LACPUp reports whether the bond's 802.3ad aggregator has a partner and at least one port.
func (b *BondState) LACPUp() bool { return b.Partner != nil && b.Ports > 0 }

// lacpSummary is the console line for a bond after the LACP wait.
func (b *BondState) lacpSummary() string {
	if b.LACPUp() {
		return fmt.Sprintf("%s: LACP up with partner %s, %d of %d ports", b.Bond.Name, b.Partner, b.Ports, len(b.Members))
	}
	return fmt.Sprintf("%s: no LACP partner on %d ports: the switch has not answered (is the port channel configured?)", b.Bond.Name, len(b.Members))
}

// lacp port state bits (IEEE 802.1AX actor/partner state).
const (
	lacpSync         = 1 << 3
	lacpCollecting   = 1 << 4
	lacpDistributing = 1 << 5
)
