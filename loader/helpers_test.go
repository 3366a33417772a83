package loader

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// entry is one member of a test archive.
type entry struct {
	hdr  tar.Header
	data []byte
}

// tarOf writes entries as a PAX/GNU tar archive.
func tarOf(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("writing header %s: %v", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var epoch = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// randomTree returns a small root-like archive: directories, files of random (badly
// compressible) and text (compressible) content, symlinks and a hard link; about size bytes.
func randomTree(seed uint64, size int) []entry {
	r := rand.New(rand.NewPCG(seed, seed))
	es := []entry{
		{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}},
		{hdr: tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}},
		{hdr: tar.Header{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}},
		{hdr: tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}},
		{hdr: tar.Header{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin", Mode: 0o777, ModTime: epoch}},
	}
	total := 0
	for i := 0; total < size; i++ {
		n := r.IntN(64 << 10)
		if i%10 == 0 {
			n = r.IntN(1 << 20)
		}
		data := make([]byte, n)
		if i%2 == 0 {
			for j := range data {
				data[j] = byte(r.Uint32())
			}
		} else {
			for j := range data {
				data[j] = "abcdefgh \n"[r.IntN(10)]
			}
		}
		dir := "usr/bin/"
		if i%3 == 0 {
			dir = "etc/"
		}
		es = append(es, entry{hdr: tar.Header{Name: fmt.Sprintf("%sf%04d", dir, i), Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch}, data: data})
		total += n
	}
	es = append(es, entry{hdr: tar.Header{Name: "etc/hard", Typeflag: tar.TypeLink, Linkname: "etc/f0000", ModTime: epoch}})
	return es
}

func zstdOf(t testing.TB, b []byte) []byte {
	t.Helper()
	// EncodeAll writes the frame content size, as the zstd CLI does for a file.
	w, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	return w.EncodeAll(b, nil)
}

func gzipOf(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// xzOf compresses with the system xz in several blocks (as pixz and xz -T do).
func xzOf(t testing.TB, b []byte, args ...string) []byte {
	t.Helper()
	if len(args) == 0 {
		args = []string{"-T2", "--block-size=256KiB", "-1"}
	}
	return runFilter(t, b, "xz", append(args, "-c")...)
}

func runFilter(t testing.TB, in []byte, name string, args ...string) []byte {
	t.Helper()
	needTool(t, name)
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(in)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v: %s", name, args, err, errb.String())
	}
	return out.Bytes()
}

// needTool fails (in CI) or skips (elsewhere) when a system tool the test compares with is
// missing: CI installs them all, so a missing one there is a broken CI, not a reason to skip.
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (.ci/run must install it)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

// needRoot: extraction fidelity (owners, devices, security.capability) needs root.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must run the tests as root")
		}
		t.Skip("needs root")
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkTree compares the regular files and links of dir with the archive's entries.
func checkTree(t *testing.T, dir string, es []entry) {
	t.Helper()
	for _, e := range es {
		p := filepath.Join(dir, e.hdr.Name)
		switch e.hdr.Typeflag {
		case tar.TypeReg:
			got, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("reading extracted file: %v", err)
			}
			if !bytes.Equal(got, e.data) {
				t.Fatalf("%s: content differs (%d bytes, want %d)", e.hdr.Name, len(got), len(e.data))
			}
		case tar.TypeSymlink:
			got, err := os.Readlink(p)
			if err != nil || got != e.hdr.Linkname {
				t.Fatalf("%s: link %q, %v; want %q", e.hdr.Name, got, err, e.hdr.Linkname)
			}
		}
	}
}

// assertEmpty checks that a failed load left nothing behind.
func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	names, err := readNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > 0 {
		t.Fatalf("%s not emptied after failure: %v", dir, names)
	}
}

var _ = io.EOF

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o644) }
