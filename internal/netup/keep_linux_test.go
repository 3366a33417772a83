package netup

// Keeper in network namespaces (see netns_linux_test.go): a server4 DHCP server with a short
// lease in one namespace; Up, then Keep, in a re-executed test binary in another, driven over
// its stdin ("fresh", "stop") and reporting on stdout. The parent watches the client's
// addresses through a netlink subscription in the client's namespace: every deletion is seen,
// not sampled.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

const keepHelperEnv = "NETUP_KEEP_HELPER"

// keepReport is one line of the helper's stdout, after the "KEEP " prefix.
type keepReport struct {
	Event string // up, fresh, stopped
	Lease *Lease
	Err   string
}

// TestKeepHelperProcess is the client side of the TestKeep* tests, run only re-executed by
// them (it returns at once otherwise).
func TestKeepHelperProcess(t *testing.T) {
	cfg := os.Getenv(keepHelperEnv)
	if cfg == "" {
		return
	}
	var hc helperConfig
	if err := json.Unmarshal([]byte(cfg), &hc); err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC(hc.BootIF)
	c := Config{
		BootIF: mac, LinkTimeout: hc.LinkTO, DHCPTimeout: hc.DHCPTO, DHCPAttempts: hc.Attempts,
		ResolvConf: hc.ResolvConf,
		Logf:       func(f string, a ...any) { fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+f+"\n", a...) },
	}
	out := json.NewEncoder(os.Stdout)
	report := func(r keepReport) {
		os.Stdout.WriteString("KEEP ")
		out.Encode(r)
	}
	// Renewing, rebinding and soliciting again must not wait for the kernel's entropy either.
	if err := trapGetrandom(); err != nil {
		report(keepReport{Event: "up", Err: "seccomp: " + err.Error()})
		return
	}
	var (
		l   *Lease
		err error
	)
	if hc.IP != "" {
		l, err = up6(c, hc.IP)
	} else {
		l, err = Up(context.Background(), c)
	}
	if err != nil {
		report(keepReport{Event: "up", Err: err.Error()})
		return
	}
	k := Keep(context.Background(), c, l)
	report(keepReport{Event: "up", Lease: l})
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "fresh":
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			l, err := k.Fresh(ctx)
			cancel()
			r := keepReport{Event: "fresh", Lease: l}
			if err != nil {
				r.Err = err.Error()
			}
			report(r)
		case "stop":
			k.Stop()
			k.Stop() // idempotent
			l, _ := k.Current()
			report(keepReport{Event: "stopped", Lease: l})
			return
		}
	}
}

// up6 is IPv6 alone on c0 (ip= says how) as acquire and configure6 do it, then with every
// lifetime cut to 8 seconds (dnsmasq gives nothing under two minutes) so that the keeper
// has to solicit again within the test.
func up6(c Config, ip string) (*Lease, error) {
	var err error
	if c.IP, err = cmdline.ParseIP(ip); err != nil {
		return nil, err
	}
	c.BootIF = nil
	c = c.withDefaults()
	ctx := context.Background()
	link, err := netlink.LinkByName("c0")
	if err != nil {
		return nil, err
	}
	if err := enableIPv6("c0"); err != nil {
		return nil, err
	}
	if link, err = waitCarrier(ctx, Config{}, link, time.Now().Add(5*time.Second)); err != nil {
		return nil, err
	}
	l, err := acquire(ctx, c, link)
	if err != nil {
		return nil, err
	}
	if l.V6 == nil {
		return nil, fmt.Errorf("no IPv6: %+v", l)
	}
	now := time.Now()
	for i := range l.V6.Addrs {
		l.V6.Addrs[i].Obtained, l.V6.Addrs[i].Valid, l.V6.Addrs[i].Preferred = now, 8*time.Second, 8*time.Second
	}
	l.V6.Obtained, l.V6.GatewayLifetime = now, 8*time.Second
	return l, configure6(c, link, l)
}

// leaseServer answers DHCP with a short lease and counts what it sees.
type leaseServer struct {
	mu        sync.Mutex
	self      net.IP   // server identifier (the test may move it)
	yiaddr    []net.IP // offered in turn: the next one after each NAK
	router    net.IP
	leaseSecs uint32
	t2Secs    uint32 // option 59, if not 0
	mode      string // "" answer, "nak" NAK renewals, "silent"
	discovers int    // DISCOVER exchanges: a retransmission (same xid) is not a new one
	seen      map[dhcpv4.TransactionID]bool
	renewals  int      // REQUESTs with ciaddr set (renewing or rebinding)
	naks      int      //
	bad       []string // renewals that break RFC 2131 4.3.2
}

func (s *leaseServer) set(f func(s *leaseServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *leaseServer) count() (discovers, renewals, naks int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.discovers, s.renewals, s.naks
}

func (s *leaseServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == "silent" {
		return
	}
	var mt dhcpv4.MessageType
	renewal := m.MessageType() == dhcpv4.MessageTypeRequest && !m.ClientIPAddr.IsUnspecified()
	switch {
	case m.MessageType() == dhcpv4.MessageTypeDiscover:
		// On a loaded machine the client may retransmit before the OFFER is read: the same
		// exchange, not a new acquisition.
		if !s.seen[m.TransactionID] {
			if s.seen == nil {
				s.seen = map[dhcpv4.TransactionID]bool{}
			}
			s.seen[m.TransactionID] = true
			s.discovers++
		}
		mt = dhcpv4.MessageTypeOffer
	case renewal:
		s.renewals++
		if m.Options.Has(dhcpv4.OptionServerIdentifier) || m.Options.Has(dhcpv4.OptionRequestedIPAddress) {
			s.bad = append(s.bad, m.Summary())
		}
		if !m.ClientIPAddr.Equal(s.yiaddr[0]) {
			s.bad = append(s.bad, "ciaddr "+m.ClientIPAddr.String())
		}
		mt = dhcpv4.MessageTypeAck
		if s.mode == "nak" {
			mt = dhcpv4.MessageTypeNak
			s.naks++
			s.yiaddr = s.yiaddr[1:]
			s.mode = ""
		}
	case m.MessageType() == dhcpv4.MessageTypeRequest:
		mt = dhcpv4.MessageTypeAck
	default:
		return
	}
	mods := []dhcpv4.Modifier{
		dhcpv4.WithMessageType(mt),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(s.self)),
	}
	if mt != dhcpv4.MessageTypeNak {
		mods = append(mods,
			dhcpv4.WithYourIP(s.yiaddr[0]),
			dhcpv4.WithNetmask(net.CIDRMask(24, 32)),
			dhcpv4.WithLeaseTime(s.leaseSecs),
			dhcpv4.WithOption(dhcpv4.OptRouter(s.router)))
	}
	if s.t2Secs != 0 && mt != dhcpv4.MessageTypeNak {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptRebindingTimeValue(time.Duration(s.t2Secs)*time.Second)))
	}
	resp, err := dhcpv4.NewReplyFromRequest(m, mods...)
	if err != nil {
		return
	}
	if mt == dhcpv4.MessageTypeNak { // RFC 2131 4.3.2: broadcast when giaddr is zero
		peer = &net.UDPAddr{IP: net.IPv4bcast, Port: 68}
	}
	conn.WriteTo(resp.ToBytes(), peer)
}

func (s *leaseServer) serve(t *testing.T, ns, iface string) {
	t.Helper()
	var srv *server4.Server
	if err := inNS(t, ns, func() (err error) {
		srv, err = server4.NewServer(iface, nil, s.handle)
		return err
	}); err != nil {
		t.Fatalf("starting the DHCP server: %v", err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
}

// keepClient is the re-executed helper running Up and Keep.
type keepClient struct {
	t       *testing.T
	ns      string
	stdin   io.WriteCloser
	reports chan keepReport
	done    chan error
	log     *strings.Builder
	logMu   *sync.Mutex
}

func startKeep(t *testing.T, ns string, ip string) *keepClient {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hc := helperConfig{
		BootIF: mac0, IP: ip, LinkTO: 5 * time.Second, DHCPTO: 2 * time.Second, Attempts: 2,
		ResolvConf: filepath.Join(t.TempDir(), "resolv.conf"),
	}
	b, _ := json.Marshal(hc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, exe, "-test.run=^TestKeepHelperProcess$")
	cmd.Env = append(os.Environ(), keepHelperEnv+"="+string(b))
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS}
	kc := &keepClient{t: t, ns: ns, reports: make(chan keepReport, 16), done: make(chan error, 1), log: &strings.Builder{}, logMu: &sync.Mutex{}}
	kc.stdin, _ = cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if line, ok := strings.CutPrefix(sc.Text(), "KEEP "); ok {
				var r keepReport
				if err := json.Unmarshal([]byte(line), &r); err == nil {
					kc.reports <- r
				}
			}
		}
	}()
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			kc.logMu.Lock()
			kc.log.WriteString(sc.Text() + "\n")
			kc.logMu.Unlock()
		}
	}()
	go func() {
		wg.Wait()
		kc.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		kc.stdin.Close()
		cancel()
		<-kc.done
		t.Logf("client's log:\n%s", kc.logText())
	})
	return kc
}

func (kc *keepClient) logText() string {
	kc.logMu.Lock()
	defer kc.logMu.Unlock()
	return kc.log.String()
}

// next waits for the helper's next report of the event.
func (kc *keepClient) next(event string) keepReport {
	kc.t.Helper()
	select {
	case r := <-kc.reports:
		if r.Event != event {
			kc.t.Fatalf("helper reported %+v, want %s", r, event)
		}
		return r
	case err := <-kc.done:
		kc.t.Fatalf("helper ended (%v) before %s", err, event)
	case <-time.After(2 * time.Minute):
		kc.t.Fatalf("no %s from the helper", event)
	}
	return keepReport{}
}

func (kc *keepClient) send(cmd string) { fmt.Fprintln(kc.stdin, cmd) }

// addrWatch records every IPv4 address deletion in a namespace.
type addrWatch struct {
	mu      sync.Mutex
	deleted []string
}

func watchAddrs(t *testing.T, ns string) *addrWatch { return watchAddrsFamily(t, ns, false) }

// watchAddrsFamily is watchAddrs for IPv4 (v6 false) or global IPv6 addresses.
func watchAddrsFamily(t *testing.T, ns string, v6 bool) *addrWatch {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	if err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{Namespace: &h}); err != nil {
		t.Fatal(err)
	}
	w := &addrWatch{}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for u := range ch {
			if is4 := u.LinkAddress.IP.To4() != nil; !u.NewAddr && is4 != v6 && !u.LinkAddress.IP.IsLinkLocalUnicast() {
				w.mu.Lock()
				w.deleted = append(w.deleted, u.LinkAddress.String())
				w.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(done) })
	return w
}

func (w *addrWatch) deletions() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.deleted)
}

// waitFor polls cond until it holds; the bound is a failure, not a measure of speed.
func waitFor(t *testing.T, what string, bound time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// keepSetup makes the namespaces, the server on 10.99.N.1 offering 10.99.N.50 (then .51
// after a NAK) for 8 seconds, and starts the client; it returns once the client is up.
func keepSetup(t *testing.T, n byte) (*leaseServer, *keepClient, nsState, *addrWatch, *Lease) {
	srv, kc, st, w, l, _ := keepSetupNS(t, n, 0)
	return srv, kc, st, w, l
}

// keepSetupNS is keepSetup with the server's namespace returned, and T2 (option 59) set
// when t2 is not 0.
func keepSetupNS(t *testing.T, n byte, t2 uint32) (*leaseServer, *keepClient, nsState, *addrWatch, *Lease, string) {
	cli, srvNS := newNS(t, "cli"), newNS(t, "srv")
	veth(t, cli, "c0", mac0, srvNS, "s0", fmt.Sprintf("10.99.%d.1/24", n), true)
	srv := &leaseServer{
		self:      net.IPv4(10, 99, n, 1),
		yiaddr:    []net.IP{net.IPv4(10, 99, n, 50), net.IPv4(10, 99, n, 51)},
		router:    net.IPv4(10, 99, n, 254),
		leaseSecs: 8,
		t2Secs:    t2,
	}
	srv.serve(t, srvNS, "s0")
	st := openNS(t, cli)
	w := watchAddrs(t, cli)
	kc := startKeep(t, cli, "")
	r := kc.next("up")
	if r.Err != "" {
		t.Fatalf("Up: %s", r.Err)
	}
	l := r.Lease
	wantT1, wantT2 := 4*time.Second, 7*time.Second
	if t2 != 0 {
		wantT2 = time.Duration(t2) * time.Second
		if wantT1 >= wantT2 {
			wantT1 = wantT2 / 2
		}
	}
	if l.LeaseTime != 8*time.Second || l.T1 != wantT1 || l.T2 != wantT2 || l.Obtained.IsZero() {
		t.Fatalf("lease times: obtained %v, %v %v %v; want 8s %v %v", l.Obtained, l.LeaseTime, l.T1, l.T2, wantT1, wantT2)
	}
	if v := validLft(t, st, l.Addr); v < 1 || v > 8 {
		t.Errorf("%s valid_lft = %d, want 1..8 (the lease's)", l.Addr, v)
	}
	return srv, kc, st, w, l, srvNS
}

// validLft is the kernel's valid lifetime of p on c0 (-1: no such address).
func validLft(t *testing.T, st nsState, p netip.Prefix) int {
	t.Helper()
	as, err := st.h.AddrList(st.link(t, "c0"), netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.IPNet.String() == p.String() {
			return a.ValidLft
		}
	}
	return -1
}

const forever = 0xffffffff

func TestKeepRenews(t *testing.T) {
	needRoot(t)
	srv, kc, st, w, l := keepSetup(t, 21)
	// Three renewals of an 8-second lease: about 12 s.
	waitFor(t, "3 renewals", time.Minute, func() bool { _, r, _ := srv.count(); return r >= 3 })
	if d := w.deletions(); len(d) != 0 {
		t.Errorf("addresses deleted while the lease was renewed: %v", d)
	}
	if v := validLft(t, st, l.Addr); v < 1 || v > 8 {
		t.Errorf("%s valid_lft = %d after renewals, want 1..8", l.Addr, v)
	}
	kc.send("fresh")
	if r := kc.next("fresh"); r.Err != "" || r.Lease.Addr != l.Addr || !r.Lease.Obtained.After(l.Obtained) {
		t.Errorf("Fresh = %+v, want %s renewed after %v", r, l.Addr, l.Obtained)
	}
	kc.send("stop")
	kc.next("stopped")
	if v := validLft(t, st, l.Addr); v != forever {
		t.Errorf("%s valid_lft = %d after Stop, want forever (handed over)", l.Addr, v)
	}
	if diff := st.routes(t); !slices.Equal(diff, []string{"default via 10.99.21.254 dev c0"}) {
		t.Errorf("routes = %v", diff)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.bad) > 0 {
		t.Errorf("renewals breaking RFC 2131 4.3.2 (server id or requested address, wrong ciaddr): %v", srv.bad)
	}
	if srv.discovers != 1 {
		t.Errorf("%d DISCOVERs, want 1 (renewals only after Up)", srv.discovers)
	}
	if !strings.Contains(kc.logText(), "lease renewed until") {
		t.Errorf("the client's log says no renewal")
	}
	t.Logf("%d renewals", srv.renewals)
}

func TestKeepNAK(t *testing.T) {
	needRoot(t)
	srv, kc, st, w, l := keepSetup(t, 22)
	srv.set(func(s *leaseServer) { s.mode = "nak" })
	want := pfx("10.99.22.51/24")
	waitFor(t, "the new address after the NAK", time.Minute, func() bool {
		return slices.Equal(st.addrs(t, "c0"), []string{want.String()})
	})
	if _, _, naks := srv.count(); naks != 1 {
		t.Errorf("%d NAKs sent, want 1", naks)
	}
	// The watcher hears of a deletion after a dump stops showing the address (CI saw none yet).
	waitFor(t, "the deletion reported", 10*time.Second, func() bool { return len(w.deletions()) > 0 })
	if d := w.deletions(); !slices.Contains(d, l.Addr.String()) {
		t.Errorf("deletions = %v, want %s removed after the NAK", d, l.Addr)
	}
	if got := st.routes(t); !slices.Equal(got, []string{"default via 10.99.22.254 dev c0"}) {
		t.Errorf("routes after re-acquiring = %v", got)
	}
	kc.send("fresh")
	if r := kc.next("fresh"); r.Err != "" || r.Lease.Addr != want {
		t.Errorf("Fresh = %+v, want %s", r, want)
	}
	if v := validLft(t, st, want); v < 1 || v > 8 {
		t.Errorf("%s valid_lft = %d, want 1..8", want, v)
	}
	if !strings.Contains(kc.logText(), "NAK from 10.99.22.1") {
		t.Errorf("the client's log does not name the NAK")
	}
}

func TestKeepRebindExpire(t *testing.T) {
	needRoot(t)
	// T2 at 5 s of 8: three seconds of rebinding, not the default one, on a loaded machine.
	srv, kc, st, w, l, srvNS := keepSetupNS(t, 23, 5)
	// The server moves to .2: unicast renewals to .1 find no one; the broadcast at T2 does.
	_, before, _ := srv.count()
	srv.set(func(s *leaseServer) { s.self = net.IPv4(10, 99, 23, 2) })
	// In this order: deleting a primary address deletes its subnet's secondaries.
	ipCmd(t, "-n", srvNS, "addr", "del", "10.99.23.1/24", "dev", "s0")
	ipCmd(t, "-n", srvNS, "addr", "add", "10.99.23.2/24", "dev", "s0")
	waitFor(t, "a rebinding ACK", time.Minute, func() bool {
		return strings.Contains(kc.logText(), "lease rebound with 10.99.23.2")
	})
	if _, after, _ := srv.count(); after <= before {
		t.Errorf("the moved server saw no REQUEST")
	}
	if d := w.deletions(); len(d) != 0 {
		t.Errorf("addresses deleted while rebinding: %v", d)
	}
	// The server goes silent: the address ends with the lease, removed.
	srv.set(func(s *leaseServer) { s.mode = "silent" })
	waitFor(t, "the address removed at the lease's end", time.Minute, func() bool {
		return len(st.addrs(t, "c0")) == 0
	})
	// The watcher hears of the deletion after a dump stops showing the address: CI once
	// checked in between ("deletions = [], want [10.99.23.50/24]").
	waitFor(t, "the deletion reported", 10*time.Second, func() bool { return len(w.deletions()) > 0 })
	if d := w.deletions(); !slices.Equal(d, []string{l.Addr.String()}) {
		t.Errorf("deletions = %v, want [%s]", d, l.Addr)
	}
	kc.send("fresh")
	if r := kc.next("fresh"); r.Err == "" || !strings.Contains(r.Err, ErrNoLease.Error()) {
		t.Errorf("Fresh with no server = %+v, want an error wrapping ErrNoLease", r)
	}
	if got := st.addrs(t, "c0"); len(got) != 0 {
		t.Errorf("addresses with no lease: %v", got)
	}
	srv.set(func(s *leaseServer) { s.mode = "" })
	kc.send("fresh")
	if r := kc.next("fresh"); r.Err != "" || r.Lease.Addr != l.Addr || r.Lease.Server != ip("10.99.23.2") {
		t.Errorf("Fresh with the server back = %+v, want %s from 10.99.23.2", r, l.Addr)
	}
	if got := st.addrs(t, "c0"); !slices.Equal(got, []string{l.Addr.String()}) {
		t.Errorf("addresses after Fresh = %v", got)
	}
	if got := st.routes(t); !slices.Equal(got, []string{"default via 10.99.23.254 dev c0"}) {
		t.Errorf("routes after Fresh = %v (want them restored)", got)
	}
	for _, want := range []string{"renewing with 10.99.23.1", "lease ended", "DISCOVER"} {
		if !strings.Contains(kc.logText(), want) {
			t.Errorf("the client's log lacks %q", want)
		}
	}
}

// TestKeepIPv6: SLAAC from dnsmasq's router advertisements, or a DHCPv6 address, its
// lifetimes cut to 8 seconds; the keeper solicits again at half of them and installs the
// server's (an hour), before the address could end, and keeps the same address.
func TestKeepIPv6(t *testing.T) {
	needRoot(t)
	for _, tt := range []struct {
		name, ip string
		args     []string
		from     string
	}{
		{"SLAAC", "c0:auto6", []string{"--dhcp-range=::,constructor:s0,ra-stateless,64,1h"}, "slaac"},
		{"DHCPv6", "c0:dhcp6", []string{"--dhcp-range=fd00:99::100,fd00:99::1ff,64,1h"}, "dhcpv6"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cli, srv := v6Net(t)
			dnsmasq6(t, srv, "s0", tt.args...)
			w := watchAddrsFamily(t, cli, true)
			kc := startKeep(t, cli, tt.ip)
			r := kc.next("up")
			if r.Err != "" {
				t.Fatalf("IPv6: %s", r.Err)
			}
			if r.Lease.V6 == nil || len(r.Lease.V6.Addrs) != 1 || r.Lease.V6.Addrs[0].From != tt.from {
				t.Fatalf("lease %+v", r.Lease.V6)
			}
			want := r.Lease.V6.Addrs[0].Prefix
			valid6 := func() int {
				addrs, _ := v6State(t, cli)
				for _, a := range addrs {
					if a.IPNet.String() == want.String() {
						return a.ValidLft
					}
				}
				return -1
			}
			if v := valid6(); v < 1 || v > 8 {
				t.Fatalf("%s valid_lft = %d, want the cut 1..8", want, v)
			}
			waitFor(t, "IPv6 solicited again", time.Minute, func() bool { return strings.Contains(kc.logText(), "IPv6 refreshed") })
			if v := valid6(); v <= 8 || v > 3600 {
				t.Errorf("%s valid_lft = %d after the refresh, want the server's hour", want, v)
			}
			kc.send("fresh")
			if r := kc.next("fresh"); r.Err != "" || r.Lease.V6 == nil || len(r.Lease.V6.Addrs) != 1 ||
				r.Lease.V6.Addrs[0].Prefix != want || r.Lease.V6.Addrs[0].Valid <= 8*time.Second {
				t.Errorf("Fresh = %+v, want %s with the refreshed lifetimes", r, want)
			} else {
				a := r.Lease.V6.Addrs[0]
				t.Logf("after the refresh: %s valid %v preferred %v", a, a.Valid, a.Preferred)
			}
			kc.send("stop")
			kc.next("stopped")
			if v := valid6(); v != forever {
				t.Errorf("%s valid_lft = %d after Stop, want forever", want, v)
			}
			if d := w.deletions(); len(d) != 0 {
				t.Errorf("IPv6 addresses deleted: %v", d)
			}
			if _, routes := v6State(t, cli); len(routes) != 1 {
				t.Errorf("default routes %+v, want the router's", routes)
			}
		})
	}
}
