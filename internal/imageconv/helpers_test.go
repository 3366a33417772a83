package imageconv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/loader"
)

// asRoot tells whether the tests can make owners, devices and security xattrs. CI runs as
// root, so there a missing root is a broken CI, not a reason to test less.
func asRoot(t testing.TB) bool {
	t.Helper()
	if os.Geteuid() == 0 {
		return true
	}
	if os.Getenv("CI") != "" {
		t.Fatal("CI must run the tests as root")
	}
	t.Log("not root: owners, devices and security.capability are not tested")
	return false
}

func needTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (.ci/run must install it)", name)
		}
		t.Skipf("%s not installed", name)
	}
}

// capNetRaw is a security.capability value: cap_net_raw+ep.
const capNetRaw = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

var base = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)

// fsEntry is one path of a test tree, made by makeTree.
type fsEntry struct {
	name   string
	kind   byte // tar type flag
	mode   uint32
	uid    int
	gid    int
	data   string
	link   string // symlink target, or hard link's first path
	rdev   [2]uint32
	xattrs map[string]string
	root   bool // needs root (owner, device, security xattr)
}

// rootTree is a root-like tree with every entry type and kind of metadata.
func rootTree() []fsEntry {
	long := "usr/share/" + strings.Repeat("d", 90) + "/" + strings.Repeat("f", 110)
	return []fsEntry{
		{name: ".", kind: tar.TypeDir, mode: 0o755},
		{name: "bin", kind: tar.TypeSymlink, link: "usr/bin"},
		{name: "usr", kind: tar.TypeDir, mode: 0o755},
		{name: "usr/bin", kind: tar.TypeDir, mode: 0o755},
		{name: "usr/bin/ping", kind: tar.TypeReg, mode: 0o755, data: "ping binary", xattrs: map[string]string{"security.capability": capNetRaw}, root: true},
		{name: "usr/bin/su", kind: tar.TypeReg, mode: 0o4755, data: "su"},
		{name: "usr/bin/wall", kind: tar.TypeReg, mode: 0o2755, gid: 5, data: "wall", root: true},
		{name: "usr/bin/zping", kind: tar.TypeLink, link: "usr/bin/su"},
		{name: "usr/bin/a ping", kind: tar.TypeLink, link: "usr/bin/su"},
		{name: "usr/share", kind: tar.TypeDir, mode: 0o755},
		{name: "usr/share/" + strings.Repeat("d", 90), kind: tar.TypeDir, mode: 0o755},
		{name: long, kind: tar.TypeReg, mode: 0o644, data: "long name"},
		{name: "usr/share/big", kind: tar.TypeReg, mode: 0o644, data: strings.Repeat("all work and no play\n", 50000)},
		{name: "usr/share/empty", kind: tar.TypeReg, mode: 0o644},
		{name: "etc", kind: tar.TypeDir, mode: 0o755},
		{name: "etc/passwd", kind: tar.TypeReg, mode: 0o644, data: "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/sh\n"},
		{name: "etc/shadow", kind: tar.TypeReg, mode: 0o640, gid: 42, data: "root:*:19000:0:99999:7:::\nuser:!:19000:0:99999:7:::\n", root: true},
		{name: "etc/dangling", kind: tar.TypeSymlink, link: "/nowhere/at/all"},
		{name: "tmp", kind: tar.TypeDir, mode: 0o1777},
		{name: "home", kind: tar.TypeDir, mode: 0o755},
		{name: "home/user", kind: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000, xattrs: map[string]string{"user.dir": "d"}, root: true},
		{name: "home/user/notes", kind: tar.TypeReg, mode: 0o600, uid: 1000, gid: 1000, data: "notes\n", xattrs: map[string]string{"user.comment": "hello"}, root: true},
		{name: "readonly", kind: tar.TypeDir, mode: 0o555},
		{name: "readonly/file", kind: tar.TypeReg, mode: 0o444, data: "ro"},
		{name: "dev", kind: tar.TypeDir, mode: 0o755},
		{name: "dev/null", kind: tar.TypeChar, mode: 0o666, rdev: [2]uint32{1, 3}, root: true},
		{name: "dev/sda", kind: tar.TypeBlock, mode: 0o660, gid: 6, rdev: [2]uint32{8, 0}, root: true},
		{name: "dev/initctl", kind: tar.TypeFifo, mode: 0o600},
		{name: "lib", kind: tar.TypeDir, mode: 0o755},
		{name: "lib/modules", kind: tar.TypeDir, mode: 0o755},
		{name: "lib/modules/6.1.0", kind: tar.TypeDir, mode: 0o755},
		{name: "lib/modules/6.1.0/e1000.ko", kind: tar.TypeReg, mode: 0o644, data: "module"},
		{name: "root", kind: tar.TypeDir, mode: 0o700},
	}
}

// makeTree creates es under dir (which exists), then sets owners, xattrs, modes (in that order:
// chown clears setuid bits and capabilities) and a distinct nanosecond mtime on every path,
// deepest first. Entries needing root are left out when not root.
func makeTree(t testing.TB, dir string, es []fsEntry, root bool) {
	t.Helper()
	var made []fsEntry
	for _, e := range es {
		if e.root && !root {
			continue
		}
		p := filepath.Join(dir, e.name)
		var err error
		switch e.kind {
		case tar.TypeDir:
			if e.name != "." {
				err = os.Mkdir(p, 0o755)
			}
		case tar.TypeReg:
			err = os.WriteFile(p, []byte(e.data), 0o644)
		case tar.TypeSymlink:
			err = os.Symlink(e.link, p)
		case tar.TypeLink:
			err = os.Link(filepath.Join(dir, e.link), p)
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			mode := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[e.kind]
			err = unix.Mknod(p, mode|e.mode, int(unix.Mkdev(e.rdev[0], e.rdev[1])))
		}
		if err != nil {
			t.Fatalf("making %s: %v", e.name, err)
		}
		if e.kind != tar.TypeLink {
			made = append(made, e)
		}
	}
	for i := len(made) - 1; i >= 0; i-- {
		e := made[i]
		p := filepath.Join(dir, e.name)
		if root {
			if err := os.Lchown(p, e.uid, e.gid); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range e.xattrs {
			if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
				t.Fatalf("xattr %s on %s: %v", k, e.name, err)
			}
		}
		if e.kind != tar.TypeSymlink {
			if err := os.Chmod(p, fs.FileMode(e.mode&0o777)|modeBits(e.mode)); err != nil {
				t.Fatal(err)
			}
		}
		ts := base.Add(time.Duration(i) * 1234567891)
		tv := []unix.Timespec{unix.NsecToTimespec(ts.UnixNano()), unix.NsecToTimespec(ts.UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, tv, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

func modeBits(m uint32) fs.FileMode {
	var f fs.FileMode
	if m&0o4000 != 0 {
		f |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		f |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		f |= fs.ModeSticky
	}
	return f
}

// snapNode is what the comparison sees of one path.
type snapNode struct {
	Mode   string
	UID    uint32
	GID    uint32
	Size   int64
	Mtime  string
	Rdev   uint64
	Link   string
	Data   string
	Xattrs map[string]string
	Group  string // first path with the same inode: hard-link identity
}

func snapshot(t testing.TB, dir string) map[string]snapNode {
	t.Helper()
	out := map[string]snapNode{}
	inodes := map[uint64]string{}
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		names = append(names, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, p := range names {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		n := snapNode{
			Mode: fmt.Sprintf("%o", st.Mode), UID: st.Uid, GID: st.Gid,
			Mtime: time.Unix(st.Mtim.Unix()).UTC().Format(time.RFC3339Nano), Rdev: st.Rdev,
		}
		x, err := xattrs(p)
		if err != nil {
			t.Fatal(err)
		}
		if len(x) > 0 {
			n.Xattrs = x
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
		}
		out[rel] = n
	}
	return out
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSHA(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha(b)
}

// convert runs Convert with a spool in the test's temporary directory.
func convert(t testing.TB, src string, out string, opts Options) *Result {
	t.Helper()
	s, err := ParseSource(src)
	if err != nil {
		t.Fatal(err)
	}
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	opts.Logf = t.Logf
	res, err := Convert(context.Background(), s, out, opts)
	if err != nil {
		t.Fatalf("converting %s: %v", src, err)
	}
	return res
}

// extract loads an image with ramboot's loader, as /init would, into a new directory.
func extract(t testing.TB, img string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "root")
	if _, err := loader.Load(context.Background(), dir, []string{img}, loader.Options{Logf: t.Logf}); err != nil {
		t.Fatalf("loading %s: %v", img, err)
	}
	return dir
}

func sameTree(t testing.TB, want, got string) {
	t.Helper()
	if diff := cmp.Diff(snapshot(t, want), snapshot(t, got)); diff != "" {
		t.Errorf("extracted tree differs from the source (-source +extracted):\n%s", diff)
	}
}

// gnuTar archives dir with GNU tar as a root file system is usually archived.
func gnuTar(t testing.TB, dir string, args ...string) []byte {
	t.Helper()
	needTool(t, "tar")
	cmd := exec.Command("tar", append([]string{"--numeric-owner", "--xattrs", "--xattrs-include=*", "--format=posix", "-C", dir, "-cf", "-"}, append(args, ".")...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("tar: %v: %s", err, errb.String())
	}
	return out.Bytes()
}

// tarEntries reads an archive's entries with their data.
func tarEntries(t testing.TB, b []byte) []tarEntry {
	t.Helper()
	var es []tarEntry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return es
		}
		if err != nil {
			t.Fatal(err)
		}
		d, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, tarEntry{h, d})
	}
}

type tarEntry struct {
	hdr  *tar.Header
	data []byte
}

func tarOf(t testing.TB, es []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		h := *e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
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
