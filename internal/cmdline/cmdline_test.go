package cmdline

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpConfig = []cmp.Option{cmpopts.IgnoreFields(Config{}, "Raw"), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})}

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
		{
			in:   `ip=eth0:dhcp ramboot.deadline=10m`,
			want: Config{Init: "/sbin/init", Timeout: -1, Deadline: 10 * time.Minute, IP: &IPConfig{Device: "eth0", Autoconf: "dhcp"}},
		},
		{
			in:   "ramboot.report=http://10.0.2.2:8080/api/v1/events",
			want: Config{Report: "http://10.0.2.2:8080/api/v1/events", Init: "/sbin/init", Timeout: -1},
		},
		{
			in:   "",
			want: Config{Init: "/sbin/init", Timeout: -1},
		},
	} {
		if tt.want.IP != nil {
			tt.want.IPs = []IPConfig{*tt.want.IP}
		}
		got, errs := Parse(tt.in)
		if len(errs) != 0 {
			t.Errorf("Parse(%q): %v", tt.in, errs)
		}
		if diff := cmp.Diff(&tt.want, got, cmpConfig...); diff != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestParseDurations covers what operators type for ramboot.timeout, ramboot.idle and
// ramboot.deadline: seconds, fractions and Go durations.
func TestParseDurations(t *testing.T) {
	for _, tt := range []struct {
		param string
		want  time.Duration
		field func(*Config) time.Duration
	}{
		{"ramboot.timeout=10", 10 * time.Second, timeout},
		{"ramboot.timeout=10s", 10 * time.Second, timeout},
		{"ramboot.timeout=10S", 10 * time.Second, timeout},
		{"ramboot.timeout=0", 0, timeout},
		{"ramboot.timeout=0s", 0, timeout},
		{"ramboot.timeout=2.5", 2500 * time.Millisecond, timeout},
		{"ramboot.timeout=1m30s", 90 * time.Second, timeout},
		{"ramboot.timeout=500ms", 500 * time.Millisecond, timeout},
		{"ramboot.idle=300", 5 * time.Minute, idle},
		{"ramboot.idle=5m", 5 * time.Minute, idle},
		{"ramboot.idle=-1", -time.Second, idle},
		{"ramboot.idle=-1s", -time.Second, idle},
		{"ramboot.idle=-20", -time.Second, idle},
		{"ramboot.deadline=10m", 10 * time.Minute, deadline},
		{"ramboot.deadline=600", 10 * time.Minute, deadline},
		{"ramboot.deadline=600s", 10 * time.Minute, deadline},
		{"ramboot.deadline=1h", time.Hour, deadline},
		{"ramboot.deadline=0", 0, deadline},
		{"ramboot.retry=2m", 2 * time.Minute, retry},
		{"ramboot.retry=30", 30 * time.Second, retry},
		{"ramboot.retry=0", -1, retry},
		{"init=/sbin/init", 0, retry},
	} {
		c, errs := Parse(tt.param)
		if len(errs) != 0 {
			t.Errorf("Parse(%q): %v", tt.param, errs)
		}
		if got := tt.field(c); got != tt.want {
			t.Errorf("Parse(%q) = %v, want %v", tt.param, got, tt.want)
		}
	}
}

// TestParseTPM: ramboot.tpm=required makes an unmeasured boot fail; a bad value is skipped.
func TestParseTPM(t *testing.T) {
	if c, errs := Parse("ramboot.tpm=required"); len(errs) != 0 || !c.TPMRequired {
		t.Errorf("required: %v %v", c.TPMRequired, errs)
	}
	if c, errs := Parse("ramboot.tpm=required ramboot.tpm=optional"); len(errs) != 0 || c.TPMRequired {
		t.Errorf("optional: %v %v", c.TPMRequired, errs)
	}
	if c, errs := Parse("ramboot.tpm=yes"); len(errs) != 1 || c.TPMRequired {
		t.Errorf("bad value: %v %v", c.TPMRequired, errs)
	}
}

func timeout(c *Config) time.Duration  { return c.Timeout }
func idle(c *Config) time.Duration     { return c.Idle }
func deadline(c *Config) time.Duration { return c.Deadline }
func retry(c *Config) time.Duration    { return c.Retry }

func TestParseIPForms(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want IPConfig
		dhcp bool
	}{
		{"dhcp", IPConfig{Autoconf: "dhcp"}, true},
		{"eth0:dhcp", IPConfig{Device: "eth0", Autoconf: "dhcp"}, true},
		{"enp1s0:on", IPConfig{Device: "enp1s0", Autoconf: "on"}, true},
		{"eth1:any", IPConfig{Device: "eth1", Autoconf: "any"}, true},
		{"eth1:off", IPConfig{Device: "eth1", Autoconf: "off"}, true},
		{"eth1:none", IPConfig{Device: "eth1", Autoconf: "none"}, true},
		{"eth1:dhcp:", IPConfig{Device: "eth1", Autoconf: "dhcp"}, true},
		{"10.0.2.15::10.0.2.2:24::eth0:none", IPConfig{Addr: netip.MustParsePrefix("10.0.2.15/24"), Gateway: netip.MustParseAddr("10.0.2.2"), Device: "eth0", Autoconf: "none"}, false},
	} {
		got, err := ParseIP(tt.in)
		if err != nil {
			t.Errorf("ParseIP(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(&tt.want, got, cmpConfig...); diff != "" {
			t.Errorf("ParseIP(%q) (-want +got):\n%s", tt.in, diff)
		}
		if got.DHCP() != tt.dhcp {
			t.Errorf("ParseIP(%q).DHCP() = %v, want %v", tt.in, got.DHCP(), tt.dhcp)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"ramroot=", `ramroot="": empty URL`},
		{"ramroot.sha256=xyz", `ramroot.sha256="xyz": want 64 hex digits`},
		{"ramroot.size=lots", `ramroot.size="lots": want a size`},
		{"ramroot.size=0", "want a size"},
		{"ramroot.size=150%", "want a size"},
		{"init=sbin/init", `init="sbin/init": want an absolute path`},
		{"BOOTIF=01-52-54-00", "want 01-aa-bb"},
		{"ip=10.0.2.300::::::off", "not an IPv4 address"},
		{"ip=10.0.2.15:::255.0.255.0::eth0:off", "not contiguous"},
		{"ip=:::::eth0:off", "without a client address"},
		{"ip=maybe", `ip="maybe": want dhcp, off, IFACE:dhcp`},
		{"ip=10.0.0.1::::::fancy", "autoconf"},
		{"ip=:dhcp", "no interface name"},
		{"ip=eth0:dhcp:15", "MTU"},
		{"ip=eth0:dhcp7", `ip="eth0:dhcp7"`},
		{"ip=averyveryverylongname:dhcp", "not an interface name"},
		{"ramboot.timeout=soon", `ramboot.timeout="soon": want seconds, e.g. 10 or 10s`},
		{"ramboot.timeout=abc", `ramboot.timeout="abc": want seconds, e.g. 10 or 10s`},
		{"ramboot.timeout=-5", "want seconds"},
		{"ramboot.timeout=NaN", "want seconds"},
		{"ramboot.timeout=inf", "want seconds"},
		{"ramboot.timeout=1e300", "want seconds"},
		{"ramboot.timeout=1000000h", "want seconds"},
		{"ramboot.timeout", `ramboot.timeout="": want seconds`},
		{"ramboot.idle=later", `ramboot.idle="later": want seconds, e.g. 300 or 5m, or -1 for never`},
		{"ramboot.deadline=-1", `ramboot.deadline="-1": want a duration`},
		{"ramboot.deadline=soon", "want a duration, e.g. 10m or 600"},
		{"ramboot.onerror=panic", `ramboot.onerror="panic": want menu, shell`},
		{`ramroot="http://x`, "unterminated quote in ramroot"},
		{"ramboot.report=/api/v1/events", `ramboot.report="/api/v1/events": want an http:// or https:// URL`},
		{"ramboot.report=ftp://x/", "want an http:// or https:// URL"},
		{"ramboot.report=http://", "want an http:// or https:// URL"},
	} {
		c, errs := Parse(tt.in)
		if c == nil {
			t.Fatalf("Parse(%q) returned a nil Config", tt.in)
		}
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want one error containing %q", tt.in, errs, tt.want)
		}
	}
}

// TestBadParamsSkipped: each bad parameter is reported and skipped; the valid ones, before and
// after, still count, and an invalid repetition keeps the earlier valid value.
func TestBadParamsSkipped(t *testing.T) {
	in := `ramroot=http://a/r.tar ramboot.timeout=5 ramboot.timeout=abc ip=eth0:dhcp ip=bogus ` +
		`ramboot.deadline=10m ramboot.deadline=never init=/bin/sh init=relative ramboot.idle=x ` +
		`ramroot.size=50% ramroot.size=lots ramboot.onerror=menu ramboot.onerror=explode ramboot.menu="http://m/menu.yaml`
	c, errs := Parse(in)
	want := Config{
		Ramroot: []string{"http://a/r.tar"}, Timeout: 5 * time.Second, Deadline: 10 * time.Minute,
		IP: &IPConfig{Device: "eth0", Autoconf: "dhcp"}, Init: "/bin/sh", Size: "50%",
		OnError: OnErrorMenu, Menu: "http://m/menu.yaml",
		Network: Network{IPs: []IPConfig{{Device: "eth0", Autoconf: "dhcp"}}},
	}
	if diff := cmp.Diff(&want, c, cmpConfig...); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	var keys []string
	for _, err := range errs {
		var pe *ParamError
		switch {
		case errors.As(err, &pe):
			keys = append(keys, pe.Key)
		case errors.Is(err, ErrUnterminatedQuote):
			keys = append(keys, "quote")
		default:
			t.Errorf("unexpected error %T %v", err, err)
		}
	}
	wantKeys := []string{"quote", "ramboot.timeout", "ip", "ramboot.deadline", "init", "ramboot.idle", "ramroot.size", "ramboot.onerror"}
	if diff := cmp.Diff(wantKeys, keys); diff != "" {
		t.Errorf("errors %v (-want +got):\n%s", errs, diff)
	}
	if len(c.Raw) != 15 {
		t.Errorf("Raw has %d parameters, want all 15", len(c.Raw))
	}
}

func TestSplit(t *testing.T) {
	for _, tt := range []struct {
		in      string
		want    []Param
		wantErr error
	}{
		{"a b=c", []Param{{Key: "a"}, {Key: "b", Value: "c", HasValue: true}}, nil},
		{`a="x y"  b`, []Param{{Key: "a", Value: "x y", HasValue: true}, {Key: "b"}}, nil},
		{"a -- b", []Param{{Key: "a"}}, nil},
		{"a\tb\n", []Param{{Key: "a"}, {Key: "b"}}, nil},
		// The kernel lets an open quote run to the end of the line; so does Split, and says so.
		{`a b="x y  c=d`, []Param{{Key: "a"}, {Key: "b", Value: "x y  c=d", HasValue: true}}, ErrUnterminatedQuote},
		{`"`, []Param{{}}, ErrUnterminatedQuote},
	} {
		got, err := Split(tt.in)
		if err != tt.wantErr {
			t.Errorf("Split(%q) error %v, want %v", tt.in, err, tt.wantErr)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Split(%q) (-want +got):\n%s", tt.in, diff)
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
		"ip=eth0:dhcp ramboot.timeout=10s ramboot.idle=-1 ramboot.deadline=10m",
		"ramboot.timeout=abc ramboot.timeout=1e308 ramboot.deadline=-1h",
		"ip=dhcp6 ip=auto6 ip=either6 ip=link6 ip=single-dhcp ip=eth0:dhcp,dhcp6 ip=eth1:dhcp6:1500:52:54:00:12:34:56",
		"ip=[2001:db8::5]::[2001:db8::1]:64:box:eth0:none:[2001:db8::53] ip=10.0.0.5:::24::eth0:none:9000:52-54-00-12-34-56",
		"bond=bond0:eth0,eth1:mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4:9000 vlan=vlan0042:bond0 ip=vlan0042:dhcp",
		"bond bond=bond1 vlan=eth0.5:eth0 vlan=vlan5:eth1 vlan=eth2.0042:bond3 ip=bond7:dhcp",
		"ifname=bootnet:52:54:00:12:34:56 ip=bootnet:dhcp::52:54:00:12:34:57 rd.route=[2001:db8::/32]:[2001:db8::1]:bootnet",
		"rd.route=10.0.0.0/8:10.0.0.1:eth0 rd.route=10.1.0.0/255.255.0.0::eth1 nameserver=10.0.0.53 nameserver=[2001:db8::53]",
		"rd.net.timeout.carrier=5 rd.net.timeout.ifup=0 rd.net.timeout.dhcp=30s rd.net.timeout.ipv6dad=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, errs := Parse(s)
		if c == nil {
			t.Fatal("nil Config")
		}
		for _, err := range errs {
			if err == nil {
				t.Fatal("nil error in the list")
			}
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
		if c.Timeout < -1 || c.Deadline < 0 || c.Idle < -time.Second {
			t.Fatalf("timeout %v deadline %v idle %v", c.Timeout, c.Deadline, c.Idle)
		}
		if c.Timeout > maxSeconds*time.Second || c.Deadline > maxSeconds*time.Second || c.Idle > maxSeconds*time.Second {
			t.Fatalf("timeout %v deadline %v idle %v over the bound", c.Timeout, c.Deadline, c.Idle)
		}
		// The network renders back to parameters that parse to the same, without an error:
		// what a kexec passes on is what this boot used.
		line := strings.Join(c.Network.Params(), " ")
		back, errs := Parse(line)
		if len(errs) != 0 {
			t.Fatalf("%q: Params() %q: %v", s, line, errs)
		}
		if diff := cmp.Diff(c.Network, back.Network, cmpConfig...); diff != "" {
			t.Fatalf("%q: Params() %q parses back otherwise (-first +back):\n%s", s, line, diff)
		}
		if diff := cmp.Diff(c.IP, back.IP, cmpConfig...); diff != "" {
			t.Fatalf("%q: Config.IP differs after the round trip:\n%s", s, diff)
		}
	})
}

func TestRegistryParams(t *testing.T) {
	c, errs := Parse("ramroot=docker://10.0.2.2:5000/lab/rescue:v1 ramboot.registry-mirror=http://cache:5000 " +
		"ramboot.registry-mirror=mirror.example ramboot.registry-mirror=ftp://x ramboot.insecure-registry=10.0.2.2:5000 " +
		"ramboot.insecure-registry=http://x/")
	if got, want := fmt.Sprint(c.RegistryMirrors), "[http://cache:5000 mirror.example]"; got != want {
		t.Errorf("mirrors: got %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(c.InsecureRegistries), "[10.0.2.2:5000]"; got != want {
		t.Errorf("insecure: got %s, want %s", got, want)
	}
	if len(errs) != 2 || !strings.Contains(fmt.Sprint(errs), "ftp://x") || !strings.Contains(fmt.Sprint(errs), "http://x/") {
		t.Errorf("errors: got %v, want the ftp mirror and the URL as insecure registry", errs)
	}
	if fmt.Sprint(c.Ramroot) != "[docker://10.0.2.2:5000/lab/rescue:v1]" {
		t.Errorf("ramroot: %v", c.Ramroot)
	}
}
