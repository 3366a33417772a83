package switchroot

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/sysinit"
)

// TestDeleteTree: the initramfs is freed, but nothing on another file system below it is
// touched (SwitchRoot itself is proved by the VM tests).
func TestDeleteTree(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must run the tests as root")
		}
		t.Skip("needs root to mount")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b/c"), 0o755)
	os.WriteFile(filepath.Join(root, "a/b/c/f"), []byte("x"), 0o644)
	os.Symlink("/etc", filepath.Join(root, "link"))
	other := filepath.Join(root, "other")
	os.Mkdir(other, 0o755)
	if err := unix.Mount("tmpfs", other, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(other, unix.MNT_DETACH)
	os.WriteFile(filepath.Join(other, "keep"), []byte("x"), 0o644)
	fd, _ := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	var st unix.Stat_t
	unix.Fstat(fd, &st)
	deleteTree(fd, st.Dev)
	unix.Close(fd)
	names, _ := os.ReadDir(root)
	if len(names) != 1 || names[0].Name() != "other" {
		t.Errorf("left %v", names)
	}
	if _, err := os.Stat(filepath.Join(other, "keep")); err != nil {
		t.Errorf("crossed into another mount: %v", err)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Errorf("followed a symlink out: %v", err)
	}
}

// TestLeftovers: what switch_root detaches is every mount of the old root but "/", the new root
// and the moved ones, with what is below each.
func TestLeftovers(t *testing.T) {
	mountinfo := `1 1 0:2 / / rw - rootfs rootfs rw
20 1 0:20 / /proc rw,nosuid,nodev,noexec - proc proc rw
21 1 0:21 / /sys rw,nosuid,nodev,noexec - sysfs sysfs rw
22 1 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw,mode=755
23 22 0:22 / /dev/pts rw,nosuid,noexec - devpts devpts rw,gid=5,mode=620,ptmxmode=000
24 1 0:23 / /run rw,nosuid,nodev - tmpfs tmpfs rw,mode=755
25 1 0:24 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw,mode=1777
26 1 0:25 / /newroot rw - tmpfs tmpfs rw,size=500m,mode=755
27 26 0:26 / /newroot/boot rw - tmpfs tmpfs rw
28 1 8:1 / /mnt/usb\040stick rw - vfat /dev/sdb1 rw
29 28 0:27 / /mnt/usb\040stick/x rw - tmpfs tmpfs rw
30 1 0:28 / /newrootx rw - tmpfs tmpfs rw
31 1 0:29 / /runner rw - tmpfs tmpfs rw
`
	got := Leftovers(mountinfo, "/newroot/", Moves)
	want := []string{"/runner", "/newrootx", "/mnt/usb stick/x", "/mnt/usb stick", "/tmp"}
	if !slices.Equal(got, want) {
		t.Errorf("Leftovers = %q, want %q", got, want)
	}
}

// TestLeftoversSysinit: every mount /init makes before anything else is either carried into the
// new root or detached from the old one.
func TestLeftoversSysinit(t *testing.T) {
	var mi strings.Builder
	fmt.Fprintf(&mi, "1 1 0:1 / / rw - rootfs rootfs rw\n")
	for i, m := range sysinit.Mounts {
		fmt.Fprintf(&mi, "%d 1 0:%d / %s rw - %s %s rw\n", i+2, i+2, m.Target, m.FSType, m.Source)
	}
	detached := Leftovers(mi.String(), "/newroot", Moves)
	for _, m := range sysinit.Mounts {
		moved := slices.ContainsFunc(Moves, func(d string) bool { return below(m.Target, d) })
		if d := slices.Contains(detached, m.Target); moved == d {
			t.Errorf("%s: moved %v, detached %v: want one of them", m.Target, moved, d)
		}
	}
	if !slices.Contains(detached, "/tmp") {
		t.Errorf("/tmp is not detached: %q", detached)
	}
}
