// Command ramboot-init is ramboot's /init: PID 1 of the initramfs. It mounts the pseudo file
// systems, reads the kernel command line, loads the drivers the hardware needs, brings up the
// boot NIC, then either streams ramroot= into a tmpfs and switches into it, or kexecs the
// kernel of ramboot.kernel=. It never exits: a failed boot is reported, then retried, or a
// shell, reboot or power-off follows, as ramboot.onerror= says.
//
// It only sequences; the work is done by the loader, kexec and internal packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/layout"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/internal/sysinit"
)

// booter holds what survives between boot attempts: the parsed command line, the lease.
type booter struct {
	cfg   *cmdline.Config
	logf  func(string, ...any)
	lease *netup.Lease
	mods  bool // coldplug done
	// menuAfterFailure: ramboot.onerror=menu and the unattended boot failed; show the menu.
	menuAfterFailure bool
	logger           *sysinit.Logger
	logs             *ring
	ready            func() error // the irreversible step of the entry the menu prepared
}

func main() {
	setupErr := sysinit.Setup()
	logger := sysinit.NewLogger(os.Stdout)
	logf := logger.Printf
	log.SetFlags(0)
	log.SetOutput(logWriter(logf))
	if setupErr != nil {
		logf("early setup: %v", setupErr)
	}
	raw, _ := os.ReadFile("/proc/cmdline")
	logf("starting; kernel command line: %s", strings.TrimSpace(string(raw)))
	cfg, err := cmdline.Parse(string(raw))
	if err != nil {
		// Nothing sensible to boot; still offer the way out.
		logf("%v", err)
		cfg = &cmdline.Config{Init: "/sbin/init", Timeout: -1}
		recoverLoop(cfg, logf, err)
	}
	logs := newRing(200)
	logger.Tee = logs.add
	b := &booter{cfg: cfg, logf: logf, logger: logger, logs: logs}
	for attempt := 1; ; attempt++ {
		err := b.boot(context.Background())
		logf("boot failed: %v", err)
		if !b.recover(err, attempt) {
			break
		}
	}
	recoverLoop(cfg, logf, errors.New("giving up"))
}

// boot runs one attempt; it returns only on failure.
func (b *booter) boot(ctx context.Context) error {
	c := b.cfg
	if err := runHooks(ctx, layout.HooksDir, "pre-network", b.env(), b.logf); err != nil {
		return err
	}
	if !b.mods {
		coldplug(b.logf)
		b.mods = true
	}
	p, unattended := cmdlinePlan(c)
	if b.lease == nil && (needNetwork(c) || !unattended) {
		lease, err := netup.Up(ctx, netup.Config{BootIF: c.BootIF, IP: c.IP, ResolvConf: "/etc/resolv.conf", Logf: b.logf})
		switch {
		case err == nil:
			b.lease = lease
			b.logf("network: %s %s %s via %s", lease.Iface, lease.MAC, lease.Addr, lease.Gateway)
		case unattended:
			return fmt.Errorf("network: %w", err)
		default:
			// The menu still offers local entries, a shell, reboot.
			b.logf("network: %v", err)
		}
	}
	if unattended && !b.menuAfterFailure {
		exec, err := b.prepare(ctx, p, consoleProgress(b.logf))
		if err != nil {
			return err
		}
		return exec()
	}
	return b.menu(ctx)
}

// cmdlinePlan is the unattended boot the kernel command line asks for, if any.
func cmdlinePlan(c *cmdline.Config) (plan, bool) {
	switch {
	case c.Kernel != "":
		k := &kexecPlan{Kernel: image{URLs: []string{c.Kernel}}, Cmdline: c.Append}
		for _, u := range c.Initrds {
			k.Initrds = append(k.Initrds, image{URLs: []string{u}})
		}
		return plan{Name: "ramboot.kernel", Kexec: k}, true
	case len(c.Ramroot) > 0:
		return plan{Name: "ramroot", Ramroot: &ramrootPlan{Image: image{URLs: c.Ramroot, SHA256: c.SHA256}, Size: c.Size, Init: c.Init}}, true
	}
	return plan{}, false
}

// needNetwork: only local images (embedded in the initramfs) boot without the network.
func needNetwork(c *cmdline.Config) bool {
	for _, u := range append(append(append([]string{}, c.Ramroot...), c.Kernel), c.Initrds...) {
		if strings.Contains(u, "://") && !strings.HasPrefix(u, "file://") {
			return true
		}
	}
	return c.BootIF != nil || c.IP != nil
}

func (b *booter) env() []string {
	env := []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "RAMBOOT_ROOT=" + layout.NewRoot}
	if l := b.lease; l != nil {
		env = append(env, "RAMBOOT_IFACE="+l.Iface, "RAMBOOT_MAC="+l.MAC.String(), "RAMBOOT_ADDR="+l.Addr.String())
	}
	return env
}

// recover decides what follows a failed attempt; false means stop retrying.
func (b *booter) recover(err error, attempt int) bool {
	switch b.cfg.OnError {
	case cmdline.OnErrorMenu:
		b.menuAfterFailure = true
		return true
	case cmdline.OnErrorShell:
		shell(b.logf)
		return true
	case cmdline.OnErrorReboot, cmdline.OnErrorPoweroff:
		return false
	}
	// Default: retry with backoff, then fall through.
	if attempt <= 3 {
		d := time.Duration(attempt*attempt) * 5 * time.Second
		b.logf("retrying in %v (attempt %d of 4)", d, attempt+1)
		time.Sleep(d)
		return true
	}
	return false
}

// recoverLoop never returns: a shell when there is one (and again when it exits), else reboot
// or power-off as asked.
func recoverLoop(cfg *cmdline.Config, logf func(string, ...any), err error) {
	for {
		switch {
		case cfg.OnError == cmdline.OnErrorPoweroff:
			logf("%v: powering off", err)
			halt(unix.LINUX_REBOOT_CMD_POWER_OFF)
		case cfg.OnError == cmdline.OnErrorReboot || !hasShell():
			logf("%v: rebooting in 10s", err)
			time.Sleep(10 * time.Second)
			halt(unix.LINUX_REBOOT_CMD_RESTART)
		default:
			logf("%v: starting a shell; exit it to reboot", err)
			shell(logf)
			halt(unix.LINUX_REBOOT_CMD_RESTART)
		}
	}
}

func halt(cmd int) {
	sysinit.Drain()
	unix.Sync()
	if err := unix.Reboot(cmd); err != nil {
		fmt.Fprintf(os.Stderr, "reboot(2): %v\n", err)
		time.Sleep(time.Minute)
	}
}

type logWriter func(string, ...any)

func (l logWriter) Write(p []byte) (int, error) {
	l("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
