package loader

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// everyType is an archive with every entry type and every kind of metadata a root file
// system has.
func everyType() []entry {
	t := func(s int) time.Time { return epoch.Add(time.Duration(s) * time.Hour) }
	capV := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" // cap_net_raw+ep
	return []entry{
		{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t(1)}},
		{hdr: tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t(2)}},
		{hdr: tar.Header{Name: "bin/ping", Typeflag: tar.TypeReg, Mode: 0o755, ModTime: t(3),
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": capV}}, data: []byte("ping binary")},
		{hdr: tar.Header{Name: "bin/su", Typeflag: tar.TypeReg, Mode: 0o4755, ModTime: t(4)}, data: []byte("su")},
		{hdr: tar.Header{Name: "bin/wall", Typeflag: tar.TypeReg, Mode: 0o2755, Gid: 5, ModTime: t(5)}, data: []byte("wall")},
		{hdr: tar.Header{Name: "bin/replaced", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: t(18)}, data: []byte("old")},
		{hdr: tar.Header{Name: "bin/replaced", Typeflag: tar.TypeSymlink, Linkname: "ping", ModTime: t(19)}},
		{hdr: tar.Header{Name: "bin/relinked", Typeflag: tar.TypeSymlink, Linkname: "su", ModTime: t(19)}},
		{hdr: tar.Header{Name: "bin/relinked", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: t(20)}, data: []byte("now a file")},
		{hdr: tar.Header{Name: "bin/hard-ping", Typeflag: tar.TypeLink, Linkname: "bin/ping", ModTime: t(3)}},
		{hdr: tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: t(6)}},
		{hdr: tar.Header{Name: "home/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t(7)}},
		{hdr: tar.Header{Name: "home/user/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1000, ModTime: t(8),
			PAXRecords: map[string]string{"SCHILY.xattr.user.dir": "d"}}},
		{hdr: tar.Header{Name: "home/user/notes", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 1000, ModTime: t(9),
			PAXRecords: map[string]string{"SCHILY.xattr.user.comment": "hello", "SCHILY.xattr.trusted.x": "y"}}, data: []byte("notes\n")},
		{hdr: tar.Header{Name: "home/user/link", Typeflag: tar.TypeLink, Linkname: "home/user/notes", ModTime: t(9)}},
		{hdr: tar.Header{Name: "readonly/", Typeflag: tar.TypeDir, Mode: 0o555, ModTime: t(10)}},
		{hdr: tar.Header{Name: "readonly/file", Typeflag: tar.TypeReg, Mode: 0o444, ModTime: time.Unix(0, 0)}, data: nil},
		{hdr: tar.Header{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: t(11)}},
		{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: t(12)}},
		{hdr: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Mode: 0o660, Gid: 6, Devmajor: 8, Devminor: 0, ModTime: t(13)}},
		{hdr: tar.Header{Name: "dev/initctl", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: t(14)}},
		{hdr: tar.Header{Name: "sbin", Typeflag: tar.TypeSymlink, Linkname: "bin", ModTime: t(15), Uid: 3, Gid: 3}},
		{hdr: tar.Header{Name: "abs", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd", ModTime: t(16)}},
		{hdr: tar.Header{Name: "dangling", Typeflag: tar.TypeSymlink, Linkname: "nowhere/at/all", ModTime: t(16)}},
		{hdr: tar.Header{Name: "implicit/parent/file", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 7, Gid: 8, ModTime: t(17)}, data: bytes.Repeat([]byte("x"), 100000)},
		{hdr: tar.Header{Name: "long/" + strings.Repeat("d", 150) + "/" + strings.Repeat("f", 120), Typeflag: tar.TypeReg, Mode: 0o644, ModTime: t(21)}, data: []byte("long name")},
		{hdr: tar.Header{Name: "nanos", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(1700000000, 987654321), Format: tar.FormatPAX}, data: []byte("n")},
	}
}

// node is what the comparison sees of one path.
type node struct {
	Mode   string
	UID    uint32
	GID    uint32
	Size   int64
	Mtime  int64
	Rdev   uint64
	Link   string
	Data   string
	Xattrs map[string]string
	Nlink  uint64
	Group  string // first path with the same inode: hard link identity
}

// implicit directories are created for entries whose parents the archive does not list.
var implicit = map[string]bool{"implicit": true, "implicit/parent": true, "long": true, "long/" + strings.Repeat("d", 150): true}

func snapshot(t *testing.T, dir string) map[string]node {
	t.Helper()
	out := map[string]node{}
	inodes := map[uint64]string{}
	var names []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, p)
		return nil
	})
	sort.Strings(names)
	for _, p := range names {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		n := node{
			Mode: fmt.Sprintf("%o", st.Mode), UID: st.Uid, GID: st.Gid, Mtime: st.Mtim.Nano(),
			Rdev: st.Rdev, Nlink: st.Nlink, Xattrs: listXattrs(t, p),
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			n.Data, n.Size = sha(b), st.Size
			if g, ok := inodes[st.Ino]; ok {
				n.Group = g
			} else {
				inodes[st.Ino] = rel
			}
		case unix.S_IFLNK:
			n.Link, _ = os.Readlink(p)
		case unix.S_IFDIR:
			n.Nlink = 0
			if implicit[rel] {
				n.Mtime = 0 // made when needed, at "now": not in the archive
			}
		}
		out[rel] = n
	}
	return out
}

func listXattrs(t *testing.T, p string) map[string]string {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		return nil
	}
	buf := make([]byte, sz)
	sz, _ = unix.Llistxattr(p, buf)
	m := map[string]string{}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		v := make([]byte, 256)
		k, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		m[name] = string(v[:k])
	}
	return m
}

// TestExtractMatchesGNUTar extracts the same archive with ramboot and with GNU tar as root and
// compares every path's type, mode, owner, size, data, mtime, device, link target, xattrs and
// hard-link identity.
func TestExtractMatchesGNUTar(t *testing.T) {
	needRoot(t)
	tarBin := needTool(t, "tar")
	es := everyType()
	archive := tarOf(t, es)
	base := t.TempDir()
	ours, theirs := filepath.Join(base, "ours"), filepath.Join(base, "gnu")
	os.Mkdir(theirs, 0o755)
	p := filepath.Join(base, "a.tar")
	writeFile(p, archive)

	res, err := Load(context.Background(), ours, []string{p}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != len(es) {
		t.Errorf("extracted %d entries, want %d", res.Entries, len(es))
	}
	cmd := exec.Command(tarBin, "--numeric-owner", "--same-owner", "--xattrs", "--xattrs-include=*", "-xpf", p, "-C", theirs)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GNU tar: %v: %s", err, out)
	}
	want, got := snapshot(t, theirs), snapshot(t, ours)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree differs from GNU tar's (-gnu +ramboot):\n%s", diff)
	}
	// Sanity: the comparison itself sees what matters.
	if n := got["bin/ping"]; n.Xattrs["security.capability"] == "" || n.Group != "bin/hard-ping" {
		t.Errorf("capability or hard link lost: %+v %+v", n, got["bin/hard-ping"])
	}
	if got["bin/su"].Mode != "104755" || got["tmp"].Mode != "41777" || got["dev/null"].Rdev != unix.Mkdev(1, 3) {
		t.Errorf("modes/devices: su %s tmp %s null %d", got["bin/su"].Mode, got["tmp"].Mode, got["dev/null"].Rdev)
	}
}

func TestExtractRejectsEscapes(t *testing.T) {
	reg := func(name string) entry {
		return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, data: []byte("pwned")}
	}
	sym := func(name, to string) entry {
		return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}}
	}
	hard := func(name, to string) entry {
		return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: to}}
	}
	dir := func(name string) entry {
		return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
	}
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	writeFile(victim, []byte("safe"))
	for _, tt := range []struct {
		name string
		es   []entry
	}{
		{"dotdot", []entry{reg("../escape")}},
		{"dotdot inside", []entry{dir("a/"), reg("a/../../escape")}},
		{"absolute", []entry{reg("/tmp/escape")}},
		{"through symlink dir", []entry{sym("up", ".."), reg("up/escape")}},
		{"through absolute symlink", []entry{sym("out", outside), reg("out/victim")}},
		{"through symlink chain", []entry{sym("a", "b"), sym("b", "../.."), reg("a/escape")}},
		{"hardlink out by name", []entry{hard("h", "../victim")}},
		{"hardlink absolute", []entry{hard("h", victim)}},
		{"hardlink through symlink", []entry{sym("out", outside), hard("h", "out/victim")}},
		{"symlink then dir through it", []entry{sym("x", outside), dir("x/sub/")}},
		// A directory may become a symlink out (var/run -> /run); writing through it may not.
		{"dir replaced by absolute symlink, written through", []entry{dir("var/"), dir("var/run/"), sym("var/run", outside), reg("var/run/victim")}},
		{"dir replaced by absolute symlink, dir through it", []entry{dir("var/run/"), sym("var/run", outside), dir("var/run/sub/")}},
		{"parent retargeted out", []entry{dir("a/"), sym("l", "a"), reg("l/x"), sym("l", outside), reg("l/victim")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dest := filepath.Join(base, "root")
			p := filepath.Join(base, "evil.tar")
			writeFile(p, tarOf(t, tt.es))
			_, err := Load(context.Background(), dest, []string{p}, Options{})
			if !errors.Is(err, ErrInsecurePath) {
				t.Fatalf("error %v, want ErrInsecurePath", err)
			}
			assertEmpty(t, dest)
			for _, f := range []string{filepath.Join(base, "escape"), "/tmp/escape", filepath.Join(outside, "sub")} {
				if _, err := os.Lstat(f); err == nil {
					t.Fatalf("%s was written outside the target", f)
				}
			}
			if b, _ := os.ReadFile(victim); string(b) != "safe" {
				t.Fatalf("victim changed: %q", b)
			}
		})
	}
}

func TestExtractHugeSize(t *testing.T) {
	// A header announcing a terabyte, followed by a few bytes: an error, not an allocation or
	// a hang.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "big", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 40})
	tw.Write([]byte("just a little"))
	p := filepath.Join(t.TempDir(), "huge.tar")
	writeFile(p, buf.Bytes()[:buf.Len()])
	dest := filepath.Join(t.TempDir(), "root")
	_, err := Load(context.Background(), dest, []string{p}, Options{SkipSpaceCheck: true})
	if err == nil || !(errors.Is(err, ErrFormat) || errors.Is(err, ErrNoSpace)) {
		t.Fatalf("error %v", err)
	}
	assertEmpty(t, dest)
}

func TestExtractNoEndMarker(t *testing.T) {
	archive := tarOf(t, randomTree(8, 64<<10))
	// Cut at an entry boundary: archive/tar alone would call that a clean end.
	cut := archive[:len(archive)-1024]
	p := filepath.Join(t.TempDir(), "cut.tar")
	writeFile(p, cut)
	dest := filepath.Join(t.TempDir(), "root")
	if _, err := Load(context.Background(), dest, []string{p}, Options{}); !errors.Is(err, ErrTruncated) {
		t.Fatalf("error %v, want ErrTruncated", err)
	}
	assertEmpty(t, dest)
}

func TestCleanName(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		bad      bool
	}{
		{in: "./", want: "."},
		{in: ".", want: "."},
		{in: "./usr/bin/", want: "usr/bin"},
		{in: "usr//lib/./x", want: "usr/lib/x"},
		{in: "a..b/..c", want: "a..b/..c"},
		{in: "", bad: true},
		{in: "/etc/passwd", bad: true},
		{in: "../x", bad: true},
		{in: "a/../../x", bad: true},
		{in: "a/..", bad: true},
		{in: "a\x00b", bad: true},
	} {
		got, err := CleanName(tt.in)
		if tt.bad {
			if !errors.Is(err, ErrInsecurePath) {
				t.Errorf("CleanName(%q) = %q, %v; want ErrInsecurePath", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"./", "usr/bin/ls", "../x", "/abs", "a/../b", "a/./b//c", "..", "a/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := CleanName(name)
		if err != nil {
			if !errors.Is(err, ErrInsecurePath) {
				t.Fatalf("error %v is not ErrInsecurePath", err)
			}
			return
		}
		if got == "" || strings.HasPrefix(got, "/") || got == ".." || strings.HasPrefix(got, "../") || strings.Contains(got, "/../") || strings.HasSuffix(got, "/..") {
			t.Fatalf("CleanName(%q) = %q escapes", name, got)
		}
		if !filepath.IsLocal(got) && got != "." {
			t.Fatalf("CleanName(%q) = %q is not local", name, got)
		}
		if want := path.Clean(name); got != want {
			t.Fatalf("CleanName(%q) = %q, path.Clean says %q", name, got, want)
		}
	})
}

// FuzzExtract feeds arbitrary archives to the extractor: it may fail, but never panic, and
// never write outside its directory.
func FuzzExtract(f *testing.F) {
	f.Add(tarOf(f, everyType()[:12]))
	f.Add(tarOf(f, []entry{{hdr: tar.Header{Name: "up", Typeflag: tar.TypeSymlink, Linkname: ".."}}, {hdr: tar.Header{Name: "up/x", Typeflag: tar.TypeReg}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		dest := filepath.Join(base, "root")
		os.Mkdir(dest, 0o755)
		root, err := os.OpenRoot(dest)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		x := NewExtractor(root, false, nil)
		x.Extract(bytes.NewReader(data))
		names, _ := readNames(base)
		if len(names) != 1 {
			t.Fatalf("wrote outside the target: %v", names)
		}
	})
}

// TestEscapeByValue: os.Root's refusal to leave the tree is recognised by its error value (Go
// does not export it; escapes learns it from the Root), not by the text of its message: an
// escape through a symlink is ErrInsecurePath, and an entry that merely has that text in its
// name and fails for another reason is not (it was, and said "leads outside the target" for a
// "not a directory").
func TestEscapeByValue(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := os.Symlink("../..", filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	_, err = root.Lstat("up/x")
	if !escapes(root, err) {
		t.Fatalf("escapes(%v) = false", err)
	}
	for _, err := range []error{nil, fs.ErrNotExist, unix.ENOTDIR, errors.New("path escapes from parent")} {
		if escapes(root, err) {
			t.Errorf("escapes(%v) = true", err)
		}
	}

	const odd = "path escapes from parent"
	for _, tt := range []struct {
		name   string
		layers [][]entry
		escape bool
	}{
		{"extract through a symlink out", [][]entry{{symlinkEntry("up", "../.."), fileEntry("up/x", "x")}}, true},
		{"extract under a file", [][]entry{{fileEntry("f", "x"), fileEntry("f/"+odd+"/x", "y")}}, false},
		{"whiteout through a symlink out", [][]entry{{symlinkEntry("up", "../..")}, {fileEntry("up/.wh.x", "")}}, true},
		{"whiteout under a file", [][]entry{{fileEntry("f", "x")}, {fileEntry("f/"+odd+"/.wh.x", "")}}, false},
		{"opaque under a file", [][]entry{{fileEntry("f", "x")}, {fileEntry("f/"+odd+"/.wh..wh..opq", "")}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "root")
			os.Mkdir(dir, 0o755)
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			a := newLayerApplier(root, false, t.Logf)
			for i, es := range tt.layers {
				if err = a.Layer(bytes.NewReader(tarOf(t, es)), i > 0); err != nil {
					break
				}
			}
			if got := errors.Is(err, ErrInsecurePath); got != tt.escape {
				t.Errorf("got %v: ErrInsecurePath %v, want %v", err, got, tt.escape)
			}
			if !tt.escape && (err == nil || !strings.Contains(err.Error(), "not a directory")) {
				t.Errorf("got %v, want the failure itself (not a directory)", err)
			}
		})
	}
}

func symlinkEntry(name, target string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, ModTime: epoch}}
}
