// Command ramboot-init is ramboot's /init: PID 1 of the initramfs. It mounts the pseudo file
// systems, reads the kernel command line, loads the drivers the hardware needs, brings up the
// boot NIC, then either streams ramroot= into a tmpfs and switches into it, or kexecs the
// kernel of ramboot.kernel=, or shows the menu. It never exits: a failed boot is reported, then
// retried, or a menu, shell, reboot or power-off follows, as ramboot.onerror= says.
//
// It only sequences; the work is done by internal/boot, the loader, kexec and the other
// internal packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/boot"
	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/console"
	"github.com/ramboot/ramboot/internal/efi"
	"github.com/ramboot/ramboot/internal/hooks"
	"github.com/ramboot/ramboot/internal/kmod"
	"github.com/ramboot/ramboot/internal/layout"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/internal/reaper"
	"github.com/ramboot/ramboot/internal/report"
	"github.com/ramboot/ramboot/internal/sysinit"
	"github.com/ramboot/ramboot/internal/trust"
)

// notPID1 is what /init says when started as anything but PID 1 (by hand on a running system,
// say): it would mount, reconfigure the network and finally reboot the machine it runs on.
const notPID1 = "ramboot-init: this is the /init of a ramboot initramfs and runs only as PID 1 " +
	"(it mounts file systems, configures the network and reboots the machine); " +
	"on a running system use `ramboot fetch`, `ramboot serve` or `make demo`"

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, notPID1)
		os.Exit(2)
	}
	// First: a ^C or ^\ typed on the console before anything else is set up must not end
	// PID 1 (the Go runtime exits on them, and the kernel panics).
	sigs := sysinit.CatchSignals()
	// Orphans (what a hook or the shell left running) are PID 1's to reap. Every child /init
	// starts goes through reaper.Start, which keeps it out of this loop's hands.
	go reaper.Reap(context.Background())
	setupErr := sysinit.Setup()
	logger := sysinit.NewLogger(os.Stdout)
	logf := logger.Printf
	log.SetFlags(0)
	log.SetOutput(logWriter(logf))
	go func() {
		for s := range sigs {
			logf("ignoring signal %v: /init does not stop", s)
		}
	}()
	if setupErr != nil {
		logf("early setup: %v", setupErr)
	}
	raw, _ := os.ReadFile("/proc/cmdline")
	err := run(context.Background(), strings.TrimSpace(string(raw)), logger)
	// run returns only when nothing is left to try.
	final(onError(raw), logf, err)
}

// onError is ramboot.onerror= of the raw command line, for the last resort after run.
func onError(raw []byte) cmdline.OnError {
	c, _ := cmdline.Parse(string(raw))
	return c.OnError
}

// state is what survives between boot attempts.
type state struct {
	cfg      *cmdline.Config
	warnings []string // the command line's bad parameters, for the menu's status line
	logger   *sysinit.Logger
	logf     func(string, ...any)
	lease    *netup.Lease
	keeper   *netup.Keeper // keeps lease alive while /init waits (lease.go)
	netCfg   netup.Config  // what Up ran with, for the keeper
	mods     bool          // coldplug done
	// menuAfterFailure: ramboot.onerror=menu and the unattended boot failed; show the menu.
	menuAfterFailure bool
	ready            boot.Exec // the irreversible step of the entry the menu prepared
	printkLevel      string    // the console log level before the menu quieted it
	b                *boot.Booter
	rep              *report.Reporter // the boot report (events, boot.json)
	// firmwareURI is the URI node of the firmware's boot entry ("" when it has none).
	firmwareURI string
	// originDone: relative references of the command line were resolved (once, with the first
	// lease).
	originDone bool
}

// firmwareBootNIC takes BOOTIF from the UEFI firmware's boot entry when the command line has
// none: under UEFI there is no pxelinux to append it, but BootCurrent's load option names the
// NIC the firmware booted from in its device path. It returns the entry's URI node ("" when
// empty or absent). Without UEFI (no efivarfs) it does nothing.
func firmwareBootNIC(c *cmdline.Config, logf func(string, ...any)) string {
	num, o, err := efi.Current(efi.Dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "" // BIOS, or no efivarfs
	case err != nil:
		logf("firmware boot entry: %v", err)
		return ""
	case !o.Network():
		return ""
	}
	mac := o.MAC()
	switch {
	case c.BootIF != nil:
		logf("firmware booted Boot%04X %q (%s); BOOTIF= of the command line wins", num, o.Description, o)
	case mac != nil:
		c.BootIF = mac
		logf("BOOTIF %s from the firmware's boot entry Boot%04X %q (%s)", mac, num, o.Description, o)
	}
	return o.URI()
}

// resolveOrigin makes the command line's relative ramroot= and ramboot.menu= (and kexec files)
// absolute against the URL the firmware fetched this initramfs from, once a lease is there.
func (s *state) resolveOrigin() {
	if s.originDone || s.lease == nil {
		return
	}
	s.originDone = true
	origin, from := boot.Origin(s.firmwareURI, s.lease)
	for _, l := range boot.ResolveRelative(s.cfg, origin) {
		s.logf("%s (relative to %s, from %s)", l, origin, from)
	}
}

// run parses the command line and runs boot attempts until one succeeds (it then does not
// return) or the recovery policy gives up.
func run(ctx context.Context, rawCmdline string, logger *sysinit.Logger) error {
	logf := logger.Printf
	logf("starting; kernel command line: %s", rawCmdline)
	cfg, problems := cmdline.Parse(rawCmdline)
	mountEfivars(logf)
	firmwareURI := firmwareBootNIC(cfg, logf)
	s := &state{cfg: cfg, logger: logger, logf: logf, firmwareURI: firmwareURI, rep: newReporter(cfg, rawCmdline, logf)}
	for _, p := range problems {
		// Reported and skipped: one bad parameter never stops the boot of the valid ones.
		msg := "skipped a bad kernel parameter: " + p.Error()
		if errors.Is(p, cmdline.ErrUnterminatedQuote) {
			msg = p.Error()
		}
		logf("%s", msg)
		s.warnings = append(s.warnings, msg)
	}
	// Said, not silently dropped: a boot that needs a second interface would otherwise fail
	// somewhere later without a word about why.
	for _, p := range cfg.Network.Pending(cfg.IP) {
		msg := "not applied (one interface is brought up): " + p
		logf("%s", msg)
		s.warnings = append(s.warnings, msg)
	}
	for attempt := 1; ; attempt++ {
		err := s.attempt(ctx)
		logf("boot failed: %v", err)
		s.reportFailure(err, attempt)
		n, wait := decide(err, cfg.OnError, attempt, console.HasShell())
		switch n {
		case nextRetry:
			logf("retrying in %v (attempt %d of %d)", wait, attempt+1, maxAttempts)
			time.Sleep(wait)
		case nextMenu:
			s.menuAfterFailure = true
			// Why, on the menu's status line: the console line above is cleared by the menu.
			s.warnings = append([]string{err.Error()}, s.warnings...)
		case nextShell:
			if s.booter().Lock.Set() {
				logf("the shell is locked by a password: showing the menu")
				s.menuAfterFailure = true
				continue
			}
			logf("starting a shell; exit it to try again")
			if err := console.Shell(""); err != nil {
				logf("%v", err)
				time.Sleep(5 * time.Second) // no busy loop when there is no shell after all
			}
		case nextReboot, nextPoweroff:
			s.rep.Flush(boot.FinalWait) // the failure's event, before the machine goes
			return err
		}
	}
}

// attempt is one boot attempt, containing panics: it returns only on failure.
func (s *state) attempt(ctx context.Context) (err error) {
	defer func() {
		if v := recover(); v != nil {
			s.logf("internal error: %v\n%s", v, debug.Stack())
			err = fmt.Errorf("internal error: %v", v)
		}
	}()
	return s.boot(ctx)
}

// booter is the one Booter of this /init (its entropy notice is said once for all attempts),
// told of the current lease.
func (s *state) booter() *boot.Booter {
	if s.b == nil {
		s.b = boot.New(nil, hooks.Runner{Dir: layout.HooksDir, Console: "/dev/" + console.Active()[0]}, s.logf)
		s.b.RetryFor = s.cfg.Retry
		c := trust.Load(layout.TrustDir, layout.PasswordHash, s.logf)
		s.b.Policy, s.b.Lock, s.b.TPM = c.Policy, c.Lock, c.TPM
		s.b.TPM.Required = s.cfg.TPMRequired
		s.b.Registry.Mirrors, s.b.Registry.Insecure = s.cfg.RegistryMirrors, s.cfg.InsecureRegistries
		s.b.Report = s.rep
	}
	s.b.Lease = s.lease
	s.b.Network = nil
	if s.lease != nil {
		// The image and a kexec'd kernel get the whole network: rd.route=, nameserver=
		// and the timeouts too, besides the bonds and VLANs the lease reports.
		s.b.Network = netup.NewImageNet(s.lease, s.netCfg.Net)
	}
	return s.b
}

// boot brings up what the boot needs and boots the command line's plan or the menu's choice.
func (s *state) boot(ctx context.Context) error {
	c := s.cfg
	if err := s.booter().RunHooks(ctx, hooks.PreNetwork); err != nil {
		return err
	}
	if !s.mods {
		coldplug(s.logf)
		s.mods = true
	}
	p, unattended := boot.FromCmdline(c)
	unattended = unattended && !s.menuAfterFailure
	if unattended && c.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.Deadline, fmt.Errorf("ramboot.deadline=%v passed", c.Deadline))
		defer cancel()
	}
	if s.lease == nil && (boot.NeedNetwork(c) || !unattended) {
		start := time.Now()
		s.netCfg = s.netConfig(c.IP, &c.Network)
		lease, err := netup.Up(ctx, s.netCfg)
		switch {
		case err == nil:
			s.lease = lease
			s.keepLease(s.netCfg)
			s.logf("network: %s %s %s", lease.Iface, lease.MAC, lease.Addresses())
			s.reportNetwork(lease, time.Since(start))
			s.resolveOrigin()
			if unattended {
				p, _ = boot.FromCmdline(c) // with its references resolved
			}
		case unattended:
			return &networkError{err}
		default:
			// The menu still offers local entries, a shell, reboot.
			s.logf("network: %v", err)
		}
	}
	if unattended {
		s.reportChosen(p.Name, "cmdline")
		if err := s.freshLease(ctx); err != nil {
			return withCause(ctx, err)
		}
		exec, err := s.booter().Prepare(ctx, p, boot.ConsoleProgress(s.logf))
		if err != nil {
			return withCause(ctx, err)
		}
		return s.handoff(exec)
	}
	return s.menu(ctx)
}

// netConfig is netup's configuration for the network ip and n describe (the command line's,
// or a menu entry's network: block).
func (s *state) netConfig(ip *cmdline.IPConfig, n *cmdline.Network) netup.Config {
	c := netup.Config{BootIF: s.cfg.BootIF, IP: ip, Net: n, ResolvConf: "/etc/resolv.conf", Logf: s.logf, LoadModule: s.loadModule}
	if t := n.Timeouts.Carrier; t > 0 {
		c.LinkTimeout = t
	}
	if t := n.Timeouts.DHCP; t > 0 {
		c.DHCPTimeout = t
	}
	return c
}

// loadModule loads a driver /init needs for a link it creates (bonding, 8021q) when the
// initramfs has it.
func (s *state) loadModule(name string) error {
	dir, ix := modules(func(string, ...any) {})
	if ix == nil {
		return nil
	}
	loadByName(dir, ix, s.logf, name)
	return nil
}

// withCause adds why the context ended (the deadline) to an error it caused.
func withCause(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(err, c) && c != ctx.Err() {
		return fmt.Errorf("%w (%v)", err, c)
	}
	return err
}

// modules returns the running kernel's module directory in the initramfs and its index; nil
// (and a line in the log) when there is none.
func modules(logf func(string, ...any)) (string, *kmod.Index) {
	var u unix.Utsname
	unix.Uname(&u)
	rel := unix.ByteSliceToString(u.Release[:])
	dir := layout.ModulesRoot + "/" + rel
	if _, err := os.Stat(dir); err != nil {
		logf("no modules for kernel %s in the initramfs: relying on built-in drivers", rel)
		return "", nil
	}
	ix, err := kmod.LoadIndex(os.DirFS(dir))
	if err != nil {
		logf("modules: %v", err)
		return "", nil
	}
	return dir, ix
}

// mountEfivars mounts the UEFI firmware's variables, loading efivarfs first when the kernel
// has it as a module (Debian's do). Nothing happens without UEFI.
func mountEfivars(logf func(string, ...any)) {
	if _, err := os.Stat(sysinit.Efivarfs.Target); err != nil {
		return // not booted by UEFI
	}
	if dir, ix := modules(func(string, ...any) {}); ix != nil {
		loadByName(dir, ix, logf, sysinit.EfivarfsModule)
	}
	if err := sysinit.Efivarfs.Do(); err != nil {
		logf("%v", err)
	}
}

// coldplug loads the drivers for the hardware present (an optional step: failures are logged).
func coldplug(logf func(string, ...any)) {
	dir, ix := modules(logf)
	if ix == nil {
		return
	}
	start := time.Now()
	loaded, errs := kmod.Coldplug(ix, "/sys", kmod.NewLinuxLoader(dir), logf)
	for _, err := range errs {
		logf("modules: %v", err)
	}
	logf("loaded %d modules in %v: %s", len(loaded), time.Since(start).Round(time.Millisecond), strings.Join(loaded, " "))
	// A USB keyboard (a BMC's remote keyboard) enumerates after the pass that loaded its host
	// controller, when coldplug has looked already: its drivers are loaded up front so that
	// it binds whenever it appears, and the menu on a VGA or framebuffer console can be used.
	loadByName(dir, ix, logf, keyboardModules...)
}

// keyboardModules drive USB keyboards (packed by `ramboot initramfs` when the kernel has them as
// modules; built in, or absent as in Debian's cloud kernels, there is nothing to load).
var keyboardModules = []string{"usbhid", "hid_generic"}

// loadByName loads the named modules and their dependencies when the initramfs has them; a
// name it does not have is skipped without a word (a driver built into the kernel).
func loadByName(dir string, ix *kmod.Index, logf func(string, ...any), names ...string) {
	l := kmod.NewLinuxLoader(dir)
	for _, name := range names {
		paths, err := ix.Deps(name)
		if err != nil {
			continue
		}
		for _, p := range paths {
			if err := l.Load(p, ""); err != nil {
				logf("modules: %s: %v", p, err)
			}
		}
	}
}

type logWriter func(string, ...any)

func (l logWriter) Write(p []byte) (int, error) {
	l("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
