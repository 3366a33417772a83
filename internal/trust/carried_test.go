package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCarried: only the initramfs's own files are carried: not a path outside its directories,
// not one that climbs out with "..", not a link out of a carried directory, not a FIFO or a
// directory, not a file on another file system mounted where a carried one would be.
func TestCarried(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc", "ramboot")
	img := filepath.Join(root, "rootfs")
	for _, d := range []string{etc, img, filepath.Join(img, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	outside := filepath.Join(root, "cmdline") // the attacker's file, beside the carried ones
	for _, f := range []string{filepath.Join(etc, "menu.yaml"), filepath.Join(etc, "other.yaml"), filepath.Join(img, "a.tar"), filepath.Join(img, "sub", "b.tar"), outside} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("a.tar", filepath.Join(img, "inside.tar")))
	must(os.Symlink(outside, filepath.Join(img, "abs.tar")))
	must(os.Symlink("../cmdline", filepath.Join(img, "rel.tar")))
	must(os.Symlink("/proc/cmdline", filepath.Join(img, "proc.tar")))
	must(syscall.Mkfifo(filepath.Join(img, "fifo.tar"), 0o644))
	c := Carried{Root: root, Files: []string{filepath.Join(etc, "menu.yaml")}, Dirs: []string{img, "/proc"}}
	for _, tt := range []struct {
		path string
		why  string // "" when carried
	}{
		{path: filepath.Join(etc, "menu.yaml")},
		{path: filepath.Join(img, "a.tar")},
		{path: filepath.Join(img, "sub", "b.tar")},
		{path: filepath.Join(img, "inside.tar")},
		{path: filepath.Join(img, "sub", "..", "a.tar")},
		{path: filepath.Join(etc, "other.yaml"), why: "not a file the initramfs carries"},
		{path: outside, why: "not a file the initramfs carries"},
		{path: img + "/../cmdline", why: "not a file the initramfs carries"},
		{path: filepath.Join(img, "abs.tar"), why: "escapes"},
		{path: filepath.Join(img, "rel.tar"), why: "escapes"},
		{path: filepath.Join(img, "proc.tar"), why: "escapes"},
		{path: filepath.Join(img, "fifo.tar"), why: "not a regular file"},
		{path: filepath.Join(img, "sub"), why: "not a regular file"},
		{path: filepath.Join(img, "missing.tar"), why: "no such file"},
		{path: "/proc/cmdline", why: "another file system than the initramfs"},
		{path: "/dev/null", why: "not a file the initramfs carries"},
		{path: "proc/cmdline", why: "another file system than the initramfs"},
	} {
		err := c.Check(tt.path)
		switch {
		case tt.why == "" && err != nil:
			t.Errorf("%s: %v, want carried", tt.path, err)
		case tt.why != "" && (err == nil || !errors.Is(err, ErrNotCarried) || !strings.Contains(err.Error(), tt.why)):
			t.Errorf("%s: %v, want ErrNotCarried saying %q", tt.path, err, tt.why)
		}
	}
	if err := (Carried{}).Check(filepath.Join(img, "a.tar")); !errors.Is(err, ErrNotCarried) {
		t.Errorf("the zero Carried carries %s: %v", filepath.Join(img, "a.tar"), err)
	}
}
