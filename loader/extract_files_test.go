package loader

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// withWriters runs the test with n writer goroutines and hook in them, whatever the machine's
// CPU count (one CPU would write in the extractor's goroutine).
func withWriters(t *testing.T, n int, hook func(*tar.Header)) {
	t.Helper()
	oldN, oldHook := extractWriters, writerHook
	extractWriters = func() int { return n }
	writerHook = hook
	t.Cleanup(func() { extractWriters, writerHook = oldN, oldHook })
}

// noWriterLeft fails when a writer goroutine outlived the extraction. A writer still handling
// a file fails at once. One that has only its deferred wg.Done behind it is allowed a moment to
// exit: the extraction has already seen its Done, and the goroutine ends on its own.
func noWriterLeft(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for start := time.Now(); ; {
		s := string(buf[:runtime.Stack(buf, true)])
		if strings.Contains(s, "(*writers).do") {
			t.Fatalf("a writer goroutine is still handling a file:\n%s", s)
		}
		if !strings.Contains(s, "(*writers).run") {
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("a writer goroutine is still running:\n%s", s)
		}
		time.Sleep(time.Millisecond)
	}
}

// released is a reader that closes release once n bytes were read: the extractor has then
// parsed every header before that point.
type released struct {
	r       io.Reader
	n       int64
	release chan struct{}
	once    sync.Once
}

func (r *released) Read(p []byte) (int, error) {
	k, err := r.r.Read(p)
	if r.n -= int64(k); r.n <= 0 || err != nil {
		r.once.Do(func() { close(r.release) })
	}
	return k, err
}

func random(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestWritersOrdering holds back the writer of a large setuid file with a capability, owned
// by another user, until the extractor has read the whole archive: meanwhile a hard link to it
// was made, a file in a read-only directory was written, and that directory's metadata is
// still to come. The tree must be GNU tar's all the same: the link shares the finished inode,
// setuid and capability survive the chown, directories get their metadata after every file.
func TestWritersOrdering(t *testing.T) {
	needRoot(t)
	capV := "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	big := random(1, 5*writerChunkSize+17) // streamed in chunks
	es := []entry{
		{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}},
		{hdr: tar.Header{Name: "ro/", Typeflag: tar.TypeDir, Mode: 0o555, Uid: 1000, Gid: 1000, ModTime: epoch.Add(time.Hour)}},
		{hdr: tar.Header{Name: "ro/big", Typeflag: tar.TypeReg, Mode: 0o6755, Uid: 1000, Gid: 1000, ModTime: epoch.Add(2 * time.Hour),
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": capV}}, data: big},
		{hdr: tar.Header{Name: "ro/hard", Typeflag: tar.TypeLink, Linkname: "ro/big"}},
		{hdr: tar.Header{Name: "ro/small", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 7, Gid: 8, ModTime: epoch.Add(3 * time.Hour)}, data: []byte("small")},
		{hdr: tar.Header{Name: "ro/sub/", Typeflag: tar.TypeDir, Mode: 0o2750, ModTime: epoch.Add(4 * time.Hour)}},
		{hdr: tar.Header{Name: "ro/sub/f", Typeflag: tar.TypeReg, Mode: 0o4711, ModTime: epoch.Add(5 * time.Hour)}, data: random(2, 3000)},
		{hdr: tar.Header{Name: "plain", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch.Add(6 * time.Hour)}, data: random(3, 2*writerChunkSize)},
		{hdr: tar.Header{Name: "empty", Typeflag: tar.TypeReg, Mode: 0o600, ModTime: epoch.Add(7 * time.Hour)}},
	}
	archive := tarOf(t, es)
	base := t.TempDir()
	ours := filepath.Join(base, "ours")
	os.Mkdir(ours, 0o755)
	p := filepath.Join(base, "a.tar")
	writeFile(p, archive)

	release := make(chan struct{})
	var linkSeen, waited bool
	withWriters(t, 2, func(h *tar.Header) {
		if h.Name != "ro/big" {
			return
		}
		select {
		case <-release:
			waited = true
		case <-time.After(20 * time.Second):
		}
		// The hard link was made while this file had no data yet.
		_, err := os.Lstat(filepath.Join(ours, "ro/hard"))
		linkSeen = err == nil
		time.Sleep(100 * time.Millisecond) // late: the extractor must wait for it
	})
	root, err := os.OpenRoot(ours)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	x := NewExtractor(root, true, t.Logf)
	if err := x.Extract(&released{r: bytes.NewReader(archive), n: int64(len(archive)), release: release}); err != nil {
		t.Fatal(err)
	}
	if err := x.FinishRoot(); err != nil {
		t.Fatal(err)
	}
	noWriterLeft(t)
	if !waited || !linkSeen {
		t.Fatalf("the writer of ro/big did not wait for the whole archive (waited %v, link made meanwhile %v)", waited, linkSeen)
	}
	got, want := snapshot(t, ours), snapshot(t, gnuExtract(t, p))
	delete(got, ".")
	delete(want, ".")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree differs from GNU tar's (-gnu +ramboot):\n%s", diff)
	}
	if n := got["ro/big"]; n.Mode != "106755" || n.UID != 1000 || n.Xattrs["security.capability"] == "" || got["ro/hard"].Group != "ro/big" || n.Data != sha(big) {
		t.Errorf("ro/big: %+v", n)
	}
	if got["ro"].Mode != "40555" || got["ro"].Mtime != epoch.Add(time.Hour).Truncate(time.Second).UnixNano() {
		t.Errorf("ro: %+v", got["ro"])
	}
}

// TestWritersSlowMatchGNUTar: writers that lag behind the extractor (each sleeps before every
// file) give GNU tar's tree for every entry type and the replacements in everyType.
func TestWritersSlowMatchGNUTar(t *testing.T) {
	es := everyType()
	for _, e := range randomTree(7, 2<<20)[1:] {
		e.hdr.Name = "r/" + e.hdr.Name
		if e.hdr.Typeflag == tar.TypeLink {
			e.hdr.Linkname = "r/" + e.hdr.Linkname
		}
		es = append(es, e)
	}
	withWriters(t, 3, func(*tar.Header) { time.Sleep(2 * time.Millisecond) })
	// r is made when needed; GNU tar sets the others' times when it leaves them and changes them
	// when it comes back (randomTree's files alternate between usr/bin and etc).
	compareWithGNU(t, tarOf(t, es), "r", "r/etc", "r/usr", "r/usr/bin")
	noWriterLeft(t)
}

// TestWriterErrorNamesFile: a writer that runs out of space ends the load with ErrNoSpace
// naming its file, and nothing is left in the target.
func TestWriterErrorNamesFile(t *testing.T) {
	dir := smallTmpfs(t) // 1 MiB
	withWriters(t, 2, nil)
	es := []entry{
		{hdr: tar.Header{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch}, data: []byte("a")},
		{hdr: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}},
		{hdr: tar.Header{Name: "d/too-big", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch}, data: random(4, 3<<20)},
	}
	p := filepath.Join(t.TempDir(), "a.tar")
	writeFile(p, tarOf(t, es))
	_, err := Load(context.Background(), dir, []string{p}, Options{SkipSpaceCheck: true})
	if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "d/too-big") {
		t.Fatalf("error %v, want ErrNoSpace naming d/too-big", err)
	}
	noWriterLeft(t)
	assertEmpty(t, dir)
}

// TestWriterPanic: a panic in a writer is the load's error (ErrPanic naming nothing else), not
// a crash, and the target is emptied.
func TestWriterPanic(t *testing.T) {
	withWriters(t, 2, func(h *tar.Header) {
		if h.Name == "usr/bin/f0003" {
			panic("writer test panic")
		}
	})
	es := []entry{
		{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}},
		{hdr: tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}},
		{hdr: tar.Header{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}},
	}
	for i, n := range []int{10, 300000, 20, 40, 500000, 1} {
		es = append(es, entry{hdr: tar.Header{Name: fmt.Sprintf("usr/bin/f%04d", i), Typeflag: tar.TypeReg, Mode: 0o755, ModTime: epoch},
			data: random(uint64(i), n)})
	}
	dir := t.TempDir()
	p := filepath.Join(t.TempDir(), "a.tar")
	writeFile(p, tarOf(t, es))
	_, err := Load(context.Background(), dir, []string{p}, Options{})
	if !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), "writer test panic") {
		t.Fatalf("error %v, want ErrPanic", err)
	}
	noWriterLeft(t)
	assertEmpty(t, dir)
}

// TestWritersCancel: cancelling while writers hold files (one of them is being written, others
// wait for a writer) ends the load with context.Canceled once every writer has stopped, and
// leaves nothing behind.
func TestWritersCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	withWriters(t, 2, func(h *tar.Header) {
		if h.Name == "f0100" {
			once.Do(cancel)
			time.Sleep(50 * time.Millisecond) // the extractor reads on meanwhile, and stops
		}
	})
	var es []entry
	for i := range 1000 {
		n := i * 997 % 20000
		if i%50 == 0 {
			n = 3 * writerChunkSize
		}
		es = append(es, entry{hdr: tar.Header{Name: fmt.Sprintf("f%04d", i), Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch},
			data: bytes.Repeat([]byte{byte(i)}, n)})
	}
	p := filepath.Join(t.TempDir(), "a.tar.zst")
	writeFile(p, zstdOf(t, tarOf(t, es)))
	dir := t.TempDir()
	start := time.Now()
	_, err := Load(ctx, dir, []string{p}, Options{})
	t.Logf("Load: %v after %v", err, time.Since(start))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	noWriterLeft(t)
	assertEmpty(t, dir)
}

// TestCreateMode: a file is created with its final mode only when nothing later would change
// it, which saves the chmod.
func TestCreateMode(t *testing.T) {
	x := &Extractor{umask: 0o022, owners: true}
	x.newOwner.ok = true
	xattr := map[string]string{"SCHILY.xattr.user.a": "b"}
	for _, tt := range []struct {
		hdr  tar.Header
		acl  bool
		mode uint32
		set  bool
	}{
		{tar.Header{Mode: 0o755}, false, 0o755, true},
		{tar.Header{Mode: 0o644}, false, 0o644, true},
		{tar.Header{Mode: 0o000}, false, 0o000, true},
		{tar.Header{Mode: 0o644}, true, 0o600, false},                     // a default ACL decides
		{tar.Header{Mode: 0o664}, false, 0o600, false},                    // the umask would clear g+w
		{tar.Header{Mode: 0o4755}, false, 0o600, false},                   // setuid after chown
		{tar.Header{Mode: 0o1644}, false, 0o600, false},                   // sticky
		{tar.Header{Mode: 0o644, Uid: 5}, false, 0o600, false},            // chowned later
		{tar.Header{Mode: 0o644, PAXRecords: xattr}, false, 0o600, false}, // an ACL may follow
	} {
		mode, set := x.createMode(&tt.hdr, tt.acl)
		if mode != tt.mode || set != tt.set {
			t.Errorf("%+v acl %v: %o %v, want %o %v", tt.hdr, tt.acl, mode, set, tt.mode, tt.set)
		}
	}
	x.umask = -1
	if _, set := x.createMode(&tar.Header{Mode: 0o644}, false); set {
		t.Error("umask unknown: mode taken as final")
	}
	if m := processUmask(); m < 0 {
		t.Errorf("umask not read from /proc/self/status: %d", m)
	}
}

// panicky panics once n bytes were read.
type panicky struct {
	r io.Reader
	n int
}

func (p *panicky) Read(b []byte) (int, error) {
	if p.n <= 0 {
		panic("reader test panic")
	}
	k, err := p.r.Read(b[:min(len(b), p.n)])
	p.n -= k
	return k, err
}

// TestExtractPanicStopsWriters: a panic in the extractor's goroutine (here, in the stream it
// reads) reaches the caller only once the writers have stopped: none goes on writing into a
// directory the caller then empties.
func TestExtractPanicStopsWriters(t *testing.T) {
	var mu sync.Mutex
	var wrote []string
	withWriters(t, 2, func(h *tar.Header) {
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		wrote = append(wrote, h.Name)
		mu.Unlock()
	})
	var es []entry
	for i := range 40 {
		es = append(es, entry{hdr: tar.Header{Name: fmt.Sprintf("f%02d", i), Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch},
			data: []byte("data")})
	}
	archive := tarOf(t, es)
	root, err := os.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	x := NewExtractor(root, false, t.Logf)
	_, err = protect(func() (int, error) { return 0, x.Extract(&panicky{r: bytes.NewReader(archive), n: len(archive) / 2}) })
	if !errors.Is(err, ErrPanic) {
		t.Fatalf("error %v, want ErrPanic", err)
	}
	noWriterLeft(t)
	mu.Lock()
	n := len(wrote)
	mu.Unlock()
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(wrote) != n || n == 0 {
		t.Fatalf("writers handled %d files before Extract returned, %d after", n, len(wrote))
	}
}

// TestCreateModeDefaultACL: in a target whose default ACL would give new files other modes
// than the archive's (here: nothing for group and others), files still get the archive's
// modes: they are chmodded, not created with their mode alone. A file in a directory made
// while extracting, which inherits the ACL, too.
func TestCreateModeDefaultACL(t *testing.T) {
	needACLs(t)
	dir := t.TempDir()
	strict := posixACL([3]uint32{0x01, 7, 0xFFFFFFFF}, [3]uint32{0x04, 0, 0xFFFFFFFF}, [3]uint32{0x20, 0, 0xFFFFFFFF})
	if err := unix.Setxattr(dir, "system.posix_acl_default", []byte(strict), 0); err != nil {
		t.Fatal(err)
	}
	withWriters(t, 2, nil)
	es := []entry{regE("a", "a"), regE("sub/b", "b"), {hdr: tar.Header{Name: "sub/c", Typeflag: tar.TypeReg, Mode: 0o755, ModTime: epoch}, data: []byte("c")}}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := NewExtractor(root, true, t.Logf).Extract(bytes.NewReader(tarOf(t, es))); err != nil {
		t.Fatal(err)
	}
	got := snapshot(t, dir)
	for name, want := range map[string]string{"a": "100644", "sub/b": "100644", "sub/c": "100755"} {
		if got[name].Mode != want {
			t.Errorf("%s: mode %s, want %s", name, got[name].Mode, want)
		}
	}
}

// TestWritersLeaveXZDecodersTheirCPUs: the xz decoder decodes a block per CPU, so an xz load
// leaves the CPUs to it and writes files in the extractor's goroutine (writers would only take
// CPU time from the decoders); a zstd load, whose decoder takes one CPU, uses the pool when
// there is another. Both trees are whole.
func TestWritersLeaveXZDecodersTheirCPUs(t *testing.T) {
	es := randomTree(21, 512<<10)
	archive := tarOf(t, es)
	for _, tc := range []struct {
		name    string
		img     []byte
		writers bool
	}{
		{"xz", xzOf(t, archive), false},
		{"zstd", zstdOf(t, archive), runtime.GOMAXPROCS(0) > 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			written := 0
			withWriters(t, 2, func(*tar.Header) {
				mu.Lock()
				written++
				mu.Unlock()
			})
			p := filepath.Join(t.TempDir(), "img")
			writeFile(p, tc.img)
			dir := t.TempDir()
			if _, err := Load(context.Background(), dir, []string{p}, Options{NoSidecar: true}); err != nil {
				t.Fatal(err)
			}
			checkTree(t, dir, es)
			if got := written > 0; got != tc.writers {
				t.Errorf("%d files written by writers, want writers used: %v", written, tc.writers)
			}
		})
	}
}

// TestHardLinkTargets: a hard link shares its target's inode whether the target's directory is
// the link's own, another one still open in the extractor's cache, one the cache has dropped
// since (more directories than it holds came in between), or reached through a symlinked
// directory.
func TestHardLinkTargets(t *testing.T) {
	hard := func(name, to string) entry {
		return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: to, ModTime: epoch}}
	}
	es := []entry{dirE("a", 1), regE("a/f", "f"), dirE("b", 1), regE("b/g", "g"), symE("s", "a")}
	for i := range maxCachedDirs + 10 {
		es = append(es, dirE(fmt.Sprintf("many/%03d", i), 1))
	}
	es = append(es, regE("many/last", "x"),
		hard("a/same", "a/f"),      // its own directory
		hard("b/other", "a/f"),     // another cached one
		hard("many/far", "b/g"),    // dropped from the cache by the directories since
		hard("many/viasym", "s/f"), // through a symlink to a directory
	)
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := NewExtractor(root, false, t.Logf).Extract(bytes.NewReader(tarOf(t, es))); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{"a/same": "a/f", "b/other": "a/f", "many/far": "b/g", "many/viasym": "a/f"} {
		l, err1 := os.Lstat(filepath.Join(dir, link))
		f, err2 := os.Lstat(filepath.Join(dir, target))
		if err1 != nil || err2 != nil {
			t.Fatalf("%s -> %s: %v, %v", link, target, err1, err2)
		}
		if !os.SameFile(l, f) {
			t.Errorf("%s is not a hard link to %s", link, target)
		}
	}
}

// TestWriterCount: the writer pool is sized to the CPUs the decompression leaves (here 4 CPUs,
// a pool of at most 4): none beside xz's decoder, which has a goroutine per CPU; three beside
// zstd's, which has one; the whole pool for a plain tar.
func TestWriterCount(t *testing.T) {
	old := runtime.GOMAXPROCS(4)
	defer runtime.GOMAXPROCS(old)
	withWriters(t, maxWriters, nil)
	var pool int
	poolHook = func(n int) { pool = n }
	defer func() { poolHook = nil }()
	es := randomTree(22, 256<<10)
	archive := tarOf(t, es)
	for _, tc := range []struct {
		name string
		img  []byte
		want int
	}{{"xz", xzOf(t, archive), 0}, {"zstd", zstdOf(t, archive), 3}, {"tar", archive, 4}} {
		p := filepath.Join(t.TempDir(), "img")
		writeFile(p, tc.img)
		pool = -1
		dir := t.TempDir()
		if _, err := Load(context.Background(), dir, []string{p}, Options{NoSidecar: true}); err != nil {
			t.Fatal(err)
		}
		checkTree(t, dir, es)
		if pool != tc.want {
			t.Errorf("%s: %d writers, want %d", tc.name, pool, tc.want)
		}
	}
}
