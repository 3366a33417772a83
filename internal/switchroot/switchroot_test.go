package switchroot

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
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
