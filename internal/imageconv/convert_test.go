package imageconv

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ramboot/ramboot/loader"
)

// layers splits the tree in dir into two container layers whose flattening is the tree: the
// first has a file the second deletes (whiteout) and an old file in a directory the second
// makes opaque and refills; the second is zstd-compressed OCI, the first gzip.
func layers(t *testing.T, dir string) (v1.Layer, v1.Layer) {
	t.Helper()
	es := tarEntries(t, gnuTar(t, dir))
	var lower, upper []tarEntry
	file := func(n, data string) tarEntry {
		return tarEntry{&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: base}, []byte(data)}
	}
	for _, e := range es {
		switch e.hdr.Name {
		case "./usr/share/big":
			upper = append(upper, e) // changed in the upper layer
			lower = append(lower, file(e.hdr.Name, "old content"))
			continue
		case "./etc/":
			upper = append(upper, e, file("etc/.wh..wh..opq", ""))
			lower = append(lower, e, file("etc/hidden", "hidden by the opaque etc"))
			continue
		case "./etc/passwd", "./etc/shadow", "./etc/dangling":
			upper = append(upper, e)
			continue
		}
		lower = append(lower, e)
	}
	lower = append(lower, file("./gone", "deleted above"), tarEntry{&tar.Header{Name: "gonedir/", Typeflag: tar.TypeDir, Mode: 0o755}, nil},
		file("gonedir/f", "deleted with its directory"))
	upper = append(upper, file(".wh.gone", ""), file("./.wh.gonedir", ""))
	mk := func(b []byte, opts ...tarball.LayerOption) v1.Layer {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	return mk(tarOf(t, lower)), mk(tarOf(t, upper), tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
}

func imageOf(t *testing.T, arch string, ls ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: arch, RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.AppendLayers(img, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// otherImage is a one-file image, for another platform.
func otherImage(t *testing.T, arch string) v1.Image {
	t.Helper()
	b := tarOf(t, []tarEntry{{&tar.Header{Name: "arch", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: base}, []byte(arch)}})
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return imageOf(t, arch, l)
}

// multiArch is an index of img (amd64) and a small arm64 image.
func multiArch(t *testing.T, img v1.Image) v1.ImageIndex {
	return mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: otherImage(t, "arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
}

// TestSources makes an image from every kind of source holding the same tree, extracts each
// with the loader and compares the result with the tree; all are the same bytes.
func TestSources(t *testing.T) {
	root := asRoot(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	os.Mkdir(src, 0o755)
	makeTree(t, src, rootTree(), root)

	tarGz := filepath.Join(tmp, "rootfs.tar.gz")
	var gz bytes.Buffer
	cmd := exec.Command("gzip", "-c")
	cmd.Stdin, cmd.Stdout = bytes.NewReader(gnuTar(t, src)), &gz
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(tarGz, gz.Bytes(), 0o644)

	l1, l2 := layers(t, src)
	img := imageOf(t, "amd64", l1, l2)
	archive := filepath.Join(tmp, "image.tar")
	tag, _ := name.NewTag("example.org/rootfs:v1")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		t.Fatal(err)
	}
	oci := filepath.Join(tmp, "oci")
	p, err := layout.Write(oci, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(otherImage(t, "amd64"), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "other"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(multiArch(t, img), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "example.org/rootfs:v1"})); err != nil {
		t.Fatal(err)
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/lab/rootfs:v1"
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, multiArch(t, img)); err != nil {
		t.Fatal(err)
	}

	// The comparison sees what matters.
	snap := snapshot(t, src)
	if n := snap["usr/bin/su"]; n.Group != "usr/bin/a ping" || n.Mode != "104755" {
		t.Fatalf("test tree: su %+v", n)
	}
	if root && (snap["usr/bin/ping"].Xattrs["SCHILY.xattr.security.capability"] != capNetRaw || snap["dev/null"].Rdev != 259 || snap["home/user"].UID != 1000) {
		t.Fatalf("test tree: ping %+v null %+v", snap["usr/bin/ping"], snap["dev/null"])
	}

	var first string
	for _, s := range []string{"dir:" + src, "tar:" + tarGz, "docker-archive:" + archive, "oci:" + oci + ":v1", "docker://" + ref} {
		t.Run(strings.Split(s, ":")[0], func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "rootfs.tar.zst")
			res := convert(t, s, out, Options{})
			sameTree(t, src, extract(t, out))
			if side, err := os.ReadFile(out + ".sha256"); err != nil || string(side) != res.SHA256+"  rootfs.tar.zst\n" {
				t.Errorf("sha256 file: %q, %v; want the sum and the name", side, err)
			}
			if got := fileSHA(t, out); got != res.SHA256 {
				t.Errorf("result's sha256 %s, file's %s", res.SHA256, got)
			}
			if first == "" {
				first = res.SHA256
			} else if res.SHA256 != first {
				t.Errorf("%s gives other bytes than dir: (%s, want %s)", s, res.SHA256, first)
			}
		})
	}

	t.Run("platform", func(t *testing.T) {
		for _, s := range []string{"oci:" + oci + ":v1", "docker://" + ref} {
			out := filepath.Join(t.TempDir(), "arm.tar")
			convert(t, s, out, Options{Platform: "linux/arm64"})
			if b, err := os.ReadFile(filepath.Join(extract(t, out), "arch")); err != nil || string(b) != "arm64" {
				t.Errorf("%s for linux/arm64: arch file %q, %v", s, b, err)
			}
		}
	})
}

// TestXZ checks the parallel xz output: several blocks, CRC64, decoded by xz, pixz and the
// loader into the same archive as the uncompressed output.
func TestXZ(t *testing.T) {
	for _, tool := range []string{"xz", "pixz"} {
		needTool(t, tool)
	}
	root := asRoot(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	os.Mkdir(src, 0o755)
	es := rootTree()
	// About 20 MiB, part of it badly compressible: three blocks of 8 MiB.
	var big bytes.Buffer
	x := uint32(1)
	for big.Len() < 20<<20 {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		if x%4 == 0 {
			big.WriteString("a line of text repeated in the image\n")
		} else {
			big.Write([]byte{byte(x), byte(x >> 8), byte(x >> 16), byte(x >> 24)})
		}
	}
	es = append(es, fsEntry{name: "usr/share/bigger", kind: tar.TypeReg, mode: 0o644, data: big.String()})
	makeTree(t, src, es, root)

	plain := filepath.Join(tmp, "rootfs.tar")
	convert(t, "dir:"+src, plain, Options{})
	want := fileSHA(t, plain)
	xzOut := filepath.Join(tmp, "rootfs.tar.xz")
	convert(t, "dir:"+src, xzOut, Options{})

	for _, dec := range [][]string{{"xz", "-dc"}, {"pixz", "-d"}} {
		cmd := exec.Command(dec[0], dec[1:]...)
		f, _ := os.Open(xzOut)
		var out, errb bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = f, &out, &errb
		err := cmd.Run()
		f.Close()
		if err != nil {
			t.Fatalf("%v: %v: %s", dec, err, errb.String())
		}
		if got := sha(out.Bytes()); got != want {
			t.Errorf("%v decodes to other bytes than the .tar output", dec)
		}
	}
	out, err := exec.Command("xz", "--robot", "-lv", xzOut).Output()
	if err != nil {
		t.Fatal(err)
	}
	var blocks int
	for l := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(l), "\t")
		switch f[0] {
		case "block":
			blocks++
		case "stream":
			if f[len(f)-3] != "CRC64" && !strings.Contains(l, "CRC64") {
				t.Errorf("stream check: %s", l)
			}
		}
	}
	if blocks < 3 {
		t.Errorf("%d blocks, want 3 or more:\n%s", blocks, out)
	}
	sameTree(t, src, extract(t, xzOut))
}

// TestReproducible: the same input gives the same bytes; --mtime-clamp caps mtimes, and
// makes trees that differ only in later mtimes give the same bytes.
func TestReproducible(t *testing.T) {
	root := asRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	makeTree(t, src, rootTree(), root)
	dir := t.TempDir()
	for _, ext := range []string{".tar", ".tar.gz", ".tar.zst", ".tar.xz"} {
		a, b := filepath.Join(dir, "a"+ext), filepath.Join(dir, "b"+ext)
		ra, rb := convert(t, "dir:"+src, a, Options{}), convert(t, "dir:"+src, b, Options{})
		if ra.SHA256 != rb.SHA256 {
			t.Errorf("%s: two runs give %s and %s", ext, ra.SHA256, rb.SHA256)
		}
	}

	clamp := base.Add(10 * time.Second).Truncate(time.Second)
	c1 := convert(t, "dir:"+src, filepath.Join(dir, "c1.tar"), Options{MtimeClamp: clamp})
	got := snapshot(t, extract(t, filepath.Join(dir, "c1.tar")))
	var capped int
	for p, n := range got {
		m, _ := time.Parse(time.RFC3339Nano, n.Mtime)
		if m.After(clamp) {
			t.Errorf("%s: mtime %s after the clamp %s", p, n.Mtime, clamp)
		}
		if m.Equal(clamp) {
			capped++
		}
	}
	if capped == 0 || capped == len(got) {
		t.Errorf("%d of %d mtimes at the clamp: want some, not all", capped, len(got))
	}
	later := time.Now()
	if err := os.Chtimes(filepath.Join(src, "etc/passwd"), later, later); err != nil {
		t.Fatal(err)
	}
	c2 := convert(t, "dir:"+src, filepath.Join(dir, "c2.tar"), Options{MtimeClamp: clamp})
	if c1.SHA256 != c2.SHA256 {
		t.Error("a later mtime above the clamp changed the image")
	}
	if u := convert(t, "dir:"+src, filepath.Join(dir, "u.tar"), Options{}); u.SHA256 == c2.SHA256 {
		t.Error("the clamp changed nothing")
	}
}

func TestOutputReplacement(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	makeTree(t, src, rootTree(), false)
	dir := t.TempDir()
	out := filepath.Join(dir, "rootfs.tar.zst")
	os.WriteFile(out, []byte("precious"), 0o644)
	s, _ := ParseSource("dir:" + src)
	_, err := Convert(context.Background(), s, out, Options{})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("converting over an existing output: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatal("the existing output was changed")
	}
	convert(t, "dir:"+src, out, Options{Force: true})
	if b, _ := os.ReadFile(out); string(b) == "precious" {
		t.Fatal("--force did not replace the output")
	}
	// A symlink at OUT is replaced, never written through.
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("victim"), 0o644)
	link := filepath.Join(dir, "link.tar")
	os.Symlink(victim, link)
	if _, err := Convert(context.Background(), s, link, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("converting over a symlink: %v, want ErrExists", err)
	}
	convert(t, "dir:"+src, link, Options{Force: true})
	if b, _ := os.ReadFile(victim); string(b) != "victim" {
		t.Fatal("wrote through the symlink at OUT")
	}
	if fi, err := os.Lstat(link); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
		t.Fatalf("OUT: %v, %v; want a regular file, mode 0644", fi.Mode(), err)
	}
	// No temporary file is left behind, after success or failure.
	names, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(names) > 0 {
		t.Errorf("temporary files left: %v", names)
	}
}

func TestRescueOptions(t *testing.T) {
	root := asRoot(t)
	src := filepath.Join(t.TempDir(), "src")
	os.Mkdir(src, 0o755)
	makeTree(t, src, rootTree(), root)
	out := filepath.Join(t.TempDir(), "rescue.tar.gz")
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDummyKeyForTests ops@example"
	convert(t, "dir:"+src, out, Options{DropModules: true, RootPasswordEmpty: true, SSHKeys: []byte(key + "\n\n" + key + "\n")})
	got := extract(t, out)

	if names, err := os.ReadDir(filepath.Join(got, "lib/modules")); err != nil || len(names) != 0 {
		t.Errorf("lib/modules: %v, %v; want an empty directory", names, err)
	}
	shadowFile := "etc/shadow"
	if !root {
		shadowFile = "etc/passwd"
	}
	b, _ := os.ReadFile(filepath.Join(got, shadowFile))
	orig, _ := os.ReadFile(filepath.Join(src, shadowFile))
	if want := strings.Replace(string(orig), "root:"+strings.Split(string(orig), ":")[1]+":", "root::", 1); string(b) != want {
		t.Errorf("%s:\n%s\nwant:\n%s", shadowFile, b, want)
	}
	if fi, _ := os.Stat(filepath.Join(got, shadowFile)); fi.Mode().Perm() != map[bool]os.FileMode{true: 0o640, false: 0o644}[root] {
		t.Errorf("%s lost its mode: %v", shadowFile, fi.Mode())
	}
	ak := filepath.Join(got, "root/.ssh/authorized_keys")
	if b, err := os.ReadFile(ak); err != nil || string(b) != key+"\n" {
		t.Errorf("authorized_keys: %q, %v", b, err)
	}
	for p, want := range map[string]os.FileMode{"root/.ssh": os.ModeDir | 0o700, "root/.ssh/authorized_keys": 0o600, "root": os.ModeDir | 0o700} {
		if fi, err := os.Lstat(filepath.Join(got, p)); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, %v; want %v", p, fi.Mode(), err, want)
		}
	}
	// Unchanged otherwise.
	if b, _ := os.ReadFile(filepath.Join(got, "etc/passwd")); root && !strings.HasPrefix(string(b), "root:x:") {
		t.Errorf("passwd changed: %s", b)
	}
}

func TestBadSources(t *testing.T) {
	tmp := t.TempDir()
	notTar := filepath.Join(tmp, "notes.txt")
	os.WriteFile(notTar, []byte(strings.Repeat("just some text\n", 100)), 0o644)
	emptyDir := filepath.Join(tmp, "empty")
	os.Mkdir(emptyDir, 0o755)
	oci := filepath.Join(tmp, "oci")
	p, err := layout.Write(oci, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	p.AppendImage(otherImage(t, "amd64"), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"}))
	p.AppendImage(otherImage(t, "arm64"), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "arm"}))
	l, _ := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarOf(t, nil))), nil },
		tarball.WithMediaType("application/vnd.oci.image.layer.v1.tar+gzip+encrypted"))
	p.AppendImage(imageOf(t, "amd64", l), layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "secret"}))
	archive := filepath.Join(tmp, "two.tar")
	t1, _ := name.NewTag("a:1")
	t2, _ := name.NewTag("b:2")
	tarball.MultiWriteToFile(archive, map[name.Tag]v1.Image{t1: otherImage(t, "amd64"), t2: otherImage(t, "amd64")})
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")

	for _, tt := range []struct {
		src     string
		wantErr error
		want    string
	}{
		{src: "dir:" + filepath.Join(tmp, "missing"), wantErr: os.ErrNotExist},
		{src: "dir:" + notTar, want: "is not a directory"},
		{src: "tar:" + notTar, wantErr: loader.ErrFormat, want: "are not xz, zstd, gzip, bzip2 or tar"},
		{src: "tar:" + emptyDir, want: "a directory: for a directory use dir:"},
		{src: "oci:" + oci + ":v2", wantErr: ErrNoImage, want: "no image tagged v2 in " + oci + " (tags: v1, arm, secret)"},
		{src: "oci:" + oci, wantErr: ErrNoImage, want: "holds 3 images"},
		{src: "oci:" + oci + ":arm", wantErr: ErrNoImage, want: "is for linux/arm64, not linux/amd64"},
		{src: "oci:" + oci + ":secret", wantErr: ErrMediaType, want: "layer 1 of oci:" + oci + ":secret is application/vnd.oci.image.layer.v1.tar+gzip+encrypted (encrypted)"},
		{src: "oci:" + emptyDir, want: "reading OCI layout"},
		{src: "docker-archive:" + archive, wantErr: ErrNoImage, want: "holds 2 images"},
		{src: "docker-archive:" + archive + ":c:3", wantErr: ErrNoImage, want: "no image tagged c:3"},
		{src: "docker-archive:" + notTar, want: "not a docker archive"},
		{src: "docker://" + host + "/lab/none:v1", wantErr: ErrNoImage},
		{src: "docker://" + host + "/UPPER:v1", wantErr: ErrSource},
	} {
		t.Run(tt.src, func(t *testing.T) {
			s, err := ParseSource(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out.tar")
			_, err = Convert(context.Background(), s, out, Options{TempDir: t.TempDir()})
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to say %q", err, tt.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output written after a failure: %v", err)
			}
		})
	}
	t.Run("extension", func(t *testing.T) {
		s, _ := ParseSource("dir:" + emptyDir)
		if _, err := Convert(context.Background(), s, filepath.Join(tmp, "out.zip"), Options{}); !errors.Is(err, ErrOutput) {
			t.Errorf("out.zip: %v, want ErrOutput", err)
		}
	})
}
