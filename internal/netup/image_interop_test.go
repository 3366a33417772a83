package netup

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/cmdline"
)

// The interoperability checks: what WriteImageConfig writes, read by the tools of the booted
// system as Debian 12 ships them. CI installs them (Debian packages systemd, ifupdown,
// netplan.io); elsewhere a missing one skips its test.

// needImageTool returns the first of paths (absolute, or looked up in PATH) that exists.
func needImageTool(t *testing.T, pkg string, paths ...string) string {
	t.Helper()
	for _, p := range paths {
		if filepath.IsAbs(p) {
			if m, _ := filepath.Glob(p); len(m) > 0 {
				return m[0]
			}
		} else if lp, err := exec.LookPath(p); err == nil {
			return lp
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed: Debian package %s (.ci/run must install it)", paths[0], pkg)
	}
	t.Skipf("%s not installed (Debian package %s)", paths[0], pkg)
	return ""
}

// allOptionsBond is a bond with every option bond= takes, in words and numbers, so that each
// one's rendering meets the tools.
func allOptionsBond() *ImageNet {
	links := lacpBond("mode=1,miimon=100,updelay=200,downdelay=200,primary=eth1,primary_reselect=better,"+
		"fail_over_mac=active,all_slaves_active=0,use_carrier=1,num_grat_arp=2,num_unsol_na=2,resend_igmp=1,"+
		"arp_interval=0,arp_ip_target=10.0.0.1;10.0.0.2,arp_validate=1,arp_all_targets=any,min_links=1,"+
		"ad_select=bandwidth,lacp_rate=slow,lacp_active=on,xmit_hash_policy=encap3+4,ad_actor_sys_prio=100,"+
		"ad_user_port_key=5,ad_actor_system=02-00-00-00-00-01,lp_interval=2,packets_per_slave=1,tlb_dynamic_lb=1,"+
		"peer_notif_delay=0,missed_max=2,active_slave=eth1", 1500)
	l := &Lease{Iface: "bond0", MAC: nicMAC1, Addr: pfx("10.0.0.5/24"), Gateway: ip("10.0.0.1"), DHCP: true}
	return &ImageNet{Lease: l, Links: links}
}

func interopTopologies() []struct {
	name string
	net  *ImageNet
} {
	return append(imageTopologies(), struct {
		name string
		net  *ImageNet
	}{"bond-all-options", allOptionsBond()})
}

// iniKeys parses a systemd unit-style file into "Section.Key" entries, failing on a line
// that is neither a comment, a section, nor Key=Value.
func iniKeys(t *testing.T, name string, b []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || k == "" || strings.TrimSpace(v) == "" {
				t.Errorf("%s:%d: %q is not Key=Value in a section", name, n, line)
				continue
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

// networkdDocumented are the settings ramboot writes, as systemd.network(5) and
// systemd.netdev(5) of systemd 252 (Debian 12) document them, with their values where
// they are words.
var networkdDocumented = map[string][]string{
	"Match.MACAddress": nil, "Match.PermanentMACAddress": nil, "Match.Name": nil,
	"Link.MTUBytes": nil,
	"Network.DHCP":  {"yes", "ipv4", "ipv6"}, "Network.Address": nil, "Network.Gateway": nil, "Network.DNS": nil,
	"Network.Domains": nil, "Network.IPv6AcceptRA": {"yes", "no"}, "Network.Bond": nil, "Network.VLAN": nil,
	"Network.PrimarySlave": {"yes"}, "Network.ActiveSlave": {"yes"},
	"Route.Destination": nil, "Route.Gateway": nil,
	"DHCPv4.ClientIdentifier": {"mac"},
	"DHCPv6.DUIDType":         {"link-layer"}, "DHCPv6.WithoutRA": {"solicit"}, "DHCPv6.IAID": nil,
	"NetDev.Name": nil, "NetDev.Kind": {"bond", "vlan"}, "NetDev.MACAddress": nil, "NetDev.MTUBytes": nil,
	"VLAN.Id":                 nil,
	"Bond.Mode":               {"balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"},
	"Bond.TransmitHashPolicy": {"layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4"},
	"Bond.LACPTransmitRate":   {"slow", "fast"},
	"Bond.MIIMonitorSec":      nil, "Bond.UpDelaySec": nil, "Bond.DownDelaySec": nil,
	"Bond.AdSelect":       {"stable", "bandwidth", "count"},
	"Bond.ARPIntervalSec": nil, "Bond.ARPIPTargets": nil,
	"Bond.ARPValidate":           {"none", "active", "backup", "all"},
	"Bond.ARPAllTargets":         {"any", "all"},
	"Bond.PrimaryReselectPolicy": {"always", "better", "failure"},
	"Bond.FailOverMACPolicy":     {"none", "active", "follow"},
	"Bond.AllSlavesActive":       {"yes", "no"}, "Bond.DynamicTransmitLoadBalancing": {"yes", "no"},
	"Bond.MinLinks": nil, "Bond.ResendIGMP": nil, "Bond.GratuitousARP": nil, "Bond.PacketsPerSlave": nil,
	"Bond.LearnPacketIntervalSec": nil, "Bond.AdActorSystemPriority": nil, "Bond.AdUserPortKey": nil,
	"Bond.AdActorSystem": nil,
}

// TestImageNetworkdSettings parses every .network and .netdev file written for each
// topology and checks each setting against systemd 252's documentation, and against the
// systemd-networkd binary itself: its configuration parser's table holds each
// "Section.Key" it accepts as a string, and libsystemd-shared the words of its enums.
func TestImageNetworkdSettings(t *testing.T) {
	networkd := needImageTool(t, "systemd", "/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd")
	bin, err := os.ReadFile(networkd)
	if err != nil {
		t.Fatal(err)
	}
	shared := needImageTool(t, "systemd", "/usr/lib/*/systemd/libsystemd-shared-*.so", "/lib/systemd/libsystemd-shared-*.so", "/usr/lib/systemd/libsystemd-shared-*.so")
	lib, err := os.ReadFile(shared)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tp := range interopTopologies() {
		root := layout(t, imageLayouts[0].files)
		written, err := WriteImageConfig(root, tp.net)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range written {
			if !strings.HasSuffix(name, ".network") && !strings.HasSuffix(name, ".netdev") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(root, name))
			if err != nil {
				t.Fatal(err)
			}
			for key, vals := range iniKeys(t, tp.name+name, b) {
				seen[key] = true
				words, documented := networkdDocumented[key]
				if !documented {
					t.Errorf("%s %s: %s is not a setting ramboot means to write", tp.name, name, key)
				}
				if !bytes.Contains(bin, []byte("\x00"+key+"\x00")) {
					t.Errorf("%s %s: systemd-networkd (%s) has no setting %s", tp.name, name, networkd, key)
				}
				for _, v := range vals {
					if words != nil && !slices.Contains(words, v) {
						t.Errorf("%s %s: %s=%s, want one of %v", tp.name, name, key, v, words)
					}
					// The linker shares string tails ("ipv4" may end "...ipv4"): only the end is sure.
					if words != nil && !bytes.Contains(lib, []byte(v+"\x00")) && !bytes.Contains(bin, []byte(v+"\x00")) {
						t.Errorf("%s %s: %s=%s: systemd 252 does not know the word %q", tp.name, name, key, v, v)
					}
				}
			}
		}
	}
	// The all-options bond must have reached every [Bond] setting.
	for key := range networkdDocumented {
		if strings.HasPrefix(key, "Bond.") && !seen[key] {
			t.Errorf("no topology writes %s", key)
		}
	}
}

// TestImageIfquery reads each ifupdown file back with ifupdown's own parser (ifquery):
// every stanza's method exists for its family, and each interface has the options wanted.
func TestImageIfquery(t *testing.T) {
	ifquery := needImageTool(t, "ifupdown", "ifquery", "/usr/sbin/ifquery", "/sbin/ifquery")
	for _, tp := range interopTopologies() {
		t.Run(tp.name, func(t *testing.T) {
			tpl, err := tp.net.check()
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(t.TempDir(), "interfaces")
			if err := os.WriteFile(f, []byte(renderIfupdown(tpl)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(ifquery, "-i", f, "--list", "--allow=auto").CombinedOutput()
			if err != nil {
				t.Fatalf("ifquery --list: %v\n%s", err, out)
			}
			names := slices.DeleteFunc(strings.Fields(string(out)), func(s string) bool { return s == "lo" })
			if want := ifupdownNames(tpl); !slices.Equal(names, want) {
				t.Errorf("auto interfaces %q, want %q", names, want)
			}
			for _, k := range tpl.links {
				if !slices.Contains(names, k.Name) {
					continue
				}
				out, err := exec.Command(ifquery, "-i", f, k.Name).CombinedOutput()
				if err != nil {
					t.Errorf("ifquery %s: %v\n%s", k.Name, err, out)
					continue
				}
				for _, want := range ifqueryWants(tpl, k) {
					if !strings.Contains("\n"+string(out), "\n"+want+"\n") {
						t.Errorf("ifquery %s has no %q:\n%s", k.Name, want, out)
					}
				}
			}
		})
	}
}

// ifqueryWants are lines ifquery must print for k.
func ifqueryWants(t *imageTopo, k ImageLink) []string {
	var want []string
	switch {
	case k.Master != "":
		want = append(want, "bond-master: "+k.Master)
	case k.Kind == ImageBond:
		want = append(want, "bond-slaves: none", "bond-mode: "+bondWord(cmdline.BondOption{Name: "mode", Value: mustOption(k, "mode")}))
	case k.Kind == ImageVLAN:
		want = append(want, "vlan-raw-device: "+k.Parent)
	}
	if k.MTU > 0 {
		want = append(want, fmt.Sprintf("mtu: %d", k.MTU))
	}
	l := t.lease
	if k.Name == t.top.Name && !l.DHCP && l.Addr.IsValid() {
		want = append(want, "address: "+l.Addr.Addr().String())
	}
	return want
}

func mustOption(k ImageLink, name string) string {
	v, _ := imageBondOption(&k, name)
	return v
}

// TestImageNetplanGenerate runs netplan's generator on each netplan file, as an Ubuntu-style
// image does at boot, and checks what it makes of it for networkd: the same bonds, VLANs and
// DHCP client identity, and no setting systemd-networkd 252 does not have.
func TestImageNetplanGenerate(t *testing.T) {
	generate := needImageTool(t, "netplan.io", "/usr/libexec/netplan/generate", "/usr/lib/netplan/generate", "/lib/netplan/generate")
	networkd := needImageTool(t, "systemd", "/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd")
	bin, err := os.ReadFile(networkd)
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range interopTopologies() {
		t.Run(tp.name, func(t *testing.T) {
			root := layout(t, map[string]string{"etc/netplan/": "", "etc/systemd/": ""})
			if _, err := WriteImageConfig(root, tp.net); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(generate, "--root-dir", root).CombinedOutput()
			if err != nil || bytes.Contains(out, []byte("ERROR")) || bytes.Contains(out, []byte("Error")) {
				t.Fatalf("netplan generate: %v\n%s", err, out)
			}
			files, _ := filepath.Glob(filepath.Join(root, "run/systemd/network/*"))
			all := map[string]map[string][]string{}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				all[filepath.Base(f)] = iniKeys(t, f, b)
				for key := range all[filepath.Base(f)] {
					if !strings.HasSuffix(f, ".link") && !bytes.Contains(bin, []byte("\x00"+key+"\x00")) {
						t.Errorf("%s: systemd-networkd has no setting %s", filepath.Base(f), key)
					}
				}
			}
			tpl, _ := tp.net.check()
			for _, k := range tpl.links {
				switch k.Kind {
				case ImageBond:
					nd := all["10-netplan-"+k.Name+".netdev"]
					if mode := bondWord(cmdline.BondOption{Name: "mode", Value: mustOption(k, "mode")}); !slices.Equal(nd["Bond.Mode"], []string{mode}) {
						t.Errorf("%s: Bond.Mode %q, want %s (all: %v)", k.Name, nd["Bond.Mode"], mode, nd)
					}
					for _, p := range tpl.ports(k.Name) {
						if n := all["10-netplan-"+netplanIDOf(tpl, p)+".network"]; !slices.Equal(n["Network.Bond"], []string{k.Name}) || !slices.Equal(n["Match.Name"], []string{p.Name}) {
							t.Errorf("port %s: %v, want Bond=%s matched by name", p.Name, n, k.Name)
						}
					}
				case ImageVLAN:
					nd := all["10-netplan-"+k.Name+".netdev"]
					if !slices.Equal(nd["VLAN.Id"], []string{fmt.Sprint(k.VLANID)}) {
						t.Errorf("%s: VLAN.Id %q, want %d", k.Name, nd["VLAN.Id"], k.VLANID)
					}
					if n := all["10-netplan-"+netplanIDOf(tpl, *tpl.link(k.Parent))+".network"]; !slices.Contains(n["Network.VLAN"], k.Name) {
						t.Errorf("parent %s: %v, want VLAN=%s", k.Parent, n, k.Name)
					}
				}
			}
			top := all["10-netplan-"+netplanIDOf(tpl, *tpl.top)+".network"]
			if tpl.lease.DHCP && !slices.Equal(top["DHCP.ClientIdentifier"], []string{"mac"}) && !slices.Equal(top["DHCPv4.ClientIdentifier"], []string{"mac"}) {
				t.Errorf("%s: no ClientIdentifier=mac: %v", tpl.top.Name, top)
			}
		})
	}
}
