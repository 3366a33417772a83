package initramfs

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/u-root/pkg/cpio"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// records reads back an uncompressed newc archive.
func records(t *testing.T, b []byte) map[string]cpio.Record {
	t.Helper()
	rr, err := cpio.Newc.NewFileReader(writeTemp(t, b))
	if err != nil {
		t.Fatal(err)
	}
	all, err := cpio.ReadAllRecords(rr)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]cpio.Record{}
	for _, r := range all {
		m[r.Name] = r
	}
	return m
}

func writeTemp(t *testing.T, b []byte) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "cpio")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b)
	f.Seek(0, io.SeekStart)
	t.Cleanup(func() { f.Close() })
	return f
}

func content(t *testing.T, r cpio.Record) string {
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string, mode os.FileMode) string {
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(s), mode)
		return p
	}
	spec := Spec{
		Init:        write("init", "INIT", 0o755),
		CA:          write("ca.pem", "PEM", 0o644),
		Hooks:       filepath.Dir(write("hooks/pre-fetch/10-check", "#!/bin/sh\n", 0o750)),
		Menu:        write("menu.yaml", "entries: []", 0o644),
		EmbedRootfs: write("rootfs.tar.zst", "IMAGE", 0o644),
		Busybox:     write("busybox", "#!/bin/sh\necho sh ls init\n", 0o755),
	}
	spec.Hooks = filepath.Dir(spec.Hooks)
	var buf bytes.Buffer
	st, err := Write(&buf, spec)
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, buf.Bytes())
	for name, want := range map[string]string{
		"init": "INIT", "etc/ssl/certs/ca-certificates.crt": "PEM", "etc/ramboot/hooks/pre-fetch/10-check": "#!/bin/sh\n",
		"etc/ramboot/menu.yaml": "entries: []", "rootfs/rootfs.tar.zst": "IMAGE",
	} {
		r, ok := recs[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if got := content(t, r); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if m := recs["init"].Mode; m != cpio.S_IFREG|0o755 {
		t.Errorf("/init mode %o", m)
	}
	if m := recs["etc/ramboot/hooks/pre-fetch/10-check"].Mode & 0o777; m != 0o750 {
		t.Errorf("hook mode %o, want its own 750", m)
	}
	if r := recs["dev/console"]; r.Mode != cpio.S_IFCHR|0o600 || r.Rmajor != 5 || r.Rminor != 1 {
		t.Errorf("/dev/console %+v", r.Info)
	}
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "newroot", "etc/ramboot/hooks"} {
		if recs[d].Mode&cpio.S_IFMT != cpio.S_IFDIR {
			t.Errorf("directory %s missing", d)
		}
	}
	if r := recs["bin/sh"]; r.Mode&cpio.S_IFMT != cpio.S_IFLNK || content(t, r) != "busybox" {
		t.Errorf("bin/sh is not a link to busybox: %+v", r.Info)
	}
	if _, ok := recs["bin/init"]; ok {
		t.Error("busybox init linked: only ramboot is init")
	}
	if st.Files != len(recs) || st.Uncompressed != int64(buf.Len()) {
		t.Errorf("stats %+v for %d records, %d bytes", st, len(recs), buf.Len())
	}
	// Reproducible: the same spec gives the same bytes.
	var again bytes.Buffer
	Write(&again, spec)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two builds differ")
	}
	if _, err := Write(io.Discard, Spec{}); err == nil {
		t.Error("no /init accepted")
	}
}

// TestDebianKernel packs Debian's cloud kernel's modules: the NIC drivers and virtio with their
// dependencies, and an index of exactly those; and checks the size target (≤ 10 MiB
// compressed, against the 30 MiB initrd the seed's initramfs-tools plugin makes).
func TestDebianKernel(t *testing.T) {
	k := vmtest.FindKernel(t)
	init := filepath.Join(t.TempDir(), "init")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", init, "github.com/ramboot/ramboot/cmd/ramboot-init")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building /init: %v: %s", err, out)
	}
	var raw bytes.Buffer
	st, err := Write(&raw, Spec{Init: init, Modules: k.Modules})
	if err != nil {
		t.Fatal(err)
	}
	recs := records(t, raw.Bytes())
	base := "lib/modules/" + k.Version + "/"
	for _, m := range []string{"kernel/drivers/net/virtio_net.ko", "kernel/drivers/net/vmxnet3/vmxnet3.ko", "kernel/drivers/virtio/virtio_pci.ko", "kernel/net/core/failover.ko", "modules.dep", "modules.alias"} {
		if _, ok := recs[base+m]; !ok {
			t.Errorf("%s missing", m)
		}
	}
	if _, ok := recs[base+"kernel/fs/ext4/ext4.ko"]; ok {
		t.Error("storage modules packed without --storage")
	}
	alias := content(t, recs[base+"modules.alias"])
	if !strings.Contains(alias, " virtio_net") || strings.Contains(alias, " ext4") {
		t.Error("modules.alias is not limited to the packed modules")
	}
	var z bytes.Buffer
	w, _ := Compressor("x.cpio.zst", &z)
	io.Copy(w, bytes.NewReader(raw.Bytes()))
	w.Close()
	t.Logf("initramfs for %s: %d modules, %.1f MiB uncompressed, %.1f MiB as .cpio.zst", k.Version, st.Modules,
		float64(raw.Len())/(1<<20), float64(z.Len())/(1<<20))
	if z.Len() > 10<<20 {
		t.Errorf("initramfs is %d bytes compressed, over the 10 MiB target", z.Len())
	}
	d, _ := zstd.NewReader(&z)
	back, err := io.ReadAll(d)
	if err != nil || !bytes.Equal(back, raw.Bytes()) {
		t.Errorf("zstd round trip: %v", err)
	}
}

func TestCompressor(t *testing.T) {
	for _, n := range []string{"a.cpio", "a.cpio.gz", "a.cpio.xz", "a.cpio.zst"} {
		if _, err := Compressor(n, io.Discard); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if _, err := Compressor("a.img", io.Discard); err == nil || !strings.Contains(err.Error(), ".cpio.zst") {
		t.Errorf("unknown extension: %v", err)
	}
}

// TestZstdEncoders: the zstd command and the Go encoder both make a stream the kernel's
// format reader (here klauspost's decoder) turns back into the same cpio, and the command,
// which the CLI prefers, makes the smaller one.
func TestZstdEncoders(t *testing.T) {
	if ZstdTool() == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("zstd not found (Debian: apt-get install zstd)")
		}
		t.Skip("zstd not found")
	}
	// A Go binary, as /init is: most of an initramfs's bytes are programs and modules.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	size := map[string]int{}
	for _, tool := range []string{"zstd", "builtin"} {
		zstdTool = tool
		var z bytes.Buffer
		w, err := Compressor("x.cpio.zst", &z)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(raw); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		size[tool] = z.Len()
		d, _ := zstd.NewReader(&z)
		back, err := io.ReadAll(d)
		if err != nil || !bytes.Equal(back, raw) {
			t.Errorf("%s: round trip: %v", tool, err)
		}
	}
	zstdTool = "zstd"
	if size["zstd"] >= size["builtin"] {
		t.Errorf("zstd command made %d bytes, the Go encoder %d", size["zstd"], size["builtin"])
	}
}

// TestZstdCommandFails: a zstd command that dies is an error of Close, naming it, not a
// truncated initramfs.
func TestZstdCommandFails(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "zstd")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 'zstd: out of luck' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	zstdTool = fake
	defer func() { zstdTool = "zstd" }()
	w, err := Compressor("x.cpio.zst", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("data"))
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "out of luck") {
		t.Errorf("Close: %v, want the command's failure", err)
	}
}
