package cmdline

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParse(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:12:34:56")
	for _, tt := range []struct {
		in   string
		want Config
	}{
		{
			in:   "BOOT_IMAGE=/vmlinuz root=/dev/ram0 boot=ramdisk ramroot=http://server/rootfs.tar.xz quiet",
			want: Config{Boot: "ramdisk", Ramroot: []string{"http://server/rootfs.tar.xz"}, Init: "/sbin/init", Timeout: -1},
		},
		{
			in: `console=ttyS0 ramroot=http://a/r.tar.zst ramroot=http://b/r.tar.zst ramroot.sha256=ABCDEF0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789 ramroot.size=75% init=/lib/systemd/systemd BOOTIF=01-52-54-00-12-34-56`,
			want: Config{
				Ramroot: []string{"http://a/r.tar.zst", "http://b/r.tar.zst"},
				SHA256:  "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
				Size:    "75%", Init: "/lib/systemd/systemd", BootIF: mac, Timeout: -1,
			},
		},
		{
			in:   `ramboot.menu=http://m/menu.yaml ramboot.default=rescue ramboot.timeout=2.5 ramboot.onerror=shell ip=dhcp ramboot.idle=120`,
			want: Config{Menu: "http://m/menu.yaml", Default: "rescue", Timeout: 2500 * time.Millisecond, Idle: 2 * time.Minute, OnError: OnErrorShell, Init: "/sbin/init", IP: &IPConfig{Autoconf: "dhcp"}},
		},
		{
			in: `ip=10.0.2.15::10.0.2.2:255.255.255.0:host:eth1:off:10.0.2.3 -- ramroot=ignored`,
			want: Config{Init: "/sbin/init", Timeout: -1, IP: &IPConfig{
				Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"),
				Hostname: "host", Device: "eth1", Autoconf: "off", DNS: []netip.Addr{netip.MustParseAddr("10.0.2.3")},
			}},
		},
		{
			in:   `ramboot.kernel=http://k/vmlinuz ramboot.initrd=http://k/a.cpio ramboot.initrd=http://k/b.cpio "ramboot.append=console=ttyS0 quiet"`,
			want: Config{Kernel: "http://k/vmlinuz", Initrds: []string{"http://k/a.cpio", "http://k/b.cpio"}, Append: "console=ttyS0 quiet", Init: "/sbin/init", Timeout: -1},
		},
		{
			in:   `ramboot.menu="http://m/a menu.yaml"  ramroot.size=2G`,
			want: Config{Menu: "http://m/a menu.yaml", Size: "2G", Init: "/sbin/init", Timeout: -1},
		},
	} {
		got, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(&tt.want, got, cmpopts.IgnoreFields(Config{}, "Raw"), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"ramroot=", "ramroot=\"\": empty URL"},
		{"ramroot.sha256=xyz", "ramroot.sha256=\"xyz\": want 64 hex digits"},
		{"ramroot.size=lots", "want a size"},
		{"ramroot.size=0", "want a size"},
		{"ramroot.size=150%", "want a size"},
		{"init=sbin/init", "absolute path"},
		{"BOOTIF=01-52-54-00", "want 01-aa-bb"},
		{"ip=10.0.2.300::::::off", "not an IPv4 address"},
		{"ip=10.0.2.15:::255.0.255.0::eth0:off", "not contiguous"},
		{"ip=:::::eth0:off", "without a client address"},
		{"ip=maybe", "want dhcp"},
		{"ip=10.0.0.1::::::fancy", "autoconf"},
		{"ramboot.timeout=soon", "want seconds"},
		{"ramboot.onerror=panic", "want menu, shell"},
		{`ramroot="http://x`, "unterminated quote"},
	} {
		_, err := Parse(tt.in)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want error containing %q", tt.in, err, tt.want)
		}
	}
}

func TestIPDefaults(t *testing.T) {
	c, err := ParseIP("192.168.1.5:::::eth0")
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != netip.MustParsePrefix("192.168.1.5/24") || c.DHCP() {
		t.Errorf("got %+v", c)
	}
	c, _ = ParseIP("::::::dhcp")
	if !c.DHCP() {
		t.Errorf("ip=::::::dhcp is DHCP")
	}
	c, _ = ParseIP(":::::eth1:")
	if !c.DHCP() || c.Device != "eth1" {
		t.Errorf("no address given: DHCP on eth1, got %+v", c)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"boot=ramdisk ramroot=http://server/rootfs.tar.xz",
		`ip=10.0.2.15::10.0.2.2:255.255.255.0:host:eth1:off:10.0.2.3 BOOTIF=01-52-54-00-12-34-56`,
		`ramboot.menu="a b" -- x`, "ramroot.size=50% ramboot.timeout=3", `"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			return
		}
		if c.Init == "" || !strings.HasPrefix(c.Init, "/") {
			t.Fatalf("init %q", c.Init)
		}
		for _, u := range c.Ramroot {
			if u == "" {
				t.Fatal("empty ramroot URL accepted")
			}
		}
		if c.BootIF != nil && len(c.BootIF) != 6 {
			t.Fatalf("BOOTIF %v", c.BootIF)
		}
	})
}
