package loader

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestMemoryReserve: extracting into a tmpfs fills RAM, which the xz decoder must leave out of
// its budget; a disk does not.
func TestMemoryReserve(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	if got := memoryReserve(dir, 10<<20); got != 10<<20 {
		t.Errorf("tmpfs, known size: %d, want %d", got, 10<<20)
	}
	if got := memoryReserve(dir, -1); got < 60<<20 || got > 64<<20 {
		t.Errorf("tmpfs, unknown size: %d, want the free space (about 64 MiB)", got)
	}
	if got := memoryReserve(dir, 1<<40); got > 64<<20 {
		t.Errorf("tmpfs, size larger than the tmpfs: %d, want at most its free space", got)
	}
	var st unix.Statfs_t
	disk := t.TempDir()
	if unix.Statfs(disk, &st) == nil && st.Type != unix.TMPFS_MAGIC {
		if got := memoryReserve(disk, 10<<20); got != 0 {
			t.Errorf("disk: %d, want 0", got)
		}
	}
}
