// Package cmdline parses the kernel command line that ramboot's /init acts on: the ramroot
// form (`boot=ramdisk ramroot=URL`), ramboot.* options, BOOTIF= and ip=. Parse is pure; the
// file read of /proc/cmdline is one line in Read.
package cmdline

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// OnError is what /init does when a boot fails.
type OnError string

// The ramboot.onerror= values. Retry is the default: a few retries with backoff, then a shell
// when the initramfs has one, else a reboot.
const (
	OnErrorRetry    OnError = ""
	OnErrorMenu     OnError = "menu"
	OnErrorShell    OnError = "shell"
	OnErrorReboot   OnError = "reboot"
	OnErrorPoweroff OnError = "poweroff"
)

// Config is what /init takes from the kernel command line.
type Config struct {
	// Ramroot lists the image URL and its mirrors, in order (ramroot= repeated).
	Ramroot []string
	// SHA256 is ramroot.sha256=, lowercase hex.
	SHA256 string
	// Size is ramroot.size= as given ("2G", "75%"), validated; "" for the default.
	Size string
	// Init is init= (default /sbin/init).
	Init string
	// BootIF is the MAC address of BOOTIF=01-aa-bb-cc-dd-ee-ff (pxelinux), nil if absent.
	BootIF net.HardwareAddr
	// IP is ip=, nil if absent.
	IP *IPConfig
	// Menu, Default, Timeout: ramboot.menu=, ramboot.default=, ramboot.timeout= (Timeout is
	// -1 when absent).
	Menu    string
	Default string
	Timeout time.Duration
	// Idle is ramboot.idle=: after this long without a key, a countdown the operator stopped
	// starts again (0 when absent: the menu's default; negative: never).
	Idle    time.Duration
	OnError OnError
	// Kernel, Initrds, Append: ramboot.kernel=, ramboot.initrd= (repeatable),
	// ramboot.append=: an unattended kexec into a fetched kernel.
	Kernel  string
	Initrds []string
	Append  string
	// Boot is boot= (the seed's "ramdisk"), kept for the record.
	Boot string
	// Raw holds every parameter in order, including ones ramboot does not know.
	Raw []Param
}

// Param is one key[=value] of the command line.
type Param struct {
	Key, Value string
	HasValue   bool
}

// IPConfig is ip= in the kernel's nfsroot syntax:
// ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0>:<dns1>:<ntp0>
// or ip=<autoconf> alone (dhcp, on, any, off, none, ...).
type IPConfig struct {
	Addr     netip.Prefix // client address with the netmask's length; invalid for DHCP
	Server   netip.Addr
	Gateway  netip.Addr
	Hostname string
	Device   string
	Autoconf string // "dhcp", "off", "none", "static" ...; "" if not given
	DNS      []netip.Addr
	NTP      netip.Addr
}

// DHCP reports whether the address is to be obtained by DHCP.
func (c *IPConfig) DHCP() bool {
	switch c.Autoconf {
	case "dhcp", "on", "any", "both", "bootp", "rarp":
		return true
	case "", "off", "none", "static":
		return !c.Addr.IsValid()
	}
	return false
}

// Read parses /proc/cmdline.
func Read() (*Config, error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil, err
	}
	return Parse(string(b))
}

// Split splits a command line into parameters as the kernel does: whitespace separates them,
// double quotes group (and are removed), and "--" ends the kernel's part.
func Split(s string) ([]Param, error) {
	var out []Param
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		var b strings.Builder
		quoted := false
		for ; i < len(s) && (quoted || !isSpace(s[i])); i++ {
			if s[i] == '"' {
				quoted = !quoted
				continue
			}
			b.WriteByte(s[i])
		}
		if quoted {
			return out, errors.New("unterminated quote")
		}
		w := b.String()
		if w == "--" {
			return out, nil
		}
		k, v, has := strings.Cut(w, "=")
		out = append(out, Param{Key: k, Value: v, HasValue: has})
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Parse parses a kernel command line. Unknown parameters are kept in Raw and otherwise ignored;
// a malformed ramboot parameter is an error naming it.
func Parse(s string) (*Config, error) {
	params, err := Split(s)
	if err != nil {
		return nil, fmt.Errorf("kernel command line: %w", err)
	}
	c := &Config{Init: "/sbin/init", Timeout: -1, Raw: params}
	for _, p := range params {
		if err := c.set(p); err != nil {
			return nil, fmt.Errorf("kernel command line: %s=%q: %w", p.Key, p.Value, err)
		}
	}
	return c, nil
}

func (c *Config) set(p Param) error {
	v := p.Value
	switch p.Key {
	case "ramroot":
		if v == "" {
			return errors.New("empty URL")
		}
		c.Ramroot = append(c.Ramroot, v)
	case "ramroot.sha256":
		v = strings.ToLower(v)
		if len(v) != 64 || strings.Trim(v, "0123456789abcdef") != "" {
			return errors.New("want 64 hex digits")
		}
		c.SHA256 = v
	case "ramroot.size":
		if err := CheckSize(v); err != nil {
			return err
		}
		c.Size = v
	case "init":
		if !strings.HasPrefix(v, "/") {
			return errors.New("want an absolute path")
		}
		c.Init = v
	case "BOOTIF":
		mac, err := ParseBootIF(v)
		if err != nil {
			return err
		}
		c.BootIF = mac
	case "ip":
		ip, err := ParseIP(v)
		if err != nil {
			return err
		}
		c.IP = ip
	case "boot":
		c.Boot = v
	case "ramboot.menu":
		if v == "" {
			return errors.New("empty URL")
		}
		c.Menu = v
	case "ramboot.kernel":
		if v == "" {
			return errors.New("empty URL")
		}
		c.Kernel = v
	case "ramboot.initrd":
		if v == "" {
			return errors.New("empty URL")
		}
		c.Initrds = append(c.Initrds, v)
	case "ramboot.append":
		c.Append = v
	case "ramboot.default":
		c.Default = v
	case "ramboot.timeout":
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0 || secs > 1e6 {
			return errors.New("want seconds, e.g. 10")
		}
		c.Timeout = time.Duration(secs * float64(time.Second))
	case "ramboot.idle":
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs > 1e6 {
			return errors.New("want seconds, e.g. 300, or -1 for never")
		}
		if secs < 0 {
			secs = -1
		}
		c.Idle = time.Duration(secs * float64(time.Second))
	case "ramboot.onerror":
		switch o := OnError(v); o {
		case OnErrorMenu, OnErrorShell, OnErrorReboot, OnErrorPoweroff:
			c.OnError = o
		case "retry":
			c.OnError = OnErrorRetry
		default:
			return errors.New("want menu, shell, reboot or poweroff")
		}
	}
	return nil
}

// CheckSize accepts what tmpfs's size= accepts: a number with an optional k/m/g/t suffix, or a
// percentage of RAM.
func CheckSize(v string) error {
	bad := errors.New("want a size like 2G, 512M or 75%")
	if n, ok := strings.CutSuffix(v, "%"); ok {
		p, err := strconv.Atoi(n)
		if err != nil || p <= 0 || p > 100 {
			return bad
		}
		return nil
	}
	n := strings.TrimRight(v, "kKmMgGtT")
	if len(v)-len(n) > 1 {
		return bad
	}
	if x, err := strconv.ParseUint(n, 10, 64); err != nil || x == 0 {
		return bad
	}
	return nil
}

// ParseBootIF parses pxelinux's BOOTIF=01-aa-bb-cc-dd-ee-ff (01 is the ARP type, Ethernet).
// The bare MAC (aa:bb:.. or aa-bb-..) is accepted too.
func ParseBootIF(v string) (net.HardwareAddr, error) {
	s := strings.ToLower(v)
	if len(s) == 20 && strings.HasPrefix(s, "01-") {
		s = s[3:]
	}
	mac, err := net.ParseMAC(strings.ReplaceAll(s, "-", ":"))
	if err != nil || len(mac) != 6 {
		return nil, errors.New("want 01-aa-bb-cc-dd-ee-ff")
	}
	return mac, nil
}

// ParseIP parses ip= (see IPConfig).
func ParseIP(v string) (*IPConfig, error) {
	f := strings.Split(v, ":")
	c := &IPConfig{}
	if len(f) == 1 {
		switch v {
		case "dhcp", "on", "any", "both", "bootp", "rarp", "off", "none":
			c.Autoconf = v
			return c, nil
		}
		return nil, errors.New("want dhcp, off, or client:server:gw:netmask:hostname:device:autoconf")
	}
	if len(f) > 10 {
		return nil, errors.New("too many fields")
	}
	for len(f) < 10 {
		f = append(f, "")
	}
	addr := func(i int, what string) (netip.Addr, error) {
		if f[i] == "" {
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(f[i])
		if err != nil || !a.Is4() {
			return netip.Addr{}, fmt.Errorf("%s %q is not an IPv4 address", what, f[i])
		}
		return a, nil
	}
	client, err := addr(0, "client address")
	if err != nil {
		return nil, err
	}
	if c.Server, err = addr(1, "server address"); err != nil {
		return nil, err
	}
	if c.Gateway, err = addr(2, "gateway"); err != nil {
		return nil, err
	}
	bits := -1
	if f[3] != "" {
		if n, err := strconv.Atoi(f[3]); err == nil && n >= 0 && n <= 32 {
			bits = n
		} else {
			m, err := addr(3, "netmask")
			if err != nil {
				return nil, err
			}
			ones, size := net.IPMask(m.AsSlice()).Size()
			if size == 0 {
				return nil, fmt.Errorf("netmask %q is not contiguous", f[3])
			}
			bits = ones
		}
	}
	c.Hostname, c.Device, c.Autoconf = f[4], f[5], f[6]
	switch c.Autoconf {
	case "", "off", "none", "static", "dhcp", "on", "any", "both", "bootp", "rarp":
	default:
		return nil, fmt.Errorf("autoconf %q is not dhcp, on, any, off or none", c.Autoconf)
	}
	for i := 7; i <= 8; i++ {
		d, err := addr(i, "DNS server")
		if err != nil {
			return nil, err
		}
		if d.IsValid() {
			c.DNS = append(c.DNS, d)
		}
	}
	if c.NTP, err = addr(9, "NTP server"); err != nil {
		return nil, err
	}
	if client.IsValid() {
		if bits < 0 {
			bits = ClassfulBits(client)
		}
		c.Addr = netip.PrefixFrom(client, bits)
	} else if c.Autoconf == "off" || c.Autoconf == "none" || c.Autoconf == "static" {
		return nil, errors.New("static configuration without a client address")
	}
	return c, nil
}

// ClassfulBits is the kernel's default prefix length for an address given without a netmask.
func ClassfulBits(a netip.Addr) int {
	switch b := a.As4()[0]; {
	case b < 128:
		return 8
	case b < 192:
		return 16
	}
	return 24
}
