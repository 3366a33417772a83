package imageconv

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ramboot/ramboot/loader"
)

// node is one path of the tree: its normalized header and where its data is.
type node struct {
	hdr tar.Header // Name is the clean relative path, "." for the root
	// Data of regular files: a file on disk (dir:), else bytes in memory (made by an edit),
	// else hdr.Size bytes at off in the spool.
	file string
	mem  []byte
	off  int64
	// Hard links (hdr.Typeflag == tar.TypeLink): the node of the inode once known, else the
	// name of the path it links to, resolved when the tree is complete (container layers
	// list a link before its target when the target is in a lower layer).
	target *node
	link   string
}

// tree collects the entries of a source; later entries of a name replace earlier ones, as
// extraction would. Data of tar sources goes to an unlinked spool file, so that entries can be
// written in sorted order whatever order they came in.
type tree struct {
	nodes    map[string]*node
	spool    *os.File
	spoolW   *bufio.Writer
	spoolOff int64
	tempDir  string
	logf     func(string, ...any)
	read     func(int64) // counts bytes read, for progress
}

func newTree(tempDir string, logf func(string, ...any), read func(int64)) *tree {
	return &tree{nodes: map[string]*node{}, tempDir: tempDir, logf: logf, read: read}
}

func (t *tree) close() {
	if t.spool != nil {
		t.spool.Close()
	}
}

// normalize keeps what a root file system needs of a header and nothing that would make the
// archive depend on the machine or the moment: numeric owners without names, mode bits,
// nanosecond mtime, devices, xattrs (GNU tar's SCHILY.xattr.* form, libarchive's converted).
func normalize(h *tar.Header, name string) tar.Header {
	n := tar.Header{
		Typeflag: h.Typeflag, Name: name, Linkname: h.Linkname, Mode: h.Mode & 0o7777,
		Uid: h.Uid, Gid: h.Gid, ModTime: h.ModTime, Format: tar.FormatPAX,
	}
	switch n.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		n.Typeflag, n.Size = tar.TypeReg, h.Size
	case tar.TypeChar, tar.TypeBlock:
		n.Devmajor, n.Devminor = h.Devmajor, h.Devminor
	}
	if n.Typeflag != tar.TypeSymlink && n.Typeflag != tar.TypeLink {
		n.Linkname = ""
	}
	for _, x := range loader.Xattrs(h) {
		if n.PAXRecords == nil {
			n.PAXRecords = map[string]string{}
		}
		n.PAXRecords["SCHILY.xattr."+x.Name] = string(x.Value)
	}
	return n
}

// addTar reads a tar stream into the tree.
func (t *tree) addTar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		if err := t.addEntry(h, tr); err != nil {
			return err
		}
	}
}

func (t *tree) addEntry(h *tar.Header, r io.Reader) error {
	switch h.Typeflag {
	case tar.TypeXGlobalHeader, 'V': // global PAX header, GNU volume label
		return nil
	}
	name, err := loader.CleanName(h.Name)
	if err != nil {
		return err
	}
	n := &node{hdr: normalize(h, name)}
	switch n.hdr.Typeflag {
	case tar.TypeDir:
		if old := t.nodes[name]; old != nil && old.hdr.Typeflag == tar.TypeDir {
			old.hdr = n.hdr // a directory listed again: its children stay
			return nil
		}
	case tar.TypeReg:
		if err := t.spoolData(n, r); err != nil {
			return fmt.Errorf("%s: %w", h.Name, err)
		}
	case tar.TypeLink:
		target, err := loader.CleanName(h.Linkname)
		if err != nil || target == "." {
			return fmt.Errorf("%w: hard link %s to %q", loader.ErrInsecurePath, h.Name, h.Linkname)
		}
		n.link, n.hdr.Linkname = target, ""
		// Linked now when the target is known: if it is replaced later, the link keeps this
		// inode, as in an extracted tree.
		switch tn := t.nodes[target]; {
		case tn == nil:
		case tn.hdr.Typeflag == tar.TypeDir:
			return fmt.Errorf("hard link %s: its target %s is a directory", h.Name, target)
		case tn.hdr.Typeflag != tar.TypeLink:
			n.target = tn
		default:
			n.target = tn.target // nil: resolved by name at the end
		}
	case tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("%s: unsupported tar entry type %q", h.Name, h.Typeflag)
	}
	t.put(name, n)
	return nil
}

// put sets name to n; what replaces a directory replaces its contents too.
func (t *tree) put(name string, n *node) {
	if old := t.nodes[name]; old != nil && old.hdr.Typeflag == tar.TypeDir && n.hdr.Typeflag != tar.TypeDir {
		t.removeBelow(name)
	}
	t.nodes[name] = n
}

// removeBelow deletes every path inside dir; it returns how many.
func (t *tree) removeBelow(dir string) int {
	prefix, count := dir+"/", 0
	if dir == "." {
		prefix = ""
	}
	for k := range t.nodes {
		if strings.HasPrefix(k, prefix) && k != dir {
			delete(t.nodes, k)
			count++
		}
	}
	return count
}

func (t *tree) spoolData(n *node, r io.Reader) error {
	if t.spool == nil {
		f, err := os.CreateTemp(t.tempDir, "ramboot-image-*.spool")
		if err != nil {
			return fmt.Errorf("creating spool file: %w", err)
		}
		os.Remove(f.Name()) // gone when closed, whatever happens
		t.spool, t.spoolW = f, bufio.NewWriterSize(f, 1<<20)
	}
	n.off = t.spoolOff
	c, err := io.Copy(t.spoolW, io.LimitReader(r, n.hdr.Size))
	t.spoolOff += c
	t.read(c)
	if err != nil {
		return err
	}
	if c != n.hdr.Size {
		return fmt.Errorf("data ends after %d of %d bytes: %w", c, n.hdr.Size, io.ErrUnexpectedEOF)
	}
	return nil
}

// open returns a regular file's data.
func (t *tree) open(n *node) (io.ReadCloser, error) {
	switch {
	case n.mem != nil:
		return io.NopCloser(bytes.NewReader(n.mem)), nil
	case n.file != "":
		return openChecked(n.file, n.hdr.Size)
	case n.hdr.Size == 0:
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	if err := t.spoolW.Flush(); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return io.NopCloser(io.NewSectionReader(t.spool, n.off, n.hdr.Size)), nil
}

// newest is the latest mtime in the tree: the time of entries the conversion makes, so that
// they do not depend on when it ran.
func (t *tree) newest() time.Time {
	var m time.Time
	for _, n := range t.nodes {
		if n.hdr.ModTime.After(m) {
			m = n.hdr.ModTime
		}
	}
	if m.IsZero() {
		m = time.Unix(0, 0)
	}
	return m
}

// finish resolves hard links, adds missing parent directories and returns the nodes in
// archive order: by path, each directory's entries together ("a", "a/b", "a.b"). Each hard-link
// group is written as its first path (carrying data and metadata) and links to it.
func (t *tree) finish(dirTime time.Time) ([]*node, error) {
	for name, n := range t.nodes {
		if n.hdr.Typeflag != tar.TypeLink || n.target != nil {
			continue
		}
		tn, err := t.resolve(name, n)
		if err != nil {
			return nil, err
		}
		n.target = tn
	}
	if _, ok := t.nodes["."]; !ok {
		t.nodes["."] = &node{hdr: dirHeader(".", 0o755, dirTime)}
	}
	for name := range t.nodes {
		for d := path.Dir(name); name != "."; d = path.Dir(d) {
			p := t.nodes[d]
			if p == nil {
				t.nodes[d] = &node{hdr: dirHeader(d, 0o755, dirTime)}
			} else if p.hdr.Typeflag != tar.TypeDir {
				return nil, fmt.Errorf("%s: its parent %s is not a directory", name, d)
			}
			if d == "." {
				break
			}
		}
	}
	names := make([]string, 0, len(t.nodes))
	for name := range t.nodes {
		names = append(names, name)
	}
	slices.SortFunc(names, comparePaths)
	// The first path of an inode carries it; the others link to that path.
	first := map[*node]string{}
	out := make([]*node, 0, len(names))
	for _, name := range names {
		n := t.nodes[name]
		ino := n
		if n.hdr.Typeflag == tar.TypeLink {
			ino = n.target
		}
		if p, ok := first[ino]; ok {
			out = append(out, &node{hdr: tar.Header{
				Typeflag: tar.TypeLink, Name: name, Linkname: p, Mode: ino.hdr.Mode,
				Uid: ino.hdr.Uid, Gid: ino.hdr.Gid, ModTime: ino.hdr.ModTime, Format: tar.FormatPAX,
			}})
			continue
		}
		first[ino] = name
		c := *ino
		c.hdr.Name = name
		out = append(out, &c)
	}
	return out, nil
}

// resolve finds the inode a hard link names once the tree is complete.
func (t *tree) resolve(name string, n *node) (*node, error) {
	for range 64 {
		tn := t.nodes[n.link]
		switch {
		case tn == nil:
			return nil, fmt.Errorf("hard link %s: its target %s is not in the image", name, n.link)
		case tn.hdr.Typeflag == tar.TypeDir:
			return nil, fmt.Errorf("hard link %s: its target %s is a directory", name, n.link)
		case tn.hdr.Typeflag != tar.TypeLink:
			return tn, nil
		case tn.target != nil:
			return tn.target, nil
		}
		n = tn
	}
	return nil, fmt.Errorf("hard link %s: a loop of hard links", name)
}

// comparePaths orders by path components ("a", "a/b", "a.b"), so that a directory's entries
// stay together; the root comes first.
func comparePaths(a, b string) int {
	switch {
	case a == b:
		return 0
	case a == ".":
		return -1
	case b == ".":
		return 1
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			ca = 0
		}
		if cb == '/' {
			cb = 0
		}
		return cmp.Compare(ca, cb)
	}
	return cmp.Compare(len(a), len(b))
}

func dirHeader(name string, mode int64, mtime time.Time) tar.Header {
	return tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: mtime, Format: tar.FormatPAX}
}

// errChanged means a file of a dir: source changed while it was read.
var errChanged = errors.New("changed while the image was made")

// openChecked opens a file of a dir: source and checks it still has the size it had.
func openChecked(p string, size int64) (io.ReadCloser, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && (!st.Mode().IsRegular() || st.Size() != size) {
		err = fmt.Errorf("%s: %w (size %d, was %d)", p, errChanged, st.Size(), size)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
