package sysinit

import (
	"bytes"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMountsString(t *testing.T) {
	want := []string{
		"mount -t proc proc /proc",
		"mount -t sysfs sysfs /sys",
		"mount -t devtmpfs devtmpfs /dev -o mode=0755",
		"mount -t devpts devpts /dev/pts -o gid=5,mode=620,ptmxmode=000",
		"mount -t tmpfs tmpfs /run -o mode=0755",
		"mount -t tmpfs tmpfs /tmp -o mode=1777",
		"mount -t efivarfs efivarfs /sys/firmware/efi/efivars",
		"mount -t securityfs securityfs /sys/kernel/security",
	}
	if len(Mounts) != len(want) {
		t.Fatalf("%d mounts, want %d", len(Mounts), len(want))
	}
	for i, m := range Mounts {
		if got := m.String(); got != want[i] {
			t.Errorf("mount %d: %q, want %q", i, got, want[i])
		}
	}
}

// TestMountIfPresent: a mount point that the kernel has not made is no mount and no error (a
// BIOS machine has no efivarfs directory), and nothing is created for it.
func TestMountIfPresent(t *testing.T) {
	missing := t.TempDir() + "/firmware/efi/efivars"
	if err := (Mount{Source: "efivarfs", Target: missing, FSType: "efivarfs", IfPresent: true}).Do(); err != nil {
		t.Errorf("absent mount point: %v", err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("the absent mount point was created: %v", err)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	var kmsg bytes.Buffer
	l := &Logger{console: &buf, kmsg: &kmsg, History: 3}
	l.Printf("fetching %s", "http://x")
	l.Quiet = true
	l.Printf("hidden")
	out := buf.String()
	if !strings.HasSuffix(out, "ramboot: fetching http://x\n") || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "[") {
		t.Errorf("console got %q", out)
	}
	if got := l.Lines(); len(got) != 2 || !strings.HasSuffix(got[1], "ramboot: hidden") {
		t.Errorf("history %q", got)
	}
	// A message of several lines is several kernel log records, and the history keeps the
	// last History lines.
	l.Printf("panic: boom\ngoroutine 1\nmain.main()")
	if got := kmsg.String(); !strings.HasSuffix(got, "<7>ramboot: panic: boom\n<7>ramboot: goroutine 1\n<7>ramboot: main.main()\n") {
		t.Errorf("kmsg got %q", got)
	}
	if got := l.Lines(); len(got) != 3 || got[2] != "main.main()" {
		t.Errorf("history %q", got)
	}
}

// TestCatchSignals: a caught SIGINT arrives on the channel instead of ending the process, as it
// would for /init (PID 1) without a handler.
func TestCatchSignals(t *testing.T) {
	ch := CatchSignals()
	defer signal.Stop(ch)
	for _, s := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGTERM} {
		if err := syscall.Kill(os.Getpid(), s); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-ch:
			if got != s {
				t.Errorf("got %v, want %v", got, s)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%v not delivered", s)
		}
	}
}
