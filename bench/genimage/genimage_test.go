package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"path"
	"strings"
	"testing"
)

// generate writes the archive for seed and mb into a pipe and hands its reader to read, so
// that large images are checked without touching the disk.
func generate(t *testing.T, seed uint64, mb int64, read func(io.Reader) error) {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := buildTree(seed, mb*1_000_000).write(context.Background(), pw)
		pw.CloseWithError(err)
		done <- err
	}()
	rerr := read(pr)
	pr.CloseWithError(errors.New("reader done"))
	if werr := <-done; werr != nil && rerr == nil {
		t.Fatalf("writing: %v", werr)
	}
	if rerr != nil {
		t.Fatal(rerr)
	}
}

// TestDeterministic: the same seed and size give the same bytes, another seed other bytes
// (`make bench` caches compressed images on this, and figures compare across machines on it).
func TestDeterministic(t *testing.T) {
	sum := func(seed uint64) [sha256.Size]byte {
		h := sha256.New()
		generate(t, seed, 8, func(r io.Reader) error { _, err := io.Copy(h, r); return err })
		return [sha256.Size]byte(h.Sum(nil))
	}
	a, b, c := sum(1), sum(1), sum(2)
	if a != b {
		t.Errorf("two runs with seed 1 differ: %x and %x", a, b)
	}
	if a == c {
		t.Errorf("seeds 1 and 2 gave the same archive %x", a)
	}
}

// TestRootShape: at the size `make bench` uses by default (BENCH_MB=150), the image has what
// makes a root file system slow to extract and hard to get right: thousands of entries, deep
// paths, hard links to files earlier in the archive, symlinks, file capabilities and user
// xattrs, setuid files, device nodes, a few large files, and GNU tar's POSIX format (a PAX
// header with atime and ctime before every entry).
func TestRootShape(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 175 MB of tar (a few seconds); -short skips it")
	}
	var (
		entries, links, symlinks, devices, setuid, large, maxDepth, withTimes int
		tarBytes                                                              int64
		caps                                                                  = map[string][]byte{}
		userXattrs                                                            int
	)
	seen := map[string]byte{}
	generate(t, 1, 150, func(r io.Reader) error {
		cr := &countWriter{w: io.Discard}
		tr := tar.NewReader(io.TeeReader(r, cr))
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			entries++
			name := strings.TrimPrefix(strings.TrimSuffix(hdr.Name, "/"), "./")
			if d := strings.Count(name, "/") + 1; d > maxDepth {
				maxDepth = d
			}
			if _, dup := seen[name]; dup {
				t.Errorf("%s: twice in the archive", hdr.Name)
			}
			seen[name] = hdr.Typeflag
			if _, ok := hdr.PAXRecords["atime"]; ok {
				if _, ok := hdr.PAXRecords["ctime"]; ok {
					withTimes++
				}
			}
			switch hdr.Typeflag {
			case tar.TypeLink:
				links++
				target := strings.TrimPrefix(hdr.Linkname, "./")
				if seen[target] != tar.TypeReg {
					t.Errorf("hard link %s -> %s: the target is not a regular file earlier in the archive", hdr.Name, hdr.Linkname)
				}
			case tar.TypeSymlink:
				symlinks++
			case tar.TypeChar:
				devices++
			case tar.TypeReg:
				if hdr.Mode&0o4000 != 0 {
					setuid++
				}
				if hdr.Size >= 5_000_000 {
					large++
				}
			}
			for k, v := range hdr.PAXRecords {
				x, ok := strings.CutPrefix(k, "SCHILY.xattr.")
				switch {
				case !ok:
				case x == "security.capability":
					caps[name] = []byte(v)
				case strings.HasPrefix(x, "user."):
					userXattrs++
				default:
					t.Errorf("%s: unexpected xattr %s", hdr.Name, x)
				}
			}
		}
		// The reader stops at the end-of-archive marker; count the padding after it too.
		_, err := io.Copy(io.Discard, tr)
		tarBytes = cr.n
		return err
	})
	t.Logf("%.1f MB of tar, %d entries (%d with atime and ctime), depth %d, %d hard links, %d symlinks, %d devices, %d setuid, %d files >= 5 MB, %d capabilities, %d user xattrs",
		float64(tarBytes)/1e6, entries, withTimes, maxDepth, links, symlinks, devices, setuid, large, len(caps), userXattrs)
	check := func(what string, got, min int) {
		t.Helper()
		if got < min {
			t.Errorf("%s: %d, want at least %d", what, got, min)
		}
	}
	if tarBytes < 150_000_000 {
		t.Errorf("%d bytes of tar, want at least 150 MB", tarBytes)
	}
	check("entries", entries, 8000)
	check("path depth", maxDepth, 8)
	check("hard links", links, 100)
	check("symlinks", symlinks, 100)
	check("devices", devices, 5)
	check("setuid files", setuid, 5)
	check("files of 5 MB or more", large, 3)
	check("files with a capability", len(caps), 10)
	check("user xattrs", userXattrs, 4)
	if withTimes != entries {
		t.Errorf("%d of %d entries have a PAX atime and ctime, want all", withTimes, entries)
	}
	// ping's capability must be what `setcap cap_net_raw+ep` writes (vfs_cap_data revision 2).
	want := []byte{0x01, 0, 0, 0x02, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if got := caps["usr/bin/ping"]; !bytes.Equal(got, want) {
		t.Errorf("usr/bin/ping: security.capability %x, want %x (cap_net_raw+ep)", got, want)
	}
	for name, v := range caps {
		if len(v) != 20 || binary.LittleEndian.Uint32(v)&0xff000000 != 0x02000000 {
			t.Errorf("%s: security.capability %x is not a revision 2 vfs_cap_data", name, v)
		}
		if path.Dir(name) == "." {
			t.Errorf("%s: a capability at the top level", name)
		}
	}
}

// TestVFSCap: capabilities above 31 go into the high words.
func TestVFSCap(t *testing.T) {
	got := vfsCap([]int{capNetAdmin, 33}, true)
	want := []byte{0x01, 0, 0, 0x02, 0x00, 0x10, 0, 0, 0x00, 0x10, 0, 0, 0x02, 0, 0, 0, 0x02, 0, 0, 0}
	if !bytes.Equal(got, want) {
		t.Errorf("vfsCap(net_admin, 33, +i) = %x, want %x", got, want)
	}
}
