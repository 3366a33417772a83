package netup

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	dhcpLeaseFixture = &Lease{
		Iface: "eth0", MAC: testMAC, Addr: pfx("10.0.0.5/24"), Gateway: ip("10.0.0.1"),
		DNS: []netip.Addr{ip("10.0.0.53")}, Search: []string{"lab.example"}, Hostname: "node7",
		Server: ip("10.0.0.1"), DHCP: true,
	}
	staticLeaseFixture = &Lease{
		Iface: "eth1", MAC: testMAC, Addr: pfx("192.0.2.15/24"), Gateway: ip("192.0.2.1"),
		DNS: []netip.Addr{ip("192.0.2.53"), ip("192.0.2.54")}, Search: []string{"lab.example", "example"},
	}
)

func TestRenderers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		render func(*Lease) string
		lease  *Lease
		want   string
	}{
		{"networkd dhcp", renderNetworkd, dhcpLeaseFixture, `# Written by ramboot: the NIC it booted from, matched by MAC whatever its name.
[Match]
MACAddress=52:54:00:12:34:56

[Network]
DHCP=ipv4
`},
		{"networkd static", renderNetworkd, staticLeaseFixture, `# Written by ramboot: the NIC it booted from, matched by MAC whatever its name.
[Match]
MACAddress=52:54:00:12:34:56

[Network]
Address=192.0.2.15/24
Gateway=192.0.2.1
DNS=192.0.2.53
DNS=192.0.2.54
Domains=lab.example example
`},
		{"netplan dhcp", renderNetplan, dhcpLeaseFixture, `# Written by ramboot: the NIC it booted from, matched by MAC whatever its name.
network:
  version: 2
  ethernets:
    bootif:
      match:
        macaddress: "52:54:00:12:34:56"
      dhcp4: true
`},
		{"netplan static", renderNetplan, staticLeaseFixture, `# Written by ramboot: the NIC it booted from, matched by MAC whatever its name.
network:
  version: 2
  ethernets:
    bootif:
      match:
        macaddress: "52:54:00:12:34:56"
      dhcp4: false
      addresses: ["192.0.2.15/24"]
      routes:
        - to: 0.0.0.0/0
          via: 192.0.2.1
      nameservers:
        addresses: [192.0.2.53, 192.0.2.54]
        search: ["lab.example", "example"]
`},
		{"ifupdown dhcp", renderIfupdown, dhcpLeaseFixture, `# Written by ramboot: the NIC it booted from (52:54:00:12:34:56).
auto eth0
iface eth0 inet dhcp
	pre-up ip -4 addr flush dev eth0 scope global || true
`},
		{"ifupdown static", renderIfupdown, staticLeaseFixture, `# Written by ramboot: the NIC it booted from (52:54:00:12:34:56).
auto eth1
iface eth1 inet static
	pre-up ip -4 addr flush dev eth1 scope global || true
	address 192.0.2.15/24
	gateway 192.0.2.1
	dns-nameservers 192.0.2.53 192.0.2.54
	dns-search lab.example example
`},
		{"udev", renderUdevRule, staticLeaseFixture, `# Written by ramboot: keep the name of the NIC it booted from. The NIC is up and
# configured when this system starts and Linux does not rename an up interface: a rename
# attempt would fail the device's udev event, and networkd would leave the link pending.
SUBSYSTEM=="net", ACTION=="add", ATTR{address}=="52:54:00:12:34:56", ATTR{type}=="1", NAME="eth1"
`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.render(tt.lease)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// layout creates files under a new root: a name ending in / is a directory, "->" makes a
// symlink.
func layout(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(name, "/"):
			err := os.MkdirAll(p, 0o755)
			if err != nil {
				t.Fatal(err)
			}
		case strings.HasPrefix(content, "->"):
			if err := os.Symlink(strings.TrimPrefix(content, "->"), p); err != nil {
				t.Fatal(err)
			}
		default:
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func TestWriteImageConfig(t *testing.T) {
	const debianInterfaces = "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n"
	for _, tt := range []struct {
		name    string
		files   map[string]string
		lease   *Lease
		want    []string
		check   map[string]string // file: content wanted ("" = must not exist)
		symlink map[string]string // file: symlink target that must be unchanged
	}{
		{
			name: "debian with ifupdown, dhcp",
			files: map[string]string{
				"etc/network/interfaces": debianInterfaces, "etc/network/interfaces.d/": "",
				"etc/systemd/system/": "", "etc/udev/": "", "etc/hostname": "buildbox\n",
			},
			lease: dhcpLeaseFixture,
			want:  []string{NetworkdPath, IfupdownPath, UdevRulePath, ResolvPath, HostnamePath},
			check: map[string]string{
				"/etc/network/interfaces": debianInterfaces,
				IfupdownPath:              renderIfupdown(dhcpLeaseFixture),
				NetworkdPath:              renderNetworkd(dhcpLeaseFixture),
				ResolvPath:                renderResolvConf(dhcpLeaseFixture.DNS, dhcpLeaseFixture.Search),
				HostnamePath:              "node7\n",
				NetplanPath:               "",
			},
		},
		{
			// udev only in /usr/lib (no /etc/udev): the rule is still needed, or networkd
			// leaves the link pending after udev's failed rename.
			name:  "networkd with udev in /usr/lib only",
			files: map[string]string{"etc/systemd/": "", "usr/lib/udev/rules.d/": ""},
			lease: staticLeaseFixture,
			want:  []string{NetworkdPath, UdevRulePath, ResolvPath},
			check: map[string]string{UdevRulePath: renderUdevRule(staticLeaseFixture), IfupdownPath: ""},
		},
		{
			name: "ubuntu with netplan and resolved, static",
			files: map[string]string{
				"etc/netplan/50-cloud-init.yaml": "network: {version: 2}\n", "etc/systemd/": "", "etc/udev/": "",
				"etc/resolv.conf": "->../run/systemd/resolve/stub-resolv.conf",
			},
			lease: staticLeaseFixture,
			want:  []string{NetplanPath, UdevRulePath},
			check: map[string]string{
				NetplanPath: renderNetplan(staticLeaseFixture), NetworkdPath: "", IfupdownPath: "", HostnamePath: "",
			},
			symlink: map[string]string{ResolvPath: "../run/systemd/resolve/stub-resolv.conf"},
		},
		{
			name:  "container image: empty resolv.conf, no network tools",
			files: map[string]string{"etc/resolv.conf": "# empty\n"},
			lease: staticLeaseFixture,
			want:  []string{ResolvPath},
			check: map[string]string{ResolvPath: renderResolvConf(staticLeaseFixture.DNS, staticLeaseFixture.Search)},
		},
		{
			name:  "resolv.conf with nameservers is the image's",
			files: map[string]string{"etc/resolv.conf": "nameserver 9.9.9.9\n"},
			lease: dhcpLeaseFixture,
			want:  []string{HostnamePath},
			check: map[string]string{ResolvPath: "nameserver 9.9.9.9\n"},
		},
		{
			name:  "interfaces without source gets one",
			files: map[string]string{"etc/network/interfaces": "auto lo\niface lo inet loopback"},
			lease: staticLeaseFixture,
			want:  []string{IfupdownPath, "/etc/network/interfaces", ResolvPath},
			check: map[string]string{
				"/etc/network/interfaces": "auto lo\niface lo inet loopback\n\n# Added by ramboot for the boot NIC.\nsource /etc/network/interfaces.d/ramboot\n",
			},
		},
		{
			name: "ifupdown already configures the NIC",
			files: map[string]string{
				"etc/network/interfaces":         debianInterfaces,
				"etc/network/interfaces.d/eth1":  "allow-hotplug eth1\niface eth1 inet dhcp\n",
				"etc/resolv.conf":                "nameserver 9.9.9.9\n",
				"etc/network/interfaces.d/other": "iface eth0 inet dhcp\n",
			},
			lease: staticLeaseFixture,
			check: map[string]string{IfupdownPath: ""},
		},
		{
			name:    "symlinks out of the image are replaced, not followed",
			files:   map[string]string{"etc/hostname": "->/etc/hostname", "etc/resolv.conf": "->/etc/resolv.conf"},
			lease:   dhcpLeaseFixture,
			want:    []string{HostnamePath},
			check:   map[string]string{HostnamePath: "node7\n"},
			symlink: map[string]string{ResolvPath: "/etc/resolv.conf"},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := layout(t, tt.files)
			got, err := WriteImageConfig(root, tt.lease)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpEmpty); diff != "" {
				t.Errorf("files written (-want +got):\n%s", diff)
			}
			for name, want := range tt.check {
				p := filepath.Join(root, name)
				b, err := os.ReadFile(p)
				if want == "" {
					if !os.IsNotExist(err) {
						t.Errorf("%s exists (%v), want it absent", name, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if fi, _ := os.Lstat(p); !fi.Mode().IsRegular() {
					t.Errorf("%s: mode %v, want a regular file", name, fi.Mode())
				}
				if diff := cmp.Diff(want, string(b)); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
			for name, want := range tt.symlink {
				if got, err := os.Readlink(filepath.Join(root, name)); err != nil || got != want {
					t.Errorf("%s -> %q (%v), want the symlink to %q kept", name, got, err, want)
				}
			}
			if fi, err := os.Stat(filepath.Join(root, NetplanPath)); err == nil && fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", NetplanPath, fi.Mode().Perm())
			}
			if leftovers, _ := filepath.Glob(filepath.Join(root, "etc/*/.*ramboot-tmp")); len(leftovers) > 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
}

func TestWriteImageConfigErrors(t *testing.T) {
	if _, err := WriteImageConfig(t.TempDir(), nil); err == nil {
		t.Error("nil lease: no error")
	}
	if _, err := WriteImageConfig(filepath.Join(t.TempDir(), "missing"), dhcpLeaseFixture); err == nil {
		t.Error("missing root: no error")
	}
}
