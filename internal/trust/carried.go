package trust

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNotCarried says that a local path is not one of the initramfs's own files: it needs a
// signature like any URL.
var ErrNotCarried = errors.New("not a file the initramfs carries")

// Carried is the set of files the initramfs itself carries: its menus, its embedded images,
// its hooks. They are as trusted as the anchors beside them, and they are the only local files
// that are: /proc, /sys, /dev, /run, /tmp, the booted tmpfs and a disk are all local too, and the
// kernel command line, DHCP and a menu can name any of them.
type Carried struct {
	// Root is a directory on the initramfs's own file system ("/" in /init): a carried file
	// must be on the same device, so nothing mounted over a carried directory counts.
	Root string
	// Files are carried files, by absolute path (the menus).
	Files []string
	// Dirs are directories whose files, at any depth, are carried (embedded images, hooks).
	Dirs []string
}

// Check returns nil when name (a local path; a relative one is taken from "/", /init's working
// directory) is a regular file the initramfs carries. The path must name a carried file or lie
// under a carried directory before any link is followed, and links are then followed only
// inside that directory: a link out of it (to /proc/cmdline, say) is not carried. The error
// wraps ErrNotCarried and says why.
func (c Carried) Check(name string) error {
	p := filepath.Join("/", name) // Join cleans: "/rootfs/../proc/cmdline" is /proc/cmdline
	dir, rel := "", ""
	for _, f := range c.Files {
		if p == filepath.Clean(f) {
			dir, rel = filepath.Dir(p), filepath.Base(p)
		}
	}
	for _, d := range c.Dirs {
		d = filepath.Clean(d)
		if r, ok := strings.CutPrefix(p, d+"/"); ok && dir == "" {
			dir, rel = d, r
		}
	}
	if dir == "" {
		return fmt.Errorf("%s: %w", p, ErrNotCarried)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", p, ErrNotCarried, err)
	}
	defer root.Close()
	// O_NONBLOCK: opening a FIFO must not block PID 1; it is refused below as not regular.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", p, ErrNotCarried, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %w: %w", p, ErrNotCarried, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: %w: not a regular file", p, ErrNotCarried)
	}
	rst, err := os.Stat(c.Root)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", p, ErrNotCarried, err)
	}
	if device(st) != device(rst) {
		return fmt.Errorf("%s: %w: it is on another file system than the initramfs", p, ErrNotCarried)
	}
	return nil
}

// device is the file system a file is on.
func device(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}
