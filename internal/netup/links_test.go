package netup

import (
	"net"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/cmdline"
)

// TestMakeTopology: which interface gets the address, and which MAC a bond takes, from the
// command line's network parameters; bad combinations are refused with what is wrong.
func TestMakeTopology(t *testing.T) {
	boot, _ := net.ParseMAC("52:54:00:00:00:02")
	for _, tt := range []struct {
		line, bootif string
		target       string
		bootMAC      bool
		err          string
	}{
		{line: "ip=dhcp"},
		{line: "ip=eth1:dhcp", bootif: "01-52-54-00-00-00-02"}, // a NIC: BOOTIF= still decides, as before
		{line: "vlan=vlan42:eth0", target: "vlan42"},
		{line: "vlan=vlan42:eth0 vlan=eth1.7:eth1 ip=eth1.7:dhcp", target: "eth1.7"},
		{line: "bond=bond0:eth0,eth1:mode=802.3ad", target: "bond0"},
		{line: "bond=bond0:eth0,eth1:mode=802.3ad", bootif: "01-52-54-00-00-00-02", target: "bond0", bootMAC: true},
		{line: "bond=bond0:eth0,eth1:mode=4 vlan=bond0.42:bond0", bootif: "01-52-54-00-00-00-02", target: "bond0.42", bootMAC: true},
		{line: "vlan=vlan42:eth0 bond=bond0:eth1,eth2", bootif: "01-52-54-00-00-00-02", target: "vlan42"},
		{line: "bond=bond0:eth0,eth1 bond=bond0:eth2,eth3", err: "bond bond0 is given twice"},
		{line: "bond=bond0:eth0,eth1 vlan=bond0:eth2", err: "interface bond0 is given twice"},
		{line: "vlan=vlan42:eth0 bond=bond0:vlan42,eth1", err: "slave vlan42 is a bond or a VLAN"},
		{line: "vlan=vlan42:eth0 vlan=vlan43:vlan42", err: "its parent vlan42 is a VLAN"},
	} {
		c, problems := cmdline.Parse(tt.line + " BOOTIF=" + tt.bootif)
		if tt.bootif == "" {
			c, problems = cmdline.Parse(tt.line)
		}
		if len(problems) > 0 && tt.err != "" {
			t.Logf("%s: refused by the parser already: %v", tt.line, problems)
			continue
		}
		if len(problems) > 0 {
			t.Fatalf("%s: %v", tt.line, problems)
		}
		topo, err := makeTopology(Config{BootIF: c.BootIF, IP: c.IP, Net: &c.Network})
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.line, err)
			continue
		}
		if topo.target != tt.target {
			t.Errorf("%s: target %q, want %q", tt.line, topo.target, tt.target)
		}
		if got := topo.bootMAC != nil; got != tt.bootMAC || got && topo.bootMAC.String() != boot.String() {
			t.Errorf("%s: bond MAC %v, want BOOTIF's: %v", tt.line, topo.bootMAC, tt.bootMAC)
		}
	}
}

// TestLACPSummary: the console line names the partner and the ports, or says there is none.
func TestLACPSummary(t *testing.T) {
	p, _ := net.ParseMAC("02:00:00:00:00:01")
	st := BondState{Bond: cmdline.Bond{Name: "bond0"}, Members: []Member{{Name: "eth0"}, {Name: "eth1"}}, Partner: p, Ports: 2}
	if got, want := st.lacpSummary(), "bond0: LACP up with partner 02:00:00:00:00:01, 2 of 2 ports"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	st.Partner, st.Ports = nil, 0
	if got := st.lacpSummary(); !strings.Contains(got, "no LACP partner on 2 ports") {
		t.Errorf("got %q", got)
	}
}
