// Package switchroot makes a directory the root file system and executes its init, as
// switch_root(8) does. It follows u-root's pkg/mount SwitchRoot, which cannot pass arguments
// or an environment to init (ramboot hands the image's init the parameters an operator edited
// in the menu).
package switchroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoReturn wraps every error SwitchRoot returns once it has changed the old root (moved a
// mount out of it): the initramfs can no longer be booted from, only rebooted.
var ErrNoReturn = errors.New("past the point of no return")

// noReturn marks err as past the point of no return.
func noReturn(err error) error { return fmt.Errorf("%w (%w)", err, ErrNoReturn) }

// Moves are the mounts carried into the new root, in order (with what is mounted below them:
// /dev/pts goes with /dev).
var Moves = []string{"/dev", "/proc", "/sys", "/run"}

// SwitchRoot moves Moves into newRoot, DETACHES EVERY OTHER MOUNT of the old root (/tmp of
// sysinit, anything a hook mounted: unreachable from the new root, they would pin their
// contents in RAM; each is freed once no process uses it any more), makes newRoot "/",
// DELETES EVERYTHING in the old root (the initramfs, to free its memory) and execs init with
// args and env. It returns only on failure. Once the first mount has moved there is nothing to
// go back to: such errors wrap ErrNoReturn, and the caller can only report them and reboot.
func SwitchRoot(newRoot, init string, args, env []string) error {
	// Read while /proc is still where it was.
	mountinfo, _ := os.ReadFile("/proc/self/mountinfo")
	detach := Leftovers(string(mountinfo), newRoot, Moves)
	for _, m := range Moves {
		if err := os.MkdirAll(filepath.Join(newRoot, m), 0o755); err != nil {
			return fmt.Errorf("switch_root: %w", err)
		}
	}
	moved := false
	for _, m := range Moves {
		dst := filepath.Join(newRoot, m)
		if err := unix.Mount(m, dst, "", unix.MS_MOVE, ""); err != nil {
			// An unmounted /run is not fatal; the image mounts its own.
			if m == "/run" && errors.Is(err, unix.EINVAL) {
				continue
			}
			err = fmt.Errorf("switch_root: mount --move %s %s: %w", m, dst, err)
			if moved {
				return noReturn(err)
			}
			return err
		}
		moved = true
	}
	for _, m := range detach {
		// Best effort, as the deletion below: a mount that stays pins memory, nothing more.
		unix.Unmount(m, unix.MNT_DETACH)
	}
	if err := unix.Chdir(newRoot); err != nil {
		return noReturn(fmt.Errorf("switch_root: chdir %s: %w", newRoot, err))
	}
	old, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return noReturn(fmt.Errorf("switch_root: open /: %w", err))
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		unix.Close(old)
		return noReturn(fmt.Errorf("switch_root: mount --move %s /: %w", newRoot, err))
	}
	if err := unix.Chroot("."); err != nil {
		unix.Close(old)
		return noReturn(fmt.Errorf("switch_root: chroot: %w", err))
	}
	unix.Chdir("/")
	var st unix.Stat_t
	if unix.Fstat(old, &st) == nil {
		deleteTree(old, st.Dev)
	}
	unix.Close(old)
	argv := append([]string{init}, args...)
	if err := unix.Exec(init, argv, env); err != nil {
		return noReturn(fmt.Errorf("switch_root: exec %s: %w", init, err))
	}
	return nil
}

// deleteTree removes everything below the directory fd that is on device dev (the initramfs),
// not crossing into other mounts. Errors are ignored: freeing memory is best effort.
func deleteTree(fd int, dev uint64) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return
	}
	d := os.NewFile(uintptr(dup), "")
	names, _ := d.Readdirnames(-1)
	d.Close()
	for _, n := range names {
		var st unix.Stat_t
		if unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Dev != dev {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if sub, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0); err == nil {
				deleteTree(sub, dev)
				unix.Close(sub)
			}
			unix.Unlinkat(fd, n, unix.AT_REMOVEDIR)
			continue
		}
		unix.Unlinkat(fd, n, 0)
	}
}

// Leftovers returns the mount points in mountinfo (the text of /proc/self/mountinfo) that
// switch_root would leave behind in the old root: all but "/", newRoot and what is below it,
// and moves and what is below them. The last mounted come first, so that a mount goes before
// the one it is on.
func Leftovers(mountinfo, newRoot string, moves []string) []string {
	keep := append([]string{filepath.Clean(newRoot)}, moves...)
	var out []string
	for _, l := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		mp := unescape(f[4])
		if mp == "/" || slices.ContainsFunc(keep, func(k string) bool { return below(mp, k) }) {
			continue
		}
		out = append(out, mp)
	}
	slices.Reverse(out)
	return out
}

// below reports whether p is dir or below it.
func below(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// unescape undoes mountinfo's octal escapes (\040 for a space, \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
