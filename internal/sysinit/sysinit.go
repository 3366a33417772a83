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
}

func (m Mount) String() string {
	s := fmt.Sprintf("mount -t %s %s %s", m.FSType, m.Source, m.Target)
	if m.Data != "" {
		s += " -o " + m.Data
	}
	return s
}

// Mounts are what /init mounts before anything else, in order.
var Mounts = []Mount{
	{Source: "proc", Target: "/proc", FSType: "proc", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Mode: 0o555},
	{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Mode: 0o555},
	{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755", Mode: 0o755},
	{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "gid=5,mode=620,ptmxmode=000", Mode: 0o755},
	{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=0755", Mode: 0o755},
	{Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV, Data: "mode=1777", Mode: 0o1777},
}

// Do performs the mount; an already mounted target (EBUSY) is fine.
func (m Mount) Do() error {
	if err := os.MkdirAll(m.Target, m.Mode); err != nil {
		return err
	}
	if err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data); err != nil && !errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("%s: %w", m, err)
	}
	return nil
}

// Setup mounts Mounts and puts the console on fds 0, 1, 2. Mount failures are returned
// together; the caller logs them and goes on (a missing /dev/pts is no reason not to boot).
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
	return errors.Join(errs...)
}

// Console makes the tty at path stdin, stdout and stderr, and the controlling terminal (so
// that Ctrl-C reaches a shell started later).
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
	unix.IoctlSetInt(0, unix.TIOCSCTTY, 1)
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
	// Tee receives every line too (the menu's log view).
	Tee func(line string)
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
		// has the line (the kernel adds its own timestamp).
		fmt.Fprintf(l.kmsg, "<7>ramboot: %s\n", msg)
	}
	if l.Tee != nil {
		l.Tee(line)
	}
}

// Drain waits until the console has sent everything written to it (tcdrain): a kexec or a
// reboot right after a log line would otherwise cut it off in the UART's buffer.
func Drain() {
	unix.IoctlSetInt(1, unix.TCSBRK, 1)
}
