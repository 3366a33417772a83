package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/bootmenu/tui"
	"github.com/ramboot/ramboot/internal/boot"
	"github.com/ramboot/ramboot/internal/console"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/loader"
)

// menu finds the menu, shows it (or boots its default at once when its timeout is 0), and
// carries out the choice. It returns only when a boot failed or the menu closed.
func (s *state) menu(ctx context.Context) error {
	lookedAgain := false // the operator asked for the menu again: no countdown, no unattended boot
find:
	if err := s.freshLease(ctx); err != nil {
		s.logf("%v", err) // local menus are still found
	}
	m := s.booter().FindMenu(ctx, s.cfg, console.HasShell())
	refused := s.booter().Refused // a menu the chain of trust refused: its error screen first
	s.reportMenu(m)
	if err := m.Override(s.cfg.Default, s.cfg.Timeout); err != nil {
		s.logf("%v", err)
	}
	if m.Timeout == 0 && !s.menuAfterFailure && !lookedAgain && refused == nil {
		// Unattended: no UI blocks the boot.
		e, ok := m.DefaultEntry()
		if !ok {
			return errors.New("menu has no entry to boot")
		}
		return s.act(ctx, *e, e.Cmdline())
	}
	if s.menuAfterFailure || lookedAgain || refused != nil {
		m.Timeout = -1 // the operator decides: after a failure, a refusal or a look again
	}
	for {
		s.ready = nil
		res, tty := console.Menu{
			Menu: m, Backend: &backend{s: s, ctx: ctx},
			Options: tui.Options{Idle: s.cfg.Idle, Logf: s.logf, Warnings: s.warnings, Lock: s.booter().Lock, MenuError: refused, NoShell: !console.HasShell(),
				Chosen: func(e bootmenu.Entry, by string) { s.reportChosen(e.Name, by) }},
			Logf:  s.logf,
			Quiet: s.quiet,
		}.Show()
		refused = nil
		switch res.Action {
		case tui.ActionBoot:
			if s.ready == nil {
				return errors.New("menu: nothing prepared")
			}
			return s.handoff(s.ready)
		case tui.ActionShell:
			if err := console.Shell(tty); err != nil {
				s.logf("%v", err)
			}
			m.Timeout = -1 // back from the shell: no countdown
			continue
		case tui.ActionFindMenu:
			// The refused menu may have been re-signed, or its signature published, since.
			s.logf("menu: looking for the menu again")
			lookedAgain = true
			goto find
		case tui.ActionReboot:
			halt(unix.LINUX_REBOOT_CMD_RESTART)
		case tui.ActionPoweroff:
			halt(unix.LINUX_REBOOT_CMD_POWER_OFF)
		}
		return errors.New("menu closed without a choice")
	}
}

// quiet keeps log lines and kernel messages (a link coming up, say) off the consoles while the
// menu owns them, so they do not scroll its screen away; dmesg and the log view still have them.
func (s *state) quiet(on bool) {
	s.logger.Quiet = on
	level := "7"
	if on {
		level = "1"
		if old, err := os.ReadFile("/proc/sys/kernel/printk"); err == nil {
			if f := strings.Fields(string(old)); len(f) > 0 {
				s.printkLevel = f[0]
			}
		}
	} else if s.printkLevel != "" {
		level = s.printkLevel
	}
	os.WriteFile("/proc/sys/kernel/printk", []byte(level), 0)
}

// act boots an entry without the UI (a menu with timeout 0).
func (s *state) act(ctx context.Context, e bootmenu.Entry, cmdline string) error {
	switch e.Kind {
	case bootmenu.KindShell:
		if s.booter().Lock.Set() {
			return fmt.Errorf("%s: the shell is locked by a password: it cannot be the unattended default", e.Name)
		}
		if err := console.Shell(""); err != nil {
			return err
		}
		return errors.New("back from the shell")
	case bootmenu.KindReboot:
		halt(unix.LINUX_REBOOT_CMD_RESTART)
	case bootmenu.KindPoweroff:
		halt(unix.LINUX_REBOOT_CMD_POWER_OFF)
	case bootmenu.KindMenu:
		return fmt.Errorf("%s: a sub-menu cannot be the unattended default", e.Name)
	}
	s.logf("booting %s", e.Name)
	if err := s.entryNetwork(ctx, e); err != nil {
		return err
	}
	s.reportChosen(e.Name, "default")
	if err := s.freshLease(ctx); err != nil {
		return err
	}
	exec, err := s.booter().Prepare(ctx, boot.FromEntry(e, cmdline), boot.ConsoleProgress(s.logf))
	if err != nil {
		return err
	}
	return s.handoff(exec)
}

// backend is the menu's view of /init.
type backend struct {
	s   *state
	ctx context.Context
}

func (k *backend) Prepare(ctx context.Context, e bootmenu.Entry, cmdline string, progress func(loader.Progress)) error {
	k.s.ready = nil
	k.s.logf("booting %s", e.Name)
	if err := k.s.entryNetwork(ctx, e); err != nil {
		return err // the menu shows it and logs it
	}
	if err := k.s.freshLease(ctx); err != nil {
		return err // the menu shows it and logs it
	}
	exec, err := k.s.booter().Prepare(ctx, boot.FromEntry(e, cmdline), progress)
	if err != nil {
		return err // the menu shows it and logs it
	}
	k.s.ready = exec
	return nil
}

func (k *backend) LoadMenu(ctx context.Context, url string) (*bootmenu.Menu, error) {
	m, err := k.s.booter().LoadMenu(ctx, url)
	if err != nil {
		k.s.logf("menu %s: %v", url, err)
	}
	return m, err
}

func (k *backend) Network() (string, []string) {
	l := k.s.currentLease()
	if l == nil {
		return "no network", nil
	}
	status := fmt.Sprintf("%s %s %s", l.Iface, l.MAC, l.Prefix())
	if l.Server.IsValid() {
		status += " server " + l.Server.String()
	}
	return status, l.Describe()
}

func (k *backend) Log() []string { return k.s.logger.Lines() }

// entryNetwork brings up an entry's network: block before the entry boots, unless the
// network is up already as the block says (the same parameters as the command line's). The
// new lease replaces the old one: kexec and the image's network configuration follow it.
func (s *state) entryNetwork(ctx context.Context, e bootmenu.Entry) error {
	if e.Network == nil {
		return nil
	}
	if s.lease != nil && slices.Equal(e.Network.Params(), s.cfg.Network.Params()) {
		return nil
	}
	for _, p := range e.Network.Pending(e.Network.BootIP()) {
		s.logf("%s: network: not applied: %s", e.Name, p)
	}
	s.logf("%s: bringing up its network: %s", e.Name, strings.Join(e.Network.Params(), " "))
	start := time.Now()
	nc := s.netConfig(e.Network.BootIP(), e.Network)
	s.endKeeper() // no renewal of the old lease while Up replaces it
	lease, err := netup.Up(ctx, nc)
	if err != nil {
		s.keepLease(s.netCfg) // the old lease, as long as it lasts
		return fmt.Errorf("entry %s: %w", e.Name, err)
	}
	s.lease = lease
	s.keepLease(nc)
	s.booter() // tells the Booter
	s.logf("network: %s", lease)
	s.reportNetwork(lease, time.Since(start))
	return nil
}
