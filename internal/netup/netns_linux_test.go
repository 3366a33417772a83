package netup

// Real tests in network namespaces: a DHCPv4 server (server4) runs in one namespace, Up runs
// in another, in a re-executed test binary under "ip netns exec" with its own UTS namespace
// (so its sethostname and every netlink call of its goroutines stay inside). Veth pairs are
// created directly inside the namespaces and only private addresses are used: nothing is
// sent outside them. They need root: skipped without it, failed without it when CI is set.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/insomniacslk/dhcp/rfc1035label"
	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const helperEnv = "NETUP_TEST_HELPER"

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		os.Exit(runHelper(cfg))
	}
	os.Exit(m.Run())
}

// helperConfig is what the parent asks the re-executed binary to run Up with.
type helperConfig struct {
	BootIF     string
	IP         string
	LinkTO     time.Duration
	DHCPTO     time.Duration
	Attempts   int
	ResolvConf string
}

// helperResult is what the helper reports on stdout.
type helperResult struct {
	Lease     *Lease
	Err       string
	ErrKind   string // NoLink, NoCarrier, NoLease
	Hostname  string
	ElapsedMS int64
}

func runHelper(cfgJSON string) int {
	var hc helperConfig
	if err := json.Unmarshal([]byte(cfgJSON), &hc); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	c := Config{
		LinkTimeout: hc.LinkTO, DHCPTimeout: hc.DHCPTO, DHCPAttempts: hc.Attempts,
		ResolvConf: hc.ResolvConf,
		Logf:       func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) },
	}
	var err error
	if hc.BootIF != "" {
		if c.BootIF, err = cmdline.ParseBootIF(hc.BootIF); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
	}
	if hc.IP != "" {
		if c.IP, err = cmdline.ParseIP(hc.IP); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 2
		}
	}
	start := time.Now()
	l, err := Up(context.Background(), c)
	r := helperResult{Lease: l, ElapsedMS: time.Since(start).Milliseconds()}
	if err != nil {
		r.Err = err.Error()
		for kind, e := range map[string]error{"NoLink": ErrNoLink, "NoCarrier": ErrNoCarrier, "NoLease": ErrNoLease} {
			if errors.Is(err, e) {
				r.ErrKind = kind
			}
		}
	}
	r.Hostname, _ = os.Hostname()
	json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// needRoot skips (or fails under CI) when namespaces cannot be made.
func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no network namespace tests")
	}
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs ip (iproute2)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s (CI is set)", why)
	}
	t.Skip(why)
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

var nsSeq atomic.Int32

// newNS creates a named network namespace, deleted at cleanup.
func newNS(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("netup-%d-%d-%s", os.Getpid(), nsSeq.Add(1), role)
	out, err := exec.Command("ip", "netns", "add", name).CombinedOutput()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ip netns add: %v\n%s", err, out)
		}
		t.Skipf("cannot create network namespaces: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name
}

// veth creates a veth pair between two namespaces, with the client end's MAC set and the
// peer end configured with addr, if given, and up if peerUp (the client end then has carrier
// once up). The client end stays down, as in an initramfs.
func veth(t *testing.T, cliNS, cli, mac, peerNS, peer, addr string, peerUp bool) {
	t.Helper()
	ipCmd(t, "link", "add", cli, "netns", cliNS, "address", mac, "type", "veth", "peer", "name", peer, "netns", peerNS)
	if addr != "" {
		ipCmd(t, "-n", peerNS, "addr", "add", addr, "dev", peer)
	}
	if peerUp {
		ipCmd(t, "-n", peerNS, "link", "set", peer, "up")
	}
}

// inNS runs fn on a thread switched into the namespace; sockets fn opens stay there.
func inNS(t *testing.T, name string, fn func() error) error {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it when the goroutine ends.
		t.Fatalf("restoring the network namespace: %v", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// dhcpServer is a test DHCPv4 server's answer: one address for whoever asks.
type dhcpServer struct {
	self, yiaddr net.IP
	mask         net.IPMask
	router       net.IP
	classless    []*dhcpv4.Route
	dns          []net.IP
	search       []string
	hostname     string
	mtu          uint16
	requests     atomic.Int32
	classIDs     chan string
}

func (s *dhcpServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	var mt dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		mt = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		mt = dhcpv4.MessageTypeAck
		s.requests.Add(1)
		select {
		case s.classIDs <- m.ClassIdentifier():
		default:
		}
	default:
		return
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithYourIP(s.yiaddr),
		dhcpv4.WithServerIP(s.self),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.self)),
		dhcpv4.WithNetmask(s.mask),
		dhcpv4.WithLeaseTime(3600),
		dhcpv4.WithOption(dhcpv4.OptBootFileName("ramboot.efi")),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(209), []byte("pxelinux.cfg/default"))),
	}
	if s.router != nil {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRouter(s.router)))
	}
	if len(s.classless) > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptClasslessStaticRoute(s.classless...)))
	}
	if len(s.dns) > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDNS(s.dns...)))
	}
	if len(s.search) > 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptDomainSearch(&rfc1035label.Labels{Labels: s.search})))
	}
	if s.hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(s.hostname)))
	}
	if s.mtu != 0 {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionInterfaceMTU, []byte{byte(s.mtu >> 8), byte(s.mtu)})))
	}
	resp, err := dhcpv4.NewReplyFromRequest(m, mods...)
	if err != nil {
		return
	}
	conn.WriteTo(resp.ToBytes(), peer) // server4 makes peer the broadcast address
}

// serve runs s on iface inside the namespace until cleanup.
func (s *dhcpServer) serve(t *testing.T, ns, iface string) {
	t.Helper()
	s.classIDs = make(chan string, 1)
	var srv *server4.Server
	err := inNS(t, ns, func() error {
		var err error
		srv, err = server4.NewServer(iface, nil, s.handle)
		return err
	})
	if err != nil {
		t.Fatalf("starting the DHCP server on %s: %v", iface, err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
}

// up runs Up in the client namespace, in a re-executed test binary.
func up(t *testing.T, ns string, hc helperConfig) (helperResult, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(hc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS} // its own hostname
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	t.Logf("Up's log:\n%s", stderr.String())
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	var r helperResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("helper output %q: %v", stdout.String(), err)
	}
	return r, stderr.String()
}

// nsState is what a namespace's links look like, read with a netlink handle in it.
type nsState struct {
	h *netlink.Handle
}

func openNS(t *testing.T, name string) nsState {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return nsState{h}
}

func (s nsState) link(t *testing.T, name string) netlink.Link {
	t.Helper()
	l, err := s.h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func (s nsState) addrs(t *testing.T, name string) []string {
	t.Helper()
	as, err := s.h.AddrList(s.link(t, name), netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		out = append(out, a.IPNet.String())
	}
	return out
}

// routes lists the namespace's main-table IPv4 routes as "dst via gw dev" strings, the
// kernel's own connected routes left out.
func (s nsState) routes(t *testing.T) []string {
	t.Helper()
	rs, err := s.h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Protocol == unix.RTPROT_KERNEL {
			continue
		}
		dst := "default"
		if r.Dst != nil && !(r.Dst.IP.IsUnspecified() && maskBits(r.Dst) == 0) {
			dst = r.Dst.String()
		}
		desc := dst
		if r.Gw != nil {
			desc += " via " + r.Gw.String()
		}
		if l, err := s.h.LinkByIndex(r.LinkIndex); err == nil {
			desc += " dev " + l.Attrs().Name
		}
		out = append(out, desc)
	}
	sort.Strings(out)
	return out
}

func maskBits(n *net.IPNet) int {
	ones, _ := n.Mask.Size()
	return ones
}

const (
	mac0 = "02:00:5e:00:00:10"
	mac1 = "02:00:5e:00:00:11"
)

func TestUpDHCP(t *testing.T) {
	needRoot(t)
	for _, tt := range []struct {
		name       string
		bootIF     bool
		router     net.IP
		classless  []*dhcpv4.Route
		wantRoutes []string
		wantGW     netip.Addr
	}{
		{
			name:   "option 121 wins over option 3",
			bootIF: true,
			router: net.IPv4(10, 99, 1, 1),
			classless: []*dhcpv4.Route{
				{Dest: ipnet("192.0.2.0/24"), Router: net.IPv4(10, 99, 1, 254)},
				{Dest: ipnet("198.51.100.0/24"), Router: net.IPv4zero},
			},
			wantRoutes: []string{"192.0.2.0/24 via 10.99.1.254 dev c0", "198.51.100.0/24 dev c0"},
		},
		{
			name:   "default route from option 121, not option 3",
			router: net.IPv4(10, 99, 1, 1),
			classless: []*dhcpv4.Route{
				{Dest: ipnet("0.0.0.0/0"), Router: net.IPv4(10, 99, 1, 254)},
			},
			wantRoutes: []string{"default via 10.99.1.254 dev c0"},
			wantGW:     ip("10.99.1.254"),
		},
		{
			name:       "router option alone",
			router:     net.IPv4(10, 99, 1, 1),
			wantRoutes: []string{"default via 10.99.1.1 dev c0"},
			wantGW:     ip("10.99.1.1"),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli, srvNS := newNS(t, "cli"), newNS(t, "srv")
			veth(t, cli, "c0", mac0, srvNS, "s0", "10.99.1.1/24", true)
			srv := &dhcpServer{
				self: net.IPv4(10, 99, 1, 1), yiaddr: net.IPv4(10, 99, 1, 50), mask: net.CIDRMask(24, 32),
				router: tt.router, classless: tt.classless,
				dns:    []net.IP{net.IPv4(10, 99, 1, 53), net.IPv4(10, 99, 1, 54)},
				search: []string{"lab.test"}, hostname: "node7", mtu: 1400,
			}
			srv.serve(t, srvNS, "s0")
			resolv := filepath.Join(t.TempDir(), "etc", "resolv.conf")
			hc := helperConfig{LinkTO: 5 * time.Second, DHCPTO: 3 * time.Second, Attempts: 2, ResolvConf: resolv}
			if tt.bootIF {
				hc.BootIF = "01-" + strings.ReplaceAll(mac0, ":", "-")
			}
			r, _ := up(t, cli, hc)
			if r.Err != "" {
				t.Fatalf("Up: %s", r.Err)
			}
			l := r.Lease
			if l.Iface != "c0" || l.MAC.String() != mac0 || l.Addr != pfx("10.99.1.50/24") || !l.DHCP ||
				l.Gateway != tt.wantGW || l.Server != ip("10.99.1.1") || l.MTU != 1400 ||
				l.BootFile != "ramboot.efi" || l.TFTPServer != "10.99.1.1" ||
				string(l.Options[209]) != "pxelinux.cfg/default" {
				t.Errorf("lease = %+v", l)
			}
			if cid := <-srv.classIDs; cid != "ramboot" {
				t.Errorf("class identifier sent = %q, want ramboot", cid)
			}

			st := openNS(t, cli)
			if got, want := st.addrs(t, "c0"), []string{"10.99.1.50/24"}; !slices.Equal(got, want) {
				t.Errorf("c0 addresses = %v, want %v", got, want)
			}
			if diff := cmp.Diff(tt.wantRoutes, st.routes(t)); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if got := st.link(t, "c0").Attrs().MTU; got != 1400 {
				t.Errorf("c0 MTU = %d, want 1400", got)
			}
			b, err := os.ReadFile(resolv)
			if err != nil {
				t.Fatal(err)
			}
			want := "# Written by ramboot from the boot NIC's configuration.\nsearch lab.test\nnameserver 10.99.1.53\nnameserver 10.99.1.54\n"
			if string(b) != want {
				t.Errorf("resolv.conf = %q, want %q", b, want)
			}
			if r.Hostname != "node7" {
				t.Errorf("hostname = %q, want node7", r.Hostname)
			}
		})
	}
}

// TestUpPicksNIC has two links: c0 reaches a DHCP server, c1 reaches a silent peer.
func TestUpPicksNIC(t *testing.T) {
	needRoot(t)
	bootif := func(mac string) string { return "01-" + strings.ReplaceAll(mac, ":", "-") }
	for _, tt := range []struct {
		name      string
		bootIF    string
		wantIface string // "" = Up fails
		tried     string // the NIC a failed Up tried (and left up)
		wantErr   string // ErrKind
		wantLog   string
	}{
		{name: "BOOTIF picks the NIC with the server", bootIF: bootif(mac0), wantIface: "c0"},
		{name: "race takes the NIC that answers", wantIface: "c0", wantLog: "c1 (" + mac1 + "): joining the DHCP race"},
		{name: "BOOTIF on the silent NIC fails, nothing else tried", bootIF: bootif(mac1), tried: "c1", wantErr: "NoLease"},
		{name: "BOOTIF that never appears", bootIF: bootif("02:00:5e:00:00:99"), wantErr: "NoLink"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli, srvNS, quiet := newNS(t, "cli"), newNS(t, "srv"), newNS(t, "quiet")
			veth(t, cli, "c0", mac0, srvNS, "s0", "10.99.2.1/24", true)
			veth(t, cli, "c1", mac1, quiet, "q1", "10.99.9.1/24", true)
			srv := &dhcpServer{self: net.IPv4(10, 99, 2, 1), yiaddr: net.IPv4(10, 99, 2, 50), mask: net.CIDRMask(24, 32), router: net.IPv4(10, 99, 2, 1)}
			srv.serve(t, srvNS, "s0")
			hc := helperConfig{
				BootIF: tt.bootIF, LinkTO: 2 * time.Second, DHCPTO: 2 * time.Second, Attempts: 2,
				ResolvConf: filepath.Join(t.TempDir(), "resolv.conf"),
			}
			r, log := up(t, cli, hc)
			// Every wait is bounded: link + attempts × DHCP, and some slack.
			if bound := hc.LinkTO + time.Duration(hc.Attempts)*hc.DHCPTO + 2*time.Second; time.Duration(r.ElapsedMS)*time.Millisecond > bound {
				t.Errorf("Up took %dms, want at most %v", r.ElapsedMS, bound)
			}
			if tt.wantLog != "" && !strings.Contains(log, tt.wantLog) {
				t.Errorf("log lacks %q", tt.wantLog)
			}
			st := openNS(t, cli)
			if tt.wantIface == "" {
				if r.Err == "" || r.ErrKind != tt.wantErr {
					t.Fatalf("Up = %+v, %q (%s), want an Err%s", r.Lease, r.Err, r.ErrKind, tt.wantErr)
				}
			} else {
				if r.Err != "" {
					t.Fatalf("Up: %s", r.Err)
				}
				if r.Lease.Iface != tt.wantIface || r.Lease.Addr != pfx("10.99.2.50/24") {
					t.Errorf("lease = %+v, want 10.99.2.50/24 on %s", r.Lease, tt.wantIface)
				}
				if got := st.addrs(t, tt.wantIface); !slices.Equal(got, []string{"10.99.2.50/24"}) {
					t.Errorf("%s addresses = %v", tt.wantIface, got)
				}
			}
			// The other NICs: no address, and down (the race set c1 up, then down again).
			for _, name := range []string{"c0", "c1"} {
				if name == tt.wantIface || name == tt.tried {
					continue
				}
				if got := st.addrs(t, name); len(got) != 0 {
					t.Errorf("%s addresses = %v, want none", name, got)
				}
				if st.link(t, name).Attrs().Flags&net.FlagUp != 0 {
					t.Errorf("%s is up, want it left down", name)
				}
			}
			if srv.requests.Load() > 0 && tt.wantIface == "" {
				t.Errorf("the server on c0 got a request")
			}
		})
	}
}

func TestUpStatic(t *testing.T) {
	needRoot(t)
	for _, tt := range []struct {
		name      string
		ip        string
		c0Carrier bool
		wantIface string
	}{
		{"device named", "10.99.3.5::10.99.3.1:255.255.255.0:statichost:c0:off:10.99.3.53", true, "c0"},
		{"first NIC with carrier", "10.99.3.5::10.99.3.1:255.255.255.0:statichost::off:10.99.3.53", false, "c1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli, peer := newNS(t, "cli"), newNS(t, "peer")
			veth(t, cli, "c0", mac0, peer, "p0", "", tt.c0Carrier)
			veth(t, cli, "c1", mac1, peer, "p1", "", true)
			resolv := filepath.Join(t.TempDir(), "resolv.conf")
			r, _ := up(t, cli, helperConfig{IP: tt.ip, LinkTO: 5 * time.Second, DHCPTO: 30 * time.Second, ResolvConf: resolv})
			if r.Err != "" {
				t.Fatalf("Up: %s", r.Err)
			}
			if r.ElapsedMS > 4000 {
				t.Errorf("Up took %dms: no DHCP should have run", r.ElapsedMS)
			}
			l := r.Lease
			if l.DHCP || l.Iface != tt.wantIface || l.Addr != pfx("10.99.3.5/24") || l.Gateway != ip("10.99.3.1") {
				t.Errorf("lease = %+v", l)
			}
			st := openNS(t, cli)
			if got := st.addrs(t, tt.wantIface); !slices.Equal(got, []string{"10.99.3.5/24"}) {
				t.Errorf("%s addresses = %v", tt.wantIface, got)
			}
			if diff := cmp.Diff([]string{"default via 10.99.3.1 dev " + tt.wantIface}, st.routes(t)); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
			if other := map[string]string{"c0": "c1", "c1": "c0"}[tt.wantIface]; st.link(t, other).Attrs().Flags&net.FlagUp != 0 {
				t.Errorf("%s is up, want it left down", other)
			}
			b, _ := os.ReadFile(resolv)
			if !strings.Contains(string(b), "nameserver 10.99.3.53\n") {
				t.Errorf("resolv.conf = %q, want nameserver 10.99.3.53", b)
			}
			if r.Hostname != "statichost" {
				t.Errorf("hostname = %q, want statichost", r.Hostname)
			}
		})
	}
}
