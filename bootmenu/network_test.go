package bootmenu

import (
	"os"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/cmdline"
)

func TestNetworkBlock(t *testing.T) {
	b, err := os.ReadFile("../testdata/menus/network.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseYAML(b, "network.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ entry, want string }{
		{"lacp", "bond=bond0:eth0,eth1:mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4:9000 vlan=vlan0042:bond0 " +
			"ip=vlan0042:dhcp ip=vlan0042:auto6 rd.net.timeout.carrier=10 rd.net.timeout.dhcp=30"},
		{"v6", "ifname=boot0:52:54:00:12:34:56 ip=[2001:db8::5]::[2001:db8::1]:64:rescue:boot0:none " +
			"rd.route=[2001:db8:100::/48]:[2001:db8::fe]:boot0 nameserver=2001:db8::53"},
		{"maint", "ip=eth2:dhcp ip=10.0.0.5::10.0.0.1:255.255.255.0:maint:eth3:none:10.0.0.53"},
	} {
		e, ok := m.Entry(tt.entry)
		if !ok || e.Network == nil {
			t.Fatalf("entry %s: no network", tt.entry)
		}
		if got := strings.Join(e.Network.Params(), " "); got != tt.want {
			t.Errorf("entry %s: network %s, want %s", tt.entry, got, tt.want)
		}
	}
	if e, _ := m.Entry("lacp"); e.Network.Bonds[0].Mode() != "802.3ad" || e.Network.VLANs[0].ID != 42 {
		t.Errorf("lacp: %+v", e.Network)
	}
}

func TestNetworkBlockErrors(t *testing.T) {
	entry := func(network string) string {
		return "entries:\n  - name: a\n    ramroot: http://h/a.tar\n    network:\n" + network
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"bad vlan in a list", entry("      vlan: [vlan5:eth0, vlan0:eth1]\n"),
			`menu.yaml:5: entries[0] (a): network.vlan[1]: "vlan0:eth1": VLAN id 0 (of vlan0) is not from 1 to 4094`},
		{"bad ip on its line", entry("      ip:\n        - eth0:dhcp\n        - eth1:dhcp7\n"),
			`menu.yaml:7: entries[0] (a): network.ip[1]: "eth1:dhcp7": autoconf "dhcp7" is not one of`},
		{"vlan on a slave", entry("      bond: bond0:eth0,eth1\n      vlan:\n        - vlan42:eth1\n"),
			`menu.yaml:7: entries[0] (a): network.vlan[0]: "vlan42:eth1": eth1 is a slave of bond0: configure bond0`},
		{"two ip for one interface", entry("      ip: [eth0:dhcp, eth0:on]\n"),
			`menu.yaml:5: entries[0] (a): network.ip[0]: "eth0:dhcp": replaced by the later ip=eth0:on`},
		{"slave twice", entry("      bond: bond0:eth0,eth0\n"),
			`menu.yaml:5: entries[0] (a): network.bond: "bond0:eth0,eth0": slave eth0 is listed twice`},
		{"bond options split by a flow list", entry("      bond: [bond0:eth0:mode=1,miimon=100]\n"),
			`network.bond[1]: "miimon=100"`},
		{"unquoted v6", entry("      nameserver:\n        - [2001:db8::53]\n"),
			"menu.yaml:6: entries[0] (a): network.nameserver[0]: want a string (quote a value that starts with ["},
		{"timeout", entry("      timeout:\n        carrier: soon\n"),
			`menu.yaml:6: entries[0] (a): network.timeout.carrier: "soon": want whole seconds`},
		{"timeout key", entry("      timeout: {carier: 5}\n"),
			`menu.yaml:5: entries[0] (a): unknown key "network.timeout.carier" (want carrier, ifup, dhcp, iflink, route, ipv6dad, ipv6auto); did you mean carrier?`},
		{"unknown key", entry("      vlans: vlan5:eth0\n"),
			`menu.yaml:5: entries[0] (a): unknown key "network.vlans" (want ip, vlan, bond, ifname, route, nameserver, timeout); did you mean vlan?`},
		{"not a mapping", entry("      ip=dhcp\n"), "menu.yaml:5: entries[0] (a): network: want a mapping with ip, vlan"},
		{"on an action", "entries:\n  - name: s\n    action: shell\n    network: {ip: dhcp}\n",
			"menu.yaml:4: entries[0] (s): network: only ramroot, kexec and menu entries have a network"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tt.yaml), "menu.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// TestValidateNetwork: a network built in code is checked as one read from YAML.
func TestValidateNetwork(t *testing.T) {
	m := &Menu{Timeout: -1, Entries: []Entry{{Name: "a", Title: "a", Kind: KindRamroot, Ramroot: &Ramroot{File: File{URL: "http://h/a"}},
		Network: &cmdline.Network{VLANs: []cmdline.VLAN{{Name: "vlan42", Parent: "bond0", ID: 42}}}}}}
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "entries[0] (a): network: ") || !strings.Contains(err.Error(), "no bond=bond0") {
		t.Errorf("Validate = %v, want the undefined bond", err)
	}
	m.Entries[0].Network.Bonds = []cmdline.Bond{{Name: "bond0", Slaves: []string{"eth0"}}}
	if err := m.Validate(); err != nil {
		t.Errorf("Validate = %v", err)
	}
	m.Entries[0].Kind, m.Entries[0].Ramroot = KindShell, nil
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "network: set on a shell entry") {
		t.Errorf("Validate = %v, want the shell entry refused", err)
	}
}
