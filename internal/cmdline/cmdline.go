// Package cmdline parses the kernel command line that ramboot's /init acts on: the ramroot
// form (`boot=ramdisk ramroot=URL`), ramboot.* options, BOOTIF= and the network in dracut's
// syntax (ip=, vlan=, bond=, ifname=, rd.route=, nameserver=, rd.net.timeout.*). Parse is
// pure; the file read of /proc/cmdline is one line in Read.
//
// A bad parameter never stops the boot: Parse skips it, keeps every valid one and returns an
// error per skipped parameter for /init to log and show.
package cmdline

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
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
	// IP is the ip= that /init's IPv4 bring-up acts on: the last one that configures IPv4
	// (DHCP or a static IPv4 address); nil if there is none. Network.IPs has them all.
	IP *IPConfig
	// Network is ip= (all of them), vlan=, bond=, ifname=, rd.route=, nameserver= and
	// rd.net.timeout.*, checked against each other.
	Network
	// Menu, Default, Timeout: ramboot.menu=, ramboot.default=, ramboot.timeout= (Timeout is
	// -1 when absent).
	Menu    string
	Default string
	Timeout time.Duration
	// Idle is ramboot.idle=: after this long without a key, a countdown the operator stopped
	// starts again (0 when absent: the menu's default; negative: never).
	Idle time.Duration
	// Deadline is ramboot.deadline=: how long an unattended boot may take overall, retries
	// included (0 when absent: no deadline).
	Deadline time.Duration
	// Retry is ramboot.retry=: how long a download keeps retrying without progress (a boot
	// server restarting) before it fails. 0 when absent (the loader's default, minutes);
	// negative for ramboot.retry=0 (no time budget: each URL a few attempts, then fail).
	Retry   time.Duration
	OnError OnError
	// TPMRequired is ramboot.tpm=required: a boot that cannot be measured (no TPM, or one
	// that fails) fails instead of going on unmeasured.
	TPMRequired bool
	// Kernel, Initrds, Append: ramboot.kernel=, ramboot.initrd= (repeatable),
	// ramboot.append=: an unattended kexec into a fetched kernel.
	Kernel  string
	Initrds []string
	Append  string
	// Report is ramboot.report=: the http(s) URL /init POSTs its boot events to ("" for none).
	Report string
	// Boot is boot= (the seed's "ramdisk"), kept for the record.
	Boot string
	// RegistryMirrors are ramboot.registry-mirror= (repeatable): registries tried before the
	// one a docker:// ramroot names. InsecureRegistries are ramboot.insecure-registry=
	// (repeatable, HOST:PORT): registries spoken to over plain HTTP.
	RegistryMirrors    []string
	InsecureRegistries []string
	// Raw holds every parameter in order, including ones ramboot does not know and ones it
	// skipped as invalid.
	Raw []Param
}

// Param is one key[=value] of the command line.
type Param struct {
	Key, Value string
	HasValue   bool
}

// ParamError is a parameter Parse skipped: which one, with what value, and why. Index is its
// place among the parameters parsed (Config.Raw, or ParseNetwork's), for callers that map it
// back to where it came from.
type ParamError struct {
	Key, Value string
	Index      int
	Err        error
}

func (e *ParamError) Error() string { return fmt.Sprintf("%s=%q: %v", e.Key, e.Value, e.Err) }

func (e *ParamError) Unwrap() error { return e.Err }

// Read parses /proc/cmdline. Like Parse it always returns a Config (the defaults when the
// file cannot be read) and an error per problem.
func Read() (*Config, []error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		c, _ := Parse("")
		return c, []error{fmt.Errorf("reading kernel command line: %w", err)}
	}
	return Parse(string(b))
}

// Parse parses a kernel command line. The Config is never nil: it holds the defaults and every
// valid parameter. Each invalid one is skipped, leaving what an earlier valid repetition set,
// and yields a *ParamError; an unterminated quote (the kernel lets it run to the end of the
// line, and so does Parse) yields ErrUnterminatedQuote. Unknown parameters are kept in Raw and
// otherwise ignored.
func Parse(s string) (*Config, []error) {
	var errs []error
	params, err := Split(s)
	if err != nil {
		// Only the last parameter can hold the open quote: it runs to the end.
		last := ""
		if len(params) > 0 {
			last = params[len(params)-1].Key
		}
		errs = append(errs, fmt.Errorf("kernel command line: %w in %s: it runs to the end of the line", err, last))
	}
	c := &Config{Init: "/sbin/init", Timeout: -1, Raw: params}
	var net netBuilder
	for i, p := range params {
		var err error
		if IsNetworkParam(p.Key) {
			err = net.add(p, i)
		} else {
			err = c.set(p)
		}
		if err != nil {
			errs = append(errs, &ParamError{Key: p.Key, Value: p.Value, Index: i, Err: err})
		}
	}
	c.Network, errs = net.finish(params, errs)
	c.IP = c.Network.BootIP()
	return c, errs
}

// set applies one parameter; it changes c only when the value is valid.
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
	case "boot":
		c.Boot = v
	case "ramboot.registry-mirror":
		if _, _, err := ParseRegistryMirror(v); err != nil {
			return err
		}
		c.RegistryMirrors = append(c.RegistryMirrors, v)
	case "ramboot.insecure-registry":
		if v == "" || strings.ContainsAny(v, "/ @") {
			return errors.New("want HOST:PORT")
		}
		c.InsecureRegistries = append(c.InsecureRegistries, v)
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
	case "ramboot.report":
		if err := checkReportURL(v); err != nil {
			return err
		}
		c.Report = v
	case "ramboot.append":
		c.Append = v
	case "ramboot.default":
		c.Default = v
	case "ramboot.timeout":
		d, ok := parseSeconds(v)
		if !ok || d < 0 {
			return errors.New("want seconds, e.g. 10 or 10s")
		}
		c.Timeout = d
	case "ramboot.idle":
		d, ok := parseSeconds(v)
		if !ok {
			return errors.New("want seconds, e.g. 300 or 5m, or -1 for never")
		}
		if d < 0 {
			d = -time.Second
		}
		c.Idle = d
	case "ramboot.deadline":
		d, ok := parseSeconds(v)
		if !ok || d < 0 {
			return errors.New("want a duration, e.g. 10m or 600 (seconds), or 0 for none")
		}
		c.Deadline = d
	case "ramboot.retry":
		d, ok := parseSeconds(v)
		if !ok || d < 0 {
			return errors.New("want a duration, e.g. 5m or 300 (seconds), or 0 for a few attempts only")
		}
		if d == 0 {
			d = -1
		}
		c.Retry = d
	case "ramboot.tpm":
		switch v {
		case "required":
			c.TPMRequired = true
		case "optional":
			c.TPMRequired = false
		default:
			return errors.New("want required or optional")
		}
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

// ParseRegistryMirror reads a registry mirror as ramboot.registry-mirror=, a menu's mirrors:
// and `ramboot fetch --mirror` give it: http://HOST[:PORT] (plain HTTP), https://HOST[:PORT], or
// HOST[:PORT] (HTTPS unless the host is named insecure). A trailing / or /v2 is allowed; a
// path, user, query or fragment is not, and HOST[:PORT] must be an RFC 3986 authority (what
// go-containerregistry's name.NewRegistry requires). The cmdline, the menu and the loader all
// parse mirrors here, so that they accept and refuse the same strings.
func ParseRegistryMirror(s string) (host string, plain bool, err error) {
	bad := func(why string) error {
		return fmt.Errorf("registry mirror %q: %s (want http://HOST[:PORT], https://HOST[:PORT] or HOST[:PORT])", s, why)
	}
	host = s
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		switch scheme {
		case "http":
			plain = true
		case "https":
		default:
			return "", false, bad(fmt.Sprintf("scheme %q is not http or https", scheme))
		}
		host = strings.TrimSuffix(strings.TrimSuffix(rest, "/"), "/v2")
	}
	switch {
	case host == "":
		return "", false, bad("no host")
	case strings.Contains(host, "/"):
		return "", false, bad("a path is not supported")
	case strings.ContainsAny(host, "@?# \t"):
		return "", false, bad("only a scheme and HOST[:PORT]")
	}
	if u, err := url.Parse("//" + host); err != nil || u.Host != host {
		return "", false, bad("not a valid HOST[:PORT]")
	}
	return host, plain, nil
}
