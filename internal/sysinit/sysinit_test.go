package sysinit

import (
	"bytes"
	"strings"
	"testing"
)

func TestMountsString(t *testing.T) {
	want := []string{
		"mount -t proc proc /proc",
		"mount -t sysfs sysfs /sys",
		"mount -t devtmpfs devtmpfs /dev -o mode=0755",
		"mount -t devpts devpts /dev/pts -o gid=5,mode=620,ptmxmode=000",
		"mount -t tmpfs tmpfs /run -o mode=0755",
		"mount -t tmpfs tmpfs /tmp -o mode=1777",
	}
	for i, m := range Mounts {
		if got := m.String(); got != want[i] {
			t.Errorf("mount %d: %q, want %q", i, got, want[i])
		}
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	var teed []string
	l := &Logger{console: &buf, Tee: func(s string) { teed = append(teed, s) }}
	l.Printf("fetching %s", "http://x")
	l.Quiet = true
	l.Printf("hidden")
	out := buf.String()
	if !strings.HasSuffix(out, "ramboot: fetching http://x\n") || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "[") {
		t.Errorf("console got %q", out)
	}
	if len(teed) != 2 {
		t.Errorf("tee got %q", teed)
	}
}
