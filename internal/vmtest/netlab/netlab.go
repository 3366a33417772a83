// Package netlab gives VM tests a network to boot from: a network namespace (the lab) with
// the servers a boot needs, reached by the guests through a vswitch TAP port placed in it.
// Debian's dnsmasq serves DHCPv4, DHCPv6 and router advertisements there, with the test's
// configuration and its log readable by the test; Go HTTP servers listen inside it.
// Everything is removed when the test ends, failed or not.
//
// It needs root (network namespaces, TAP devices): without it, a test is skipped, or fails
// when CI is set. A VM test wires it up so (the guest on a VLAN 42 trunk, the lab on an
// access port of VLAN 42):
//
//	l := netlab.New(t)
//	sw := vswitch.New(vswitch.Options{Logf: t.Logf})
//	t.Cleanup(func() { sw.Close() })
//	if _, err := sw.AddTap("uplink", l.Path(), "lab0", vswitch.Access(42)); err != nil {
//		t.Fatal(err)
//	}
//	l.Up("lab0", "10.42.0.1/24", "fd00:42::1/64")
//	d := l.Dnsmasq(netlab.DnsmasqConfig{Interface: "lab0", Lines: []string{
//		"dhcp-range=10.42.0.50,10.42.0.99,255.255.255.0,2m", "dhcp-authoritative"}})
//	url := l.ServeHTTP("10.42.0.1:0", handler) // "http://10.42.0.1:PORT"
//	p, err := sw.AddPort("guest", vswitch.Trunk(42))
//	…
//	vm := vmtest.Start(t, vmtest.Options{Kernel: k, Initrd: initrd,
//		Extra: p.QEMUArgs("n0", "52:54:00:12:34:56")})
//	…
//	d.Requests("52:54:00:12:34:56") // DHCPREQUESTs dnsmasq logged from the guest
//
// Test-only: nothing in /init or the CLI imports it.
package netlab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// Need skips the test without root (or without ip), and fails it instead when CI is set.
func Need(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no network lab")
	}
	if os.Geteuid() != 0 {
		vmtest.Missing(t, "root (network namespaces and TAP devices)")
	}
	vmtest.Tool(t, "ip")
}

// Lab is a network namespace for one test.
type Lab struct {
	t    testing.TB
	Name string // the namespace's name (ip netns)
}

var (
	seq       atomic.Int32
	sweepOnce sync.Once
)

// sweep deletes the namespaces of labs whose test binary is gone.
func sweep() {
	names, _ := filepath.Glob("/run/netns/rbl-*")
	for _, n := range names {
		var pid, i int
		if _, err := fmt.Sscanf(filepath.Base(n), "rbl-%d-%d", &pid, &i); err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			exec.Command("ip", "netns", "del", filepath.Base(n)).Run()
		}
	}
}

// New creates a namespace with its loopback up; it is deleted when the test ends. Labs left
// behind by test binaries that were killed (their name holds the process id) go first.
func New(t testing.TB) *Lab {
	t.Helper()
	Need(t)
	sweepOnce.Do(sweep)
	l := &Lab{t: t, Name: fmt.Sprintf("rbl-%d-%d", os.Getpid(), seq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", l.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", l.Name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", l.Name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v\n%s", l.Name, err, out)
		}
	})
	l.IP("link", "set", "lo", "up")
	return l
}

// Path is the namespace's file, for vswitch.Switch.AddTap and setns(2).
func (l *Lab) Path() string { return filepath.Join("/run/netns", l.Name) }

// IP runs `ip -n NAME args…`, failing the test on error, and returns its output.
func (l *Lab) IP(args ...string) string {
	l.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", l.Name}, args...)...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ip -n %s %s: %v\n%s", l.Name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Command is a command that runs in the namespace (through `ip netns exec`, which execs it:
// the process is the command itself).
func (l *Lab) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", l.Name, name}, args...)...)
}

// Up brings dev up in the namespace with the addresses given ("10.42.0.1/24",
// "fd00:42::1/64"). Duplicate address detection is off on dev: its addresses, link-local
// included, are usable at once. (While the link-local address is tentative, the kernel
// gives dnsmasq's router advertisements the global address as source, and Linux guests
// ignore an RA that does not come from a link-local address.)
func (l *Lab) Up(dev string, addrs ...string) {
	l.t.Helper()
	if out, err := l.Command("sh", "-c", "echo 0 >/proc/sys/net/ipv6/conf/"+dev+"/accept_dad").CombinedOutput(); err != nil {
		l.t.Fatalf("turning DAD off on %s: %v\n%s", dev, err, out)
	}
	for _, a := range addrs {
		args := []string{"addr", "add", a, "dev", dev}
		if strings.Contains(a, ":") {
			args = append(args, "nodad")
		}
		l.IP(args...)
	}
	l.IP("link", "set", dev, "up")
}

// Do runs fn on an OS thread switched into the namespace: sockets it opens belong there and
// stay there (a socket keeps the namespace it was created in), whichever goroutine uses them.
func (l *Lab) Do(fn func() error) error {
	errc := make(chan error, 1)
	// A fresh goroutine: its thread is discarded, not reused, should switching back fail.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(l.Path())
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", l.Path(), err)
			return
		}
		err = fn()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Listen opens a listener inside the namespace ("tcp", "10.42.0.1:0" or "[fd00:42::1]:8080").
func (l *Lab) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := l.Do(func() (err error) {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// Dial connects from inside the namespace.
func (l *Lab) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := l.Do(func() (err error) {
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient is a client whose connections start inside the namespace (a test's view from
// the servers' side).
func (l *Lab) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: l.Dial, DisableKeepAlives: true}}
}

// ServeHTTP serves h on addr inside the namespace until the test ends, and returns the
// server's base URL: "http://10.42.0.1:PORT" or "http://[fd00:42::1]:PORT".
func (l *Lab) ServeHTTP(addr string, h http.Handler) string {
	l.t.Helper()
	ln, err := l.Listen("tcp", addr)
	if err != nil {
		l.t.Fatalf("listening on %s in %s: %v", addr, l.Name, err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		srv.Serve(ln)
		close(done)
	}()
	l.t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return "http://" + ln.Addr().String()
}
