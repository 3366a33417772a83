package netlab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// DnsmasqConfig is a dnsmasq to run in the lab.
type DnsmasqConfig struct {
	// Interface is the device it serves (the TAP), required.
	Interface string
	// Lines are dnsmasq.conf lines (without leading dashes), the test's own: DHCP ranges,
	// options, RA. For example:
	//
	//	dhcp-range=10.42.0.50,10.42.0.99,255.255.255.0,2m
	//	dhcp-option=option:bootfile-name,http://10.42.0.1:8080/menu   (option 67)
	//	enable-ra
	//	dhcp-range=fd00:42::100,fd00:42::1ff,64,2m                     (stateful DHCPv6)
	//	dhcp-option=option6:bootfile-url,http://[fd00:42::1]:8080/menu  (option 59)
	//	dhcp-authoritative
	//
	// dnsmasq raises any lease time under two minutes to two minutes (see the package tests):
	// a 60-second lease needs another server.
	Lines []string
}

// Dnsmasq is a dnsmasq running in the lab, in the foreground, stopped when the test ends.
// The netlab adds to the test's lines: no DNS (port=0), no resolv.conf or /etc/hosts, its
// own log file with every DHCP exchange (log-dhcp), lease and pid files in a temporary
// directory, and no dropping of root (user=root), so that it reads and writes them. It also
// offers an address without first pinging it (no-ping): dnsmasq's check waits 3 seconds
// for an echo reply on the first offer, which would count in every boot's DHCP time.
type Dnsmasq struct {
	t       testing.TB
	Conf    string // the configuration file written
	LogFile string
	Leases  string // the lease file
	stderr  *bytes.Buffer
	exited  chan struct{}
}

// Dnsmasq starts Debian's dnsmasq (/usr/sbin/dnsmasq, or the PATH's) in the lab and waits
// until it has started. Without dnsmasq the test fails in CI and is skipped elsewhere.
func (l *Lab) Dnsmasq(c DnsmasqConfig) *Dnsmasq {
	l.t.Helper()
	bin := "/usr/sbin/dnsmasq"
	if _, err := os.Stat(bin); err != nil {
		bin = vmtest.Tool(l.t, "dnsmasq")
	}
	if c.Interface == "" {
		l.t.Fatalf("netlab: dnsmasq without an interface")
	}
	dir := l.t.TempDir()
	d := &Dnsmasq{t: l.t, Conf: filepath.Join(dir, "dnsmasq.conf"), LogFile: filepath.Join(dir, "dnsmasq.log"),
		Leases: filepath.Join(dir, "leases"), stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	conf := []string{
		"port=0", "no-resolv", "no-hosts", "user=root", "group=root",
		"interface=" + c.Interface, "log-dhcp", "no-ping",
		"log-facility=" + d.LogFile, "dhcp-leasefile=" + d.Leases, "pid-file=" + filepath.Join(dir, "pid"),
	}
	conf = append(conf, c.Lines...)
	if err := os.WriteFile(d.Conf, []byte(strings.Join(conf, "\n")+"\n"), 0o644); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	cmd := l.Command(bin, "--keep-in-foreground", "--conf-file="+d.Conf)
	cmd.Stdout, cmd.Stderr = d.stderr, d.stderr
	if err := cmd.Start(); err != nil {
		l.t.Fatalf("netlab: starting dnsmasq: %v", err)
	}
	go func() {
		cmd.Wait()
		close(d.exited)
	}()
	l.t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-d.exited
		}
		if l.t.Failed() {
			l.t.Logf("dnsmasq log:\n%s%s", d.Log(), d.stderr)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := d.Wait(ctx, `dnsmasq\[\d+\]: started`); err != nil {
		l.t.Fatalf("netlab: dnsmasq did not start: %v\n%s\n%s", err, d.Log(), d.stderr)
	}
	return d
}

// Log is dnsmasq's log so far.
func (d *Dnsmasq) Log() string {
	b, _ := os.ReadFile(d.LogFile)
	return string(b)
}

// Count is the number of log lines that match re.
func (d *Dnsmasq) Count(re string) int {
	r := regexp.MustCompile(re)
	n := 0
	for _, line := range strings.Split(d.Log(), "\n") {
		if r.MatchString(line) {
			n++
		}
	}
	return n
}

// Requests is the number of DHCPREQUESTs (IPv4) dnsmasq logged from mac: the one that
// follows an offer, then each renewal and rebinding.
func (d *Dnsmasq) Requests(mac string) int {
	return d.Count(`DHCPREQUEST\([^)]*\) \S+ ` + regexp.QuoteMeta(strings.ToLower(mac)))
}

// Wait waits until a log line matches re and returns its submatches; it fails when ctx ends
// or dnsmasq exits first.
func (d *Dnsmasq) Wait(ctx context.Context, re string) ([]string, error) {
	r := regexp.MustCompile(re)
	for {
		for _, line := range strings.Split(d.Log(), "\n") {
			if m := r.FindStringSubmatch(line); m != nil {
				return m, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dnsmasq log: waiting for %q: %w", re, ctx.Err())
		case <-d.exited:
			return nil, fmt.Errorf("dnsmasq exited: %s", d.stderr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
