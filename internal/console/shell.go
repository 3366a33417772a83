package console

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/ramboot/ramboot/internal/reaper"
)

// ShellPath is the initramfs's shell (busybox, when built with --busybox).
const ShellPath = "/bin/sh"

// HasShell reports whether the initramfs has a shell.
func HasShell() bool {
	st, err := os.Stat(ShellPath)
	return err == nil && st.Mode()&0o111 != 0
}

// Shell runs the shell on the tty at path (the console the operator is on; "" for the first
// active console) until it exits. The shell leads a session of its own with that tty as its
// controlling terminal: ^C and ^\ reach the shell and its jobs, never /init, and job control
// works (it would not on /dev/console, which cannot be a controlling terminal).
func Shell(path string) error {
	if !HasShell() {
		return errors.New("no shell in this initramfs (build it with --busybox)")
	}
	if path == "" {
		path = "/dev/" + Active()[0]
	}
	tty, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		// /dev/console still gives a shell, without job control.
		if tty, err = os.OpenFile("/dev/console", os.O_RDWR|syscall.O_NOCTTY, 0); err != nil {
			return fmt.Errorf("shell: opening the console: %w", err)
		}
	}
	defer tty.Close()
	// Line wrapping on: a PC's firmware turns it off on the serial line at power-on (SeaBIOS
	// sends ESC[?7l) and the menu may leave it off; a shell without it cuts long lines.
	tty.WriteString("\x1b[?7h")
	cmd := exec.Command(ShellPath)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.Env = []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", "TERM=linux", "PS1=ramboot# "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	// Through reaper: /init's orphan reaping must leave the shell's exit to this Wait.
	if err := reaper.Run(cmd); err != nil {
		return fmt.Errorf("shell: %w", err)
	}
	return nil
}
