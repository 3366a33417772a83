package imageconv

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const oNoFollow = unix.O_NOFOLLOW

// addDir reads the tree under root as `tar -C root -c .` would: every type but sockets, numeric
// owners, modes, nanosecond mtimes, device numbers, every xattr, hard links by inode. File data
// is read later, when the archive is written.
func (t *tree) addDir(ctx context.Context, root string) error {
	st, err := os.Stat(root)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", root)
	}
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return &fs.PathError{Op: "lstat", Path: p, Err: err}
		}
		h := tar.Header{
			Name: name, Mode: int64(st.Mode & 0o7777), Uid: int(st.Uid), Gid: int(st.Gid),
			ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX,
		}
		n := &node{}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			h.Typeflag = tar.TypeDir
		case unix.S_IFREG:
			h.Typeflag, h.Size, n.file = tar.TypeReg, st.Size, p
			t.read(st.Size)
		case unix.S_IFLNK:
			h.Typeflag = tar.TypeSymlink
			if h.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			h.Typeflag = tar.TypeChar
			if st.Mode&unix.S_IFMT == unix.S_IFBLK {
				h.Typeflag = tar.TypeBlock
			}
			h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		case unix.S_IFIFO:
			h.Typeflag = tar.TypeFifo
		default:
			t.logf("%s: a socket, not archived (as GNU tar does)", p)
			return nil
		}
		if h.Typeflag != tar.TypeDir && st.Nlink > 1 {
			key := inode{st.Dev, st.Ino}
			if first, ok := seen[key]; ok {
				n.hdr = tar.Header{Typeflag: tar.TypeLink, Name: name, Format: tar.FormatPAX}
				n.link, n.target = first, t.nodes[first]
				t.nodes[name] = n
				return nil
			}
			seen[key] = name
		}
		if h.PAXRecords, err = xattrs(p); err != nil {
			return err
		}
		n.hdr = h
		t.nodes[name] = n
		return nil
	})
}

// xattrs returns p's extended attributes (not following a symlink) as SCHILY.xattr records.
func xattrs(p string) (map[string]string, error) {
	buf := make([]byte, 1024)
	var sz int
	for {
		var err error
		sz, err = unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("llistxattr %s: %w", p, err)
		}
		break
	}
	if sz == 0 {
		return nil, nil
	}
	recs := map[string]string{}
	val := make([]byte, 256)
	for name := range strings.SplitSeq(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		for {
			n, err := unix.Lgetxattr(p, name, val)
			if errors.Is(err, unix.ERANGE) {
				val = make([]byte, len(val)*4)
				continue
			}
			if errors.Is(err, unix.ENODATA) {
				break // removed meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("lgetxattr %s %s: %w", p, name, err)
			}
			recs["SCHILY.xattr."+name] = string(val[:n])
			break
		}
	}
	return recs, nil
}
