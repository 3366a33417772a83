package boot

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/hooks"
)

// TestPrepareChecksInitFirst: an image without its init is refused before the kernel's modules
// are copied into it or anything else is written.
func TestPrepareChecksInitFirst(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.Close()
	dir := t.TempDir()
	img := filepath.Join(dir, "noinit.tar")
	os.WriteFile(img, buf.Bytes(), 0o644)
	var u unix.Utsname
	unix.Uname(&u)
	kernel := filepath.Join(dir, "initramfs")
	os.MkdirAll(filepath.Join(kernel, "lib/modules", unix.ByteSliceToString(u.Release[:])), 0o755)
	root := filepath.Join(dir, "root")
	b := &Booter{Root: root, KernelFiles: kernel, Hooks: hooks.Runner{Dir: filepath.Join(dir, "hooks")}, Logf: t.Logf}
	_, err := b.Prepare(context.Background(), Plan{Name: "x", Ramroot: &RamrootPlan{Image: Image{URLs: []string{img}}}}, nil)
	if err == nil || !strings.Contains(err.Error(), "init=/sbin/init in the image: /sbin is missing") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "lib")); err == nil {
		t.Error("modules were copied into an image without init")
	}
}
