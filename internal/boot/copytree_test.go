package boot

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCopyTree: every file arrives whole, whatever its size, and a write that fails (here:
// past RLIMIT_FSIZE) fails the copy.
func TestCopyTree(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	sizes := map[string]int{"empty": 0, "one": 1, "page-1": 4095, "page+1": 4097, "dir/mib": 1 << 20}
	for name, n := range sizes {
		os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o755)
		os.WriteFile(filepath.Join(src, name), bytes.Repeat([]byte{'x'}, n), 0o644)
	}
	r, err := os.OpenRoot(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := copyTree(r, "to", src); err != nil {
		t.Fatal(err)
	}
	for name, n := range sizes {
		if b, err := os.ReadFile(filepath.Join(dst, "to", name)); err != nil || len(b) != n {
			t.Errorf("%s: %d bytes (%v), want %d", name, len(b), err, n)
		}
	}

	// A file larger than the process may write: the copy must say so.
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = 64 << 10
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("setrlimit: %v", err)
	}
	err = copyTree(r, "again", src)
	syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	if err == nil || !strings.Contains(err.Error(), "file too large") {
		t.Errorf("copy past RLIMIT_FSIZE: %v, want the write's error", err)
	}
}
