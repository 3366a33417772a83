// Package sysinit prepares the early userspace that ramboot's /init runs in: the pseudo file
// systems, the console as stdin/stdout/stderr, and a logger that writes to the console and
// /dev/kmsg with timestamps. The mounts are data (Mount values with String()), so they log and
// test well; Setup is the thin layer that performs them.
package sysinit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) call; Dir is created first.
type Mount struct {
	Source, Target, FSType string
	Flags                  uintptr
	Data                   string
	Mode                   os.FileMode // of Target when it is created
	// IfPresent mounts only when Target exists already: a mount point the kernel makes in
	// sysfs when it has the feature (efivarfs under UEFI, securityfs), where nothing can be
	// created. A file system type the kernel does not know (yet: its module is not loaded)
	// is no error either.
	IfPresent bool
}

func (m Mount) String() string {
	s := fmt.Sprintf("mount -t %s %s %s", m.FSType, m.Source, m.Target)
	if m.Data != "" {
		s += " -o " + m.Data
	}
	return s
}

// Mounts are what /init mounts before anything else, in order. At switch_root, /dev (with
// /dev/pts), /proc, /sys and /run move into the new root; the rest (/tmp) is detached, so that
// it does not pin its contents in RAM below the new root (internal/switchroot).
var Mounts = []Mount{
	{Source: "proc", Target: "/proc", FSType: "proc", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Mode: 0o555},
	{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Mode: 0o555},
	{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755", Mode: 0o755},
	{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "gid=5,mode=620,ptmxmode=000", Mode: 0o755},
	{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755", Mode: 0o755},
	{Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777", Mode: 0o1777},
	// The firmware's variables (BootCurrent: the boot NIC under UEFI) and the kernel's lockdown
	// state (kexec under Secure Boot). Both move with /sys.
	Efivarfs,
	{Source: "securityfs", Target: "/sys/kernel/security", FSType: "securityfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, IfPresent: true},
}

// Efivarfs is the firmware's variables. Distribution kernels build efivarfs as a module, which
// is not loaded yet when Mounts are: /init loads it (EfivarfsModule) and mounts again.
var Efivarfs = Mount{Source: "efivarfs", Target: "/sys/firmware/efi/efivars", FSType: "efivarfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RDONLY, IfPresent: true}

// EfivarfsModule is the module that provides efivarfs, by name.
const EfivarfsModule = "efivarfs"

// Do performs the mount; an already mounted target (EBUSY) is fine.
func (m Mount) Do() error {
	if m.IfPresent {
		if _, err := os.Stat(m.Target); err != nil {
			return nil
		}
	}
	if err := os.MkdirAll(m.Target, m.Mode); err != nil {
		return err
	}
	err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data)
	if m.IfPresent && errors.Is(err, unix.ENODEV) {
		return nil
	}
	if err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%s: %w", m, err)
	}
	return nil
}

// Setup mounts Mounts, puts the console on fds 0, 1, 2 and lets every line /init logs reach
// the kernel log (printk_devkmsg). Failures are returned together; the caller logs them and goes
// on (a missing /dev/pts is no reason not to boot).
func Setup() error {
	var errs []error
	for _, m := range Mounts {
		if err := m.Do(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := Console("/dev/console"); err != nil {
		errs = append(errs, err)
	}
	// The kernel rate-limits writes to /dev/kmsg (ten lines at a time): without this, dmesg in
	// the booted system loses the network and menu lines of the boot story.
	if err := os.WriteFile("/proc/sys/kernel/printk_devkmsg", []byte("on\n"), 0); err != nil {
		errs = append(errs, fmt.Errorf("printk_devkmsg=on: %w", err))
	}
	return errors.Join(errs...)
}

// Signals are the signals a terminal or a stray kill can send /init. PID 1 must survive all of
// them: the Go runtime exits on SIGINT, SIGQUIT, SIGHUP, SIGTERM and SIGPIPE unless they are
// handled, and for PID 1 that is a kernel panic.
var Signals = []os.Signal{unix.SIGINT, unix.SIGQUIT, unix.SIGTSTP, unix.SIGHUP, unix.SIGTERM, unix.SIGPIPE,
	unix.SIGTTIN, unix.SIGTTOU}

// CatchSignals handles Signals from now on; what arrives is sent on the returned channel (and
// dropped when nobody reads). They are caught rather than ignored on purpose: an ignored signal
// stays ignored in the programs /init starts (a shell where ^C does nothing), a caught one is
// reset to its default there.
func CatchSignals() chan os.Signal {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, Signals...)
	return ch
}

// Console makes the tty at path stdin, stdout and stderr, in a session of /init's own without a
// controlling terminal: keys typed on the console never signal /init. The shell and hooks get
// the console as the controlling terminal of sessions of their own.
func Console(path string) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("opening console %s: %w", path, err)
	}
	for i := 0; i < 3; i++ {
		unix.Dup3(fd, i, 0)
	}
	if fd > 2 {
		unix.Close(fd)
	}
	unix.Setsid()
	return nil
}

// Logger writes timestamped lines to the console and to the kernel log.
type Logger struct {
	mu      sync.Mutex
	console io.Writer
	kmsg    io.Writer
	start   time.Time
	// Quiet suppresses console output (the menu owns the screen); kmsg still gets everything.
	Quiet bool
	// History is how many recent lines Lines keeps (default 500).
	History int
	lines   []string
}

// NewLogger logs to console and, when it can be opened, /dev/kmsg.
func NewLogger(console io.Writer) *Logger {
	l := &Logger{console: console, start: time.Now()}
	if f, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
		l.kmsg = f
	}
	return l
}

// Printf logs one line.
func (l *Logger) Printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	line := fmt.Sprintf("[%5d.%03d] ramboot: %s", ts.Sec, ts.Nsec/1e6, msg)
	if !l.Quiet && l.console != nil {
		fmt.Fprintf(l.console, "%s\n", line)
	}
	if l.kmsg != nil {
		// <7> is KERN_DEBUG: recorded for dmesg but not echoed on the console, which already
		// has the line (the kernel adds its own timestamp). One record per line: a stack trace
		// stays readable in dmesg.
		for _, m := range strings.Split(strings.TrimRight(msg, "\n"), "\n") {
			fmt.Fprintf(l.kmsg, "<7>ramboot: %s\n", m)
		}
	}
	n := l.History
	if n <= 0 {
		n = 500
	}
	l.lines = append(l.lines, strings.Split(strings.TrimRight(line, "\n"), "\n")...)
	if len(l.lines) > n {
		l.lines = append(l.lines[:0:0], l.lines[len(l.lines)-n:]...)
	}
}

// Lines returns the most recent lines logged (History of them), oldest first.
func (l *Logger) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Drain waits until the console has sent everything written to it (tcdrain): a kexec or a
// reboot right after a log line would otherwise cut it off in the UART's buffer.
func Drain() {
	unix.IoctlSetInt(1, unix.TCSBRK, 1)
}
