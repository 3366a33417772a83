package netup

// IPv6 in network namespaces: Debian's dnsmasq serves router advertisements and DHCPv6 (and
// never DHCPv4) in one namespace; acquire and configure6 run in another, in a re-executed
// test binary (v6HelperEnv) in which getrandom(2) raises SIGSYS, which kills it: the proof
// that no DHCPv6 (or DHCPv4) transaction ID is drawn from the kernel's random pool.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

const v6HelperEnv = "NETUP_TEST_V6HELPER"

func init() {
	if cfg := os.Getenv(v6HelperEnv); cfg != "" {
		os.Exit(runV6Helper(cfg))
	}
}

type v6HelperConfig struct {
	Iface      string
	IP         string // ip=, "" for none
	DHCPTO     time.Duration
	Attempts   int
	ResolvConf string
	// EnableFirst enables IPv6 (prepare6) before the link is set up, as Up should: the
	// link-local address is then optimistic at once. Else acquire finds the link up with a
	// link-local address in its DAD, and waits for it.
	EnableFirst bool
}

type v6HelperResult struct {
	Lease *Lease
	Err   string
	Log   []string // each line prefixed by the milliseconds since acquire began
}

// trapGetrandom makes every thread's getrandom(2) raise SIGSYS from now on, which the Go
// runtime does not handle: the process dies with a traceback naming the caller. A vDSO
// getrandom enters the kernel for the first key of each thread's state, and nothing in the
// helper draws one before the trap, so the library's path is caught even there (tried: with
// message6 calling dhcpv6.NewMessage, TestAcquireDHCPv6 dies in GenerateTransactionID).
func trapGetrandom() error {
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	filter := []unix.SockFilter{
		{Code: ld, K: 0}, // seccomp_data.nr
		{Code: jeq, Jt: 0, Jf: 1, K: unix.SYS_GETRANDOM},
		{Code: ret, K: unix.SECCOMP_RET_TRAP},
		{Code: ret, K: unix.SECCOMP_RET_ALLOW},
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	if _, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog))); e != 0 {
		return e
	}
	return nil
}

func runV6Helper(cfgJSON string) int {
	var hc v6HelperConfig
	if err := json.Unmarshal([]byte(cfgJSON), &hc); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	var (
		mu  sync.Mutex
		r   v6HelperResult
		t0  = time.Now()
		out = json.NewEncoder(os.Stdout)
	)
	c := Config{DHCPTimeout: hc.DHCPTO, DHCPAttempts: hc.Attempts, ResolvConf: hc.ResolvConf,
		Logf: func(f string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			r.Log = append(r.Log, fmt.Sprintf("%d "+f, append([]any{time.Since(t0).Milliseconds()}, a...)...))
		}}
	fail := func(err error) int {
		r.Err = err.Error()
		mu.Lock()
		defer mu.Unlock()
		out.Encode(r)
		return 0
	}
	if hc.IP != "" {
		ip, err := cmdline.ParseIP(hc.IP)
		if err != nil {
			return fail(err)
		}
		c.IP = ip
	}
	if err := trapGetrandom(); err != nil {
		return fail(fmt.Errorf("seccomp: %w", err))
	}
	link, err := netlink.LinkByName(hc.Iface)
	if err != nil {
		return fail(err)
	}
	ctx := context.Background()
	if hc.EnableFirst {
		prepare6(c, hc.Iface)
	}
	if link, err = waitCarrier(ctx, Config{}, link, time.Now().Add(5*time.Second)); err != nil {
		return fail(err)
	}
	t0 = time.Now()
	l, err := acquire(ctx, c, link)
	if err != nil {
		return fail(err)
	}
	if l.Addr.IsValid() {
		if err := configure(c.withDefaults(), link, l); err != nil {
			return fail(err)
		}
	}
	if err := configure6(c, link, l); err != nil {
		return fail(err)
	}
	c.Logf("configured")
	r.Lease = l
	mu.Lock()
	defer mu.Unlock()
	out.Encode(r)
	return 0
}

// acquireIn runs acquire and configure in the client namespace.
func acquireIn(t *testing.T, ns string, hc v6HelperConfig) v6HelperResult {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(hc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), v6HelperEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var r v6HelperResult
	jerr := json.Unmarshal(stdout.Bytes(), &r)
	t.Logf("acquire's log:\n%s", strings.Join(r.Log, "\n"))
	if err != nil || jerr != nil {
		t.Fatalf("helper: %v, %v\nstdout %s\nstderr %s", err, jerr, stdout.String(), stderr.String())
	}
	return r
}

// dnsmasq6 runs dnsmasq on iface in ns with args (DHCPv6 and RA only: no DHCPv4 range, no
// DNS; "--no-ra": no router advertisements either), until cleanup; its log is returned by the
// function it returns.
func dnsmasq6(t *testing.T, ns, iface string, args ...string) func() string {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		bin = "/usr/sbin/dnsmasq"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("needs dnsmasq (CI is set): %v", err)
		}
		t.Skip("needs dnsmasq")
	}
	dir := t.TempDir()
	base := []string{"--keep-in-foreground", "--conf-file=/dev/null", "--port=0", "--interface=" + iface, "--bind-interfaces",
		"--pid-file=" + filepath.Join(dir, "pid"), "--dhcp-leasefile=" + filepath.Join(dir, "leases"),
		"--log-dhcp", "--log-facility=-", "--user=root"}
	if !slices.Contains(args, "--no-ra") {
		base = append(base, "--enable-ra")
	}
	args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return a == "--no-ra" })
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, bin}, append(base, args...)...)...)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		t.Logf("dnsmasq's log:\n%s", log.String())
	})
	return log.String
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// v6Net is a client namespace with c0 (mac0, down) and a server namespace with s0 up,
// fd00:99::1/64 and fe80::1 on it without DAD.
func v6Net(t *testing.T) (cli, srv string) {
	t.Helper()
	cli, srv = newNS(t, "cli"), newNS(t, "srv")
	veth(t, cli, "c0", mac0, srv, "s0", "", false)
	// The router's link-local address is fe80::1 without DAD: one the kernel made would be
	// in DAD when the client's link comes up, unable to advertise, and the figures would
	// measure the server.
	ipCmd(t, "-n", srv, "link", "set", "s0", "addrgenmode", "none")
	ipCmd(t, "-n", srv, "addr", "add", "fd00:99::1/64", "dev", "s0", "nodad")
	ipCmd(t, "-n", srv, "addr", "add", "fe80::1/64", "dev", "s0", "nodad")
	ipCmd(t, "-n", srv, "link", "set", "s0", "up")
	return cli, srv
}

// v6State reads c0's IPv6 addresses ("addr/len flags") and default routes.
func v6State(t *testing.T, ns string) (addrs []netlink.Addr, routes []netlink.Route) {
	t.Helper()
	st := openNS(t, ns)
	as, err := st.h.AddrList(st.link(t, "c0"), netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.Scope == unix.RT_SCOPE_UNIVERSE {
			addrs = append(addrs, a)
		}
	}
	rs, err := st.h.RouteList(nil, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() && maskBits(r.Dst) == 0 {
			routes = append(routes, r)
		}
	}
	return addrs, routes
}

// msSince returns the milliseconds from the first log line matching from to the first
// matching to (the figures of the closing note; not asserted on).
func msSince(log []string, from, to string) int {
	at := func(re string) int {
		for _, l := range log {
			if regexp.MustCompile(re).MatchString(l) {
				n, _ := strconv.Atoi(strings.Fields(l)[0])
				return n
			}
		}
		return -1
	}
	return at(to) - at(from)
}

const bootURL = "http://[fd00:99::1]:8080/menus/lab.yaml"

func TestAcquireSLAAC(t *testing.T) {
	needRoot(t)
	cli, srv := v6Net(t)
	srvLog := dnsmasq6(t, srv, "s0", "--dhcp-range=::,constructor:s0,ra-stateless,64,1h",
		"--dhcp-option=option6:dns-server,[fd00:99::53]", "--dhcp-option=option6:domain-search,lab.test",
		"--dhcp-option=option6:bootfile-url,"+bootURL)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	r := acquireIn(t, cli, v6HelperConfig{Iface: "c0", IP: "c0:auto6", DHCPTO: 3 * time.Second, Attempts: 2, ResolvConf: resolv})
	if r.Err != "" {
		t.Fatalf("acquire: %s", r.Err)
	}
	l := r.Lease
	want := netip.MustParsePrefix("fd00:99::5eff:fe00:10/64")
	if l.Addr.IsValid() || l.V6 == nil || len(l.V6.Addrs) != 1 || l.V6.Addrs[0].Prefix != want || l.V6.Addrs[0].From != "slaac" ||
		l.V6.Gateway != netip.MustParseAddr("fe80::1") || l.V6.BootFileURL != bootURL || !l.V6.Other {
		t.Fatalf("lease %+v, V6 %+v", l, l.V6)
	}
	addrs, routes := v6State(t, cli)
	if len(addrs) != 1 || addrs[0].IPNet.String() != want.String() || addrs[0].Flags&unix.IFA_F_TENTATIVE != 0 || addrs[0].ValidLft <= 0 || addrs[0].ValidLft > 3600 {
		t.Errorf("c0's addresses %+v, want %s, DAD done, valid for at most an hour", addrs, want)
	}
	if len(routes) != 1 || routes[0].Gw.String() != l.V6.Gateway.String() {
		t.Errorf("default routes %+v, want via %s", routes, l.V6.Gateway)
	}
	b, _ := os.ReadFile(resolv)
	if !strings.Contains(string(b), "nameserver fd00:99::53\n") || !strings.Contains(string(b), "search lab.test\n") {
		t.Errorf("resolv.conf %q", b)
	}
	if strings.Contains(srvLog(), "DHCPDISCOVER") {
		t.Error("a DHCPv4 DISCOVER was sent for ip=auto6")
	}
	t.Logf("SLAAC: %d ms from the first router solicitation to the address configured (DAD included)",
		msSince(r.Log, "router solicitation 1", "configured"))
}

func TestAcquireDHCPv6(t *testing.T) {
	needRoot(t)
	cli, srv := v6Net(t)
	dnsmasq6(t, srv, "s0", "--dhcp-range=fd00:99::100,fd00:99::1ff,64,1h",
		"--dhcp-option=option6:dns-server,[fd00:99::53]", "--dhcp-option=option6:bootfile-url,"+bootURL)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	r := acquireIn(t, cli, v6HelperConfig{Iface: "c0", IP: "c0:dhcp6", DHCPTO: 3 * time.Second, Attempts: 2, ResolvConf: resolv, EnableFirst: true})
	if r.Err != "" {
		t.Fatalf("acquire: %s", r.Err)
	}
	l := r.Lease
	if l.V6 == nil || len(l.V6.Addrs) != 1 || l.V6.Addrs[0].From != "dhcpv6" || l.V6.BootFileURL != bootURL || !l.V6.Server.IsValid() {
		t.Fatalf("lease %+v, V6 %+v", l, l.V6)
	}
	a := l.V6.Addrs[0].Prefix
	if !netip.MustParsePrefix("fd00:99::/64").Contains(a.Addr()) || a.Addr().Compare(netip.MustParseAddr("fd00:99::100")) < 0 ||
		a.Addr().Compare(netip.MustParseAddr("fd00:99::1ff")) > 0 || a.Bits() != 64 {
		t.Errorf("address %s, want one of fd00:99::100-1ff with the advertised /64", a)
	}
	addrs, routes := v6State(t, cli)
	if len(addrs) != 1 || addrs[0].IPNet.String() != a.String() || addrs[0].Flags&unix.IFA_F_TENTATIVE != 0 || addrs[0].ValidLft <= 0 {
		t.Errorf("c0's addresses %+v, want %s, DAD done, with a lifetime", addrs, a)
	}
	if l.V6.Gateway != netip.MustParseAddr("fe80::1") || len(routes) != 1 || routes[0].Gw.String() != l.V6.Gateway.String() {
		t.Errorf("gateway %s, default routes %+v", l.V6.Gateway, routes)
	}
	t.Logf("DHCPv6: %d ms from the first SOLICIT to the address configured (DAD included)",
		msSince(r.Log, "DHCPv6 sent SOLICIT", "configured"))
}

// TestAcquireDualStackV6Only: no ip= (DHCPv4 and IPv6 at once) on a network with no DHCPv4
// server: DHCPv4 is abandoned once IPv6 has its address, in its first attempt.
func TestAcquireDualStackV6Only(t *testing.T) {
	needRoot(t)
	cli, srv := v6Net(t)
	dnsmasq6(t, srv, "s0", "--dhcp-range=fd00:99::100,fd00:99::1ff,64,1h", "--dhcp-option=option6:bootfile-url,"+bootURL)
	r := acquireIn(t, cli, v6HelperConfig{Iface: "c0", DHCPTO: 10 * time.Second, Attempts: 3, ResolvConf: filepath.Join(t.TempDir(), "resolv.conf"), EnableFirst: true})
	if r.Err != "" {
		t.Fatalf("acquire: %s", r.Err)
	}
	if r.Lease.Addr.IsValid() || r.Lease.V6 == nil || len(r.Lease.V6.Addrs) == 0 {
		t.Fatalf("lease %+v, V6 %+v", r.Lease, r.Lease.V6)
	}
	log := strings.Join(r.Log, "\n")
	if !strings.Contains(log, "c0: DHCPv4 abandoned: no server answered within ") {
		t.Error("no DHCPv4 abandoned line in the log")
	}
	if strings.Contains(log, "DHCP attempt") {
		t.Error("DHCPv4 ran to the end of an attempt")
	}
	t.Logf("%d DISCOVERs sent; IPv6 configured after %d ms", strings.Count(log, "sent message DISCOVER"),
		msSince(r.Log, "^0 ", "configured"))
}

func TestAcquireStatic6(t *testing.T) {
	needRoot(t)
	cli, srv := newNS(t, "cli"), newNS(t, "srv")
	veth(t, cli, "c0", mac0, srv, "s0", "", true)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	r := acquireIn(t, cli, v6HelperConfig{Iface: "c0", IP: "[fd00:98::5]::[fd00:98::1]:64:statichost:c0:none:[fd00:98::53]", DHCPTO: 10 * time.Second, Attempts: 3, ResolvConf: resolv})
	if r.Err != "" {
		t.Fatalf("acquire: %s", r.Err)
	}
	addrs, routes := v6State(t, cli)
	if len(addrs) != 1 || addrs[0].IPNet.String() != "fd00:98::5/64" || addrs[0].Flags&unix.IFA_F_TENTATIVE != 0 {
		t.Errorf("c0's addresses %+v", addrs)
	}
	if len(routes) != 1 || routes[0].Gw.String() != "fd00:98::1" {
		t.Errorf("default routes %+v", routes)
	}
	if b, _ := os.ReadFile(resolv); string(b) != "# Written by ramboot from the boot NIC's configuration.\nnameserver fd00:98::53\n" {
		t.Errorf("resolv.conf %q", b)
	}
	if log := strings.Join(r.Log, "\n"); strings.Contains(log, "DISCOVER") || strings.Contains(log, "solicitation") {
		t.Errorf("a static address asked a server")
	}
}

// TestAcquireDualStackV4Only: no ip= on a network with a DHCPv4 server and no router: IPv6
// is abandoned once DHCPv4 has its lease, and the lease has no V6.
func TestAcquireDualStackV4Only(t *testing.T) {
	needRoot(t)
	cli, srvNS := newNS(t, "cli"), newNS(t, "srv")
	veth(t, cli, "c0", mac0, srvNS, "s0", "10.99.6.1/24", true)
	srv := &dhcpServer{self: net.IPv4(10, 99, 6, 1), yiaddr: net.IPv4(10, 99, 6, 50), mask: net.CIDRMask(24, 32), router: net.IPv4(10, 99, 6, 1)}
	srv.serve(t, srvNS, "s0")
	r := acquireIn(t, cli, v6HelperConfig{Iface: "c0", DHCPTO: 10 * time.Second, Attempts: 3, ResolvConf: filepath.Join(t.TempDir(), "resolv.conf"), EnableFirst: true})
	if r.Err != "" {
		t.Fatalf("acquire: %s", r.Err)
	}
	if r.Lease.Addr != pfx("10.99.6.50/24") || r.Lease.V6 != nil {
		t.Fatalf("lease %+v, V6 %+v", r.Lease, r.Lease.V6)
	}
	log := strings.Join(r.Log, "\n")
	if !strings.Contains(log, "c0: IPv6 abandoned: no server answered within ") {
		t.Error("no IPv6 abandoned line in the log")
	}
	t.Logf("%d router solicitations sent; configured after %d ms", strings.Count(log, "router solicitation "), msSince(r.Log, "^0 ", "configured"))
}

// TestAcquireEither6: either6 on a network with a DHCPv6 server and no router: after the
// solicitation round, DHCPv6; the address is on-link only (no advertised prefix, no route).
func TestAcquireEither6(t *testing.T) {
	needRoot(t)
	cli, srv := v6Net(t)
	dnsmasq6(t, srv, "s0", "--no-ra", "--dhcp-range=fd00:99::100,fd00:99::1ff,64,1h")
	r := acquireIn(t, cli, v6HelperConfig{Iface: "c0", IP: "c0:either6", DHCPTO: 3 * time.Second, Attempts: 2, ResolvConf: filepath.Join(t.TempDir(), "resolv.conf"), EnableFirst: true})
	if r.Err != "" {
		t.Fatalf("acquire: %s", r.Err)
	}
	l := r.Lease.V6
	if l == nil || len(l.Addrs) != 1 || l.Addrs[0].From != "dhcpv6" || l.Addrs[0].Prefix.Bits() != 128 || l.Gateway.IsValid() {
		t.Fatalf("V6 %+v", l)
	}
	log := strings.Join(r.Log, "\n")
	if !strings.Contains(log, "no router advertisement within 4s: DHCPv6 (either6)") {
		t.Error("no either6 fallback line in the log")
	}
	addrs, routes := v6State(t, cli)
	if len(addrs) != 1 || addrs[0].IPNet.String() != l.Addrs[0].Prefix.String() || len(routes) != 0 {
		t.Errorf("addresses %+v, default routes %+v", addrs, routes)
	}
}
