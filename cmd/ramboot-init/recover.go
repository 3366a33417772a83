package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/boot"
	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/console"
	"github.com/ramboot/ramboot/internal/sysinit"
	"github.com/ramboot/ramboot/kexec"
)

// next is what follows a failed boot attempt.
type next int

const (
	nextRetry next = iota
	nextMenu
	nextShell
	nextReboot
	nextPoweroff
)

// maxAttempts bounds the default policy's retries before it gives up.
const maxAttempts = 4

// decide is the recovery policy: what follows the failed attempt (numbered from 1) with err,
// under ramboot.onerror=, and how long to wait first. Past the point of no return (the
// initramfs is gone) only a reboot or a power-off is possible. A refusal is not retried: it would
// be refused again; by default the menu follows, where another entry can be chosen.
func decide(err error, onerror cmdline.OnError, attempt int, hasShell bool) (next, time.Duration) {
	if boot.IsNoReturn(err) {
		if onerror == cmdline.OnErrorPoweroff {
			return nextPoweroff, 0
		}
		return nextReboot, 0
	}
	switch onerror {
	case cmdline.OnErrorRetry:
		if refused(err) {
			return nextMenu, 0
		}
	case cmdline.OnErrorMenu:
		return nextMenu, 0
	case cmdline.OnErrorShell:
		if hasShell {
			return nextShell, 0
		}
		return nextReboot, 0
	case cmdline.OnErrorReboot:
		return nextReboot, 0
	case cmdline.OnErrorPoweroff:
		return nextPoweroff, 0
	}
	if attempt < maxAttempts {
		return nextRetry, time.Duration(attempt*attempt) * 5 * time.Second
	}
	return nextReboot, 0 // final() offers the shell first when there is one
}

// refused reports whether err is the same on every attempt, so that retrying only delays what
// follows: the locked-down kernel refusing a kernel's signature, or kexec_load being refused
// under lockdown. Network errors, stalls and deadlines are not final.
func refused(err error) bool {
	return errors.Is(err, kexec.ErrUntrusted) || errors.Is(err, kexec.ErrLockedDown)
}

// final never returns: past the point of no return, or when retries are used up, it powers off
// or reboots as asked, offering a shell first when the initramfs still has one.
func final(onerror cmdline.OnError, logf func(string, ...any), err error) {
	for {
		switch {
		case onerror == cmdline.OnErrorPoweroff:
			logf("%v: powering off", err)
			halt(unix.LINUX_REBOOT_CMD_POWER_OFF)
		case onerror == cmdline.OnErrorReboot || boot.IsNoReturn(err) || !console.HasShell():
			logf("%v: rebooting in 10s", err)
			time.Sleep(10 * time.Second)
			halt(unix.LINUX_REBOOT_CMD_RESTART)
		default:
			logf("%v: starting a shell; exit it to reboot", err)
			if serr := console.Shell(""); serr != nil {
				logf("%v", serr)
			}
			halt(unix.LINUX_REBOOT_CMD_RESTART)
		}
	}
}

// halt reboots or powers off; it returns only when reboot(2) failed, after a pause.
func halt(cmd int) {
	sysinit.Drain()
	unix.Sync()
	if err := unix.Reboot(cmd); err != nil {
		fmt.Fprintf(os.Stderr, "reboot(2): %v\n", err)
		time.Sleep(time.Minute)
	}
}
