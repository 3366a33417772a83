package loader

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// gnuExtract extracts archive p with GNU tar as root into a new directory.
func gnuExtract(t *testing.T, p string) string {
	t.Helper()
	tarBin := needTool(t, "tar")
	dir := filepath.Join(t.TempDir(), "gnu")
	os.Mkdir(dir, 0o755)
	cmd := exec.Command(tarBin, "--numeric-owner", "--same-owner", "--xattrs", "--xattrs-include=*", "-xpf", p, "-C", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GNU tar: %v: %s", err, out)
	}
	return dir
}

// compareWithGNU extracts archive with ramboot and with GNU tar and compares the trees.
//
// Directories in nowhere are compared without their mtimes: GNU tar sets a directory's
// metadata as soon as it extracts an entry outside it, so one filled later through a symlink
// keeps the time of that write; ramboot sets every directory's at the end.
func compareWithGNU(t *testing.T, archive []byte, nowhere ...string) map[string]node {
	t.Helper()
	needRoot(t)
	base := t.TempDir()
	p := filepath.Join(base, "a.tar")
	writeFile(p, archive)
	ours := filepath.Join(base, "ours")
	if _, err := Load(context.Background(), ours, []string{p}, Options{}); err != nil {
		t.Fatal(err)
	}
	theirs := gnuExtract(t, p)
	got, want := snapshot(t, ours), snapshot(t, theirs)
	// The target's own times are those of the two directories made for the test.
	for _, m := range []map[string]node{got, want} {
		delete(m, ".")
		for _, d := range nowhere {
			n := m[d]
			n.Mtime = 0
			m[d] = n
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree differs from GNU tar's (-gnu +ramboot):\n%s", diff)
	}
	return got
}

func dirE(name string, h int) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch.Add(time.Duration(h) * time.Hour)}}
}

func regE(name, data string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch}, data: []byte(data)}
}

func symE(name, to string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to, ModTime: epoch}}
}

// TestExtractParentReplaced: a symlink used as a parent and then retargeted, or replaced by a
// directory, leads later entries to its new target, as with GNU tar (a cached descriptor of the
// old target sent them there).
func TestExtractParentReplaced(t *testing.T) {
	for _, tt := range []struct {
		name string
		es   []entry
		want string   // where the last file must land
		via  []string // directories written through a symlink
	}{
		{"retargeted", []entry{dirE("a/", 1), dirE("b/", 2), symE("l", "a"), regE("l/x", "x"), symE("l", "b"), regE("l/y", "y")}, "b/y", []string{"a", "b"}},
		{"replaced by a directory", []entry{dirE("a/", 1), symE("l", "a"), regE("l/x", "x"), dirE("l/", 3), regE("l/y", "y")}, "l/y", []string{"a"}},
		{"chain retargeted", []entry{dirE("a/", 1), dirE("b/", 2), symE("l", "a"), symE("m", "l"), regE("m/x", "x"), symE("l", "b"), regE("m/y", "y")}, "b/y", []string{"a", "b"}},
		{"dir replaced by symlink", []entry{dirE("a/", 1), dirE("d/", 2), regE("d/x", "x"), dirE("e/", 3), symE("e", "a"), regE("e/y", "y")}, "a/y", []string{"a"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := compareWithGNU(t, tarOf(t, tt.es), tt.via...)
			if _, ok := got[tt.want]; !ok {
				t.Errorf("%s missing; tree: %v", tt.want, keys(got))
			}
		})
	}
}

// TestExtractDirReplacedBySymlink: var/run/ and then var/run -> /run, as real images have: the
// symlink replaces the (empty) directory, nothing is written through it.
func TestExtractDirReplacedBySymlink(t *testing.T) {
	es := []entry{
		dirE("./", 1), dirE("var/", 2), dirE("var/run/", 3), dirE("var/lock/", 4),
		symE("var/run", "/run"), symE("var/lock", "/run/lock"), regE("var/after", "x"),
	}
	got := compareWithGNU(t, tarOf(t, es))
	if got["var/run"].Link != "/run" {
		t.Errorf("var/run: %+v, want a symlink to /run", got["var/run"])
	}
}

func keys(m map[string]node) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestExtractEndOfArchive: what ends an archive. GNU tar 1.34 accepts an archive of just the
// two zero blocks; a lone zero block ends the archive whatever follows it (it warns "A lone
// zero block at N", exits 0 and ignores even a valid header after it): ramboot does the same,
// logs it, and still hashes what follows. No zero block at all is a truncated archive.
func TestExtractEndOfArchive(t *testing.T) {
	one := tarOf(t, []entry{regE("a", "first")})
	body := one[:len(one)-1024] // the entry without its end marker
	two := tarOf(t, []entry{regE("b", "second")})
	zero := make([]byte, blockSize)
	garbage := bytes.Repeat([]byte("garbage!"), 256)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	for _, tt := range []struct {
		name    string
		archive []byte
		want    []string // extracted names
		lone    bool     // a lone zero block is reported
		err     error
	}{
		{"empty", make([]byte, 1024), nil, false, nil},
		{"empty record", make([]byte, 10240), nil, false, nil},
		{"lone zero block at the start, garbage", cat(zero, garbage), nil, true, nil},
		{"lone zero block, garbage", cat(body, zero, garbage), []string{"a"}, true, nil},
		{"lone zero block, valid entry ignored", cat(body, zero, two), []string{"a"}, true, nil},
		{"lone zero block at the end", cat(body, zero), []string{"a"}, true, nil},
		{"two zero blocks, garbage", cat(body, zero, zero, garbage), []string{"a"}, false, nil},
		{"no marker", body, nil, false, ErrTruncated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			p := filepath.Join(base, "a.tar")
			writeFile(p, tt.archive)
			dest := filepath.Join(base, "root")
			var mu sync.Mutex
			var logs []string
			logf := func(f string, a ...any) {
				mu.Lock()
				logs = append(logs, fmt.Sprintf(f, a...))
				mu.Unlock()
			}
			_, err := Load(context.Background(), dest, []string{p}, Options{Logf: logf})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				assertEmpty(t, dest)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			names, _ := readNames(dest)
			if !cmp.Equal(names, tt.want, cmp.Comparer(func(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") })) {
				t.Errorf("extracted %v, want %v", names, tt.want)
			}
			if lone := strings.Contains(strings.Join(logs, "\n"), "lone zero block"); lone != tt.lone {
				t.Errorf("lone zero block reported: %v, want %v (log %q)", lone, tt.lone, logs)
			}
			if os.Geteuid() == 0 && needToolOK("tar") {
				// GNU tar extracts the same names.
				gnu := gnuExtract(t, p)
				gnames, _ := readNames(gnu)
				if strings.Join(gnames, ",") != strings.Join(names, ",") {
					t.Errorf("GNU tar extracted %v, ramboot %v", gnames, names)
				}
			}
		})
	}
	// Compressed, as images are served.
	t.Run("empty gzip", func(t *testing.T) {
		base := t.TempDir()
		p := filepath.Join(base, "a.tar.gz")
		writeFile(p, gzipOf(t, make([]byte, 10240)))
		dest := filepath.Join(base, "root")
		if _, err := Load(context.Background(), dest, []string{p}, Options{}); err != nil {
			t.Fatal(err)
		}
		assertEmpty(t, dest)
	})
}

func needToolOK(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// TestExtractSparse: GNU tar --sparse members (old GNU, PAX 0.0, 0.1 and 1.0) are extracted with
// their holes: a 1 TiB lastlog takes a few blocks, not the whole tmpfs, and no time. The content
// is the original's: the same data extents, zeros elsewhere.
func TestExtractSparse(t *testing.T) {
	tarBin := needTool(t, "tar")
	src := t.TempDir()
	// A 1 TiB file with a few bytes, and a small one with many fragments (extension blocks of
	// the old GNU map, a multi-block 1.0 map).
	huge := filepath.Join(src, "lastlog")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []struct {
		off  int64
		data string
	}{{0, "head"}, {1 << 30, "one GiB"}, {1<<40 - 5, "tail"}} {
		if _, err := f.WriteAt([]byte(w.data), w.off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	many := filepath.Join(src, "many")
	f, _ = os.Create(many)
	for i := range 200 {
		f.WriteAt(bytes.Repeat([]byte{byte(i + 1)}, 1000+i), int64(i)*64<<10+int64(i))
	}
	f.Truncate(200<<16 + 12345)
	f.Close()
	for _, format := range []struct{ name, flags string }{
		{"gnu", "--format=gnu"},
		{"pax 0.0", "--format=pax --sparse-version=0.0"},
		{"pax 0.1", "--format=pax --sparse-version=0.1"},
		{"pax 1.0", "--format=pax --sparse-version=1.0"},
	} {
		t.Run(format.name, func(t *testing.T) {
			base := t.TempDir()
			p := filepath.Join(base, "sparse.tar")
			args := append([]string{"--sparse", "-cf", p, "-C", src}, strings.Fields(format.flags)...)
			if out, err := exec.Command(tarBin, append(args, "lastlog", "many")...).CombinedOutput(); err != nil {
				t.Fatalf("tar: %v: %s", err, out)
			}
			if fi, _ := os.Stat(p); fi.Size() > 1<<20 {
				t.Fatalf("archive is %d bytes: not sparse", fi.Size())
			}
			dest := filepath.Join(base, "root")
			var logs []string
			var mu sync.Mutex
			start := time.Now()
			_, err := Load(context.Background(), dest, []string{p}, Options{Logf: func(f string, a ...any) {
				mu.Lock()
				logs = append(logs, fmt.Sprintf(f, a...))
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("took %v: holes were read", d)
			}
			for _, name := range []string{"lastlog", "many"} {
				got := filepath.Join(dest, name)
				var st unix.Stat_t
				if err := unix.Stat(got, &st); err != nil {
					t.Fatal(err)
				}
				if st.Blocks*512 > 4<<20 {
					t.Errorf("%s: %d blocks allocated: written dense", name, st.Blocks)
				}
				sameContent(t, filepath.Join(src, name), got)
			}
			if strings.Contains(strings.Join(logs, "\n"), "sparse map") {
				t.Errorf("sparse map not used: %q", logs)
			}
		})
	}
}

// sameContent compares two sparse files by their data extents: each one's data must equal the
// other's bytes there, and their sizes must match (holes read as zeros in both).
func sameContent(t *testing.T, a, b string) {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	ia, _ := fa.Stat()
	ib, _ := fb.Stat()
	if ia.Size() != ib.Size() {
		t.Fatalf("%s: size %d, want %d", b, ib.Size(), ia.Size())
	}
	check := func(x, y *os.File) {
		for off := int64(0); off < ia.Size(); {
			data, err := unix.Seek(int(x.Fd()), off, unix.SEEK_DATA)
			if errors.Is(err, unix.ENXIO) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			hole, err := unix.Seek(int(x.Fd()), data, unix.SEEK_HOLE)
			if err != nil {
				t.Fatal(err)
			}
			for p := data; p < hole; p += 1 << 20 {
				n := min(hole-p, 1<<20)
				bx, by := make([]byte, n), make([]byte, n)
				x.ReadAt(bx, p)
				y.ReadAt(by, p)
				if !bytes.Equal(bx, by) {
					t.Fatalf("%s and %s differ in [%d, %d)", x.Name(), y.Name(), p, p+n)
				}
			}
			off = hole
		}
	}
	check(fa, fb)
	check(fb, fa)
}

// posixACL encodes a POSIX ACL as the kernel's system.posix_acl_* xattr value.
func posixACL(entries ...[3]uint32) string {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range entries {
		b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
		b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
		b = binary.LittleEndian.AppendUint32(b, e[2])
	}
	return string(b)
}

// defaultACL lets user 1234 read everything made below the directory.
var defaultACL = posixACL(
	[3]uint32{0x01, 7, 0xFFFFFFFF}, // user::rwx
	[3]uint32{0x02, 4, 1234},       // user:1234:r
	[3]uint32{0x04, 5, 0xFFFFFFFF}, // group::r-x
	[3]uint32{0x10, 7, 0xFFFFFFFF}, // mask::rwx
	[3]uint32{0x20, 4, 0xFFFFFFFF}, // other::r
)

// rootEntry is a "./" entry that changes everything about the target.
func rootEntry() entry {
	return entry{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o2777, Uid: 1234, Gid: 1234, ModTime: epoch, Format: tar.FormatPAX,
		PAXRecords: map[string]string{
			"SCHILY.xattr.system.posix_acl_default": defaultACL,
			"SCHILY.xattr.user.evil":                "1",
		}}}
}

// needACLs skips when the test directory's file system has no POSIX ACLs.
func needACLs(t *testing.T) {
	t.Helper()
	needRoot(t)
	d := t.TempDir()
	if err := unix.Setxattr(d, "system.posix_acl_default", []byte(defaultACL), 0); err != nil {
		t.Skipf("no POSIX ACLs here: %v", err)
	}
}

// rootState is what a test sees of the target itself.
func rootState(t *testing.T, dir string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("mode %o owner %d:%d mtime %d xattrs %q", st.Mode, st.Uid, st.Gid, st.Mtim.Nano(), listXattrs(t, dir))
}

// TestLoadRootMetadataOnFailure: the archive's "./" entry (owner, mode, xattrs, a default ACL)
// is applied only to a verified image; a failed load leaves the target as it was before the
// first byte (it used to keep the ACL, and the next fetch's files inherited it).
func TestLoadRootMetadataOnFailure(t *testing.T) {
	needACLs(t)
	archive := tarOf(t, []entry{rootEntry(), regE("etc/shadow", "secret"), dirE("etc/", 1)})
	for _, tt := range []struct {
		name string
		sum  string
		want error
	}{
		{"checksum mismatch", strings.Repeat("0", 64), ErrChecksum},
		{"no end marker", "", ErrTruncated},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			dest := filepath.Join(base, "root")
			os.Mkdir(dest, 0o750)
			unix.Setxattr(dest, "user.keep", []byte("yes"), 0)
			os.Chtimes(dest, epoch, epoch)
			before := rootState(t, dest)
			a := archive
			if tt.want == ErrTruncated {
				a = a[:len(a)-1024]
			}
			p := filepath.Join(base, "a.tar")
			writeFile(p, a)
			_, err := Load(context.Background(), dest, []string{p}, Options{SHA256: tt.sum})
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			assertEmpty(t, dest)
			if after := rootState(t, dest); after != before {
				t.Errorf("target changed by a failed load:\n got %s\nwant %s", after, before)
			}
		})
	}
	t.Run("verified", func(t *testing.T) {
		base := t.TempDir()
		dest := filepath.Join(base, "root")
		p := filepath.Join(base, "a.tar")
		writeFile(p, archive)
		if _, err := Load(context.Background(), dest, []string{p}, Options{SHA256: sha(archive)}); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		unix.Lstat(dest, &st)
		xa := listXattrs(t, dest)
		if st.Mode&07777 != 0o2777 || st.Uid != 1234 || xa["system.posix_acl_default"] != defaultACL || xa["user.evil"] != "1" {
			t.Errorf("./ not applied to the target: %s", rootState(t, dest))
		}
		// Applied last: nothing extracted inherited the default ACL.
		if xa := listXattrs(t, filepath.Join(dest, "etc/shadow")); len(xa) != 0 {
			t.Errorf("etc/shadow has xattrs %q", xa)
		}
	})
}

// TestLoadRestartDropsRootACL: the object changes on the server after the first attempt read
// a whole archive whose "./" has a default ACL; the restart extracts the good image into a
// target without it, and the verified tree has no ACL anywhere.
func TestLoadRestartDropsRootACL(t *testing.T) {
	needACLs(t)
	bad := append(tarOf(t, []entry{rootEntry(), regE("x", "x")}), make([]byte, 8192)...)
	good := append(tarOf(t, []entry{dirE("./", 1), dirE("etc/", 2), regE("etc/shadow", "secret")}), make([]byte, 8192)...)
	srv := &faultServer{content: bad, next: good, cuts: []int64{int64(len(bad)) - 512}}
	ts := serve(t, map[string]http.Handler{"/image.tar": srv})
	dest := filepath.Join(t.TempDir(), "root")
	var logs []string
	var mu sync.Mutex
	res, err := Load(context.Background(), dest, []string{ts.URL + "/image.tar"}, Options{
		SHA256: sha(good), Fetcher: testFetcher(),
		Logf: func(f string, a ...any) { mu.Lock(); logs = append(logs, fmt.Sprintf(f, a...)); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified {
		t.Fatal("not verified")
	}
	if !strings.Contains(strings.Join(logs, "\n"), "starting over") {
		t.Fatalf("no restart: %q", logs)
	}
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		for name := range listXattrs(t, p) {
			if strings.HasPrefix(name, "system.posix_acl") || name == "user.evil" {
				t.Errorf("%s has %s from the changed image", p, name)
			}
		}
		return nil
	})
	var st unix.Stat_t
	unix.Lstat(dest, &st)
	if st.Mode&07777 != 0o755 || st.Uid != 0 {
		t.Errorf("target: %s", rootState(t, dest))
	}
}
