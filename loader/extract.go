package loader

import (
	"archive/tar"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Extractor writes a tar stream into a directory the way `tar --numeric-owner --xattrs
// --xattrs-include='*' -xpf` does as root: every entry type, numeric owners, full modes,
// nanosecond mtimes (directories last), extended attributes (security.capability included),
// applied in the order data → chown → xattrs → chmod → times, because chown clears setuid bits
// and file capabilities.
//
// Nothing lands outside the directory: names that are absolute or contain "..", and hard links
// pointing out, fail with ErrInsecurePath; parent directories are resolved through os.Root,
// which refuses symlinks leading out; the last component is always created or changed without
// following symlinks (O_EXCL/O_NOFOLLOW, *at calls with AT_SYMLINK_NOFOLLOW), and an existing
// non-directory at an entry's name is replaced, as GNU tar does.
//
// It is written by hand because archive/tar only parses, and no maintained library extracts
// with os.Root confinement and GNU tar's full metadata semantics.
type Extractor struct {
	root *os.Root
	// Owners chowns entries to their numeric uid/gid (default when running as root).
	owners bool
	logf   func(string, ...any)

	dirs  map[string]*tar.Header // directories whose metadata is applied at the end
	order []string               // their first-seen order
	cache map[string]int         // open descriptors of parent directories
	// acl tells which cached directories have a default ACL (see createMode).
	acl map[string]bool
	// retired descriptors were dropped from the cache while a caller may still use one.
	retired []int
	buf     []byte // for data written in this goroutine; made when first needed
	w       *writers
	// decoders is how many CPUs the decompression of the stream keeps busy, which the writer
	// pool leaves to it (see writerCount); 0: none.
	decoders int
	umask    int // the process's, -1 when not known

	logMu  sync.Mutex // writers warn too
	warned map[string]bool
	// New entries are owned by uid:gid; ok is false when that is not known (the root is
	// setgid, so new entries take its group), and every entry is chowned.
	newOwner struct {
		uid, gid int
		ok       bool
	}

	// Entries and Bytes count what has been extracted.
	Entries int
	Bytes   int64
}

// NewExtractor extracts into the directory root. When owners is false, entries keep the
// extracting user as owner (tar's behaviour for non-root users).
func NewExtractor(root *os.Root, owners bool, logf func(string, ...any)) *Extractor {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	x := &Extractor{
		root: root, owners: owners, logf: logf,
		dirs:   map[string]*tar.Header{},
		cache:  map[string]int{},
		acl:    map[string]bool{},
		warned: map[string]bool{},
		umask:  processUmask(),
	}
	// Directories made while extracting get their modes at the end, so only the root's setgid
	// bit can give new entries another group than the extracting user's.
	if fi, err := root.Stat("."); err == nil && fi.Mode()&os.ModeSetgid == 0 {
		x.newOwner.uid, x.newOwner.gid, x.newOwner.ok = os.Geteuid(), os.Getegid(), true
	}
	return x
}

// Extract reads the tar stream r to its end-of-archive marker and then applies the
// directories' metadata, except the target's own (the archive's "./" entry): that waits for
// FinishRoot, which the caller runs once the image is verified, so that a failed or restarted
// load never leaves an unverified owner, mode or ACL on the target. On error the directory
// holds a partial tree; the caller removes it and restores the target's own metadata.
//
// The end of the archive is GNU tar's: two zero blocks; or a lone zero block, whatever follows
// it (GNU tar warns "A lone zero block" and stops reading there, with exit status 0; a valid
// header after it is ignored as well). An archive of just the marker extracts nothing. A stream
// that ends without a zero block is ErrTruncated: cut at an entry boundary, it would otherwise
// pass for complete.
//
// Regular files are written by writer goroutines (see extract_files.go); Extract returns once
// they have all stopped, whatever the outcome.
func (x *Extractor) Extract(r io.Reader) error {
	defer x.closeCache()
	x.startWriters(x.writerCount())
	defer func() {
		if x.w != nil { // a panic on the way (the caller recovers it): stop the writers first
			x.stopWriters(errAbandoned)
		}
	}()
	err := x.extract(r)
	if err = x.stopWriters(err); err != nil {
		return err
	}
	return x.finishDirs()
}

func (x *Extractor) extract(r io.Reader) error {
	es := newTarEntries(r)
	for {
		if x.w != nil && x.w.failed.Load() {
			return x.w.firstErr()
		}
		hdr, data, sp, err := es.next()
		if err == io.EOF {
			if es.lone {
				x.log("a lone zero block at byte %d ends the archive (as with GNU tar)", es.loneAt)
			}
			return nil
		}
		if err != nil {
			return err
		}
		if err := x.entry(hdr, data, sp); err != nil {
			return err
		}
		if err := es.done(); err != nil {
			return err
		}
	}
}

// FinishRoot applies the metadata of the archive's "./" entry (owner, xattrs and ACLs, mode,
// times) to the target directory itself. Run it last, once the image is verified: a default
// ACL or a setgid bit on the target is inherited by whatever is created in it afterwards.
func (x *Extractor) FinishRoot() error {
	hdr, ok := x.dirs["."]
	if !ok {
		return nil
	}
	defer x.closeCache()
	fd, err := x.openDir(".")
	if err != nil {
		return x.pathErr(hdr.Name, err)
	}
	defer unix.Close(fd)
	err = x.meta(fd, ".", fd, hdr, false)
	if err == nil {
		err = x.times(fd, ".", hdr)
	}
	if err != nil {
		return x.pathErr(hdr.Name, err)
	}
	return nil
}

// CleanName validates an archive member name and returns it relative to the target, "." for
// the target itself. Absolute names and ".." components are ErrInsecurePath (GNU tar strips or
// skips them; a root image never needs them, so ramboot refuses the image).
func CleanName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty name", ErrInsecurePath)
	}
	if name[0] == '/' {
		return "", fmt.Errorf("%w: %q is absolute", ErrInsecurePath, name)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: %q contains NUL", ErrInsecurePath, name)
	}
	// One pass over the components; a name that is already clean (most are: path.Clean
	// allocated for a third of a root image's names, the directories' with a trailing slash)
	// is returned as it is.
	clean := true
	for rest := name; ; {
		c, more, found := strings.Cut(rest, "/")
		switch c {
		case "..":
			return "", fmt.Errorf("%w: %q contains \"..\"", ErrInsecurePath, name)
		case "", ".":
			clean = false
		}
		if !found {
			break
		}
		rest = more
	}
	if clean {
		return name, nil
	}
	return path.Clean(name), nil
}

func (x *Extractor) entry(hdr *tar.Header, r io.Reader, sp *sparseMap) error {
	name, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	x.Entries++
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader, 'V': // V: a GNU volume label
		return nil
	case tar.TypeDir:
		return x.dir(name, hdr)
	}
	if name == "." {
		return fmt.Errorf("%w: %q: a %s at the root of the target", ErrInsecurePath, hdr.Name, typeName(hdr.Typeflag))
	}
	dir, base := path.Split(name)
	dfd, err := x.parent(dir)
	if err != nil {
		return x.pathErr(hdr.Name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse: // tar.Reader reports the old '\x00' as TypeReg
		return x.file(dfd, base, name, hdr, r, sp)
	case tar.TypeSymlink:
		err = x.replace(dfd, base, name, func() error { return unix.Symlinkat(hdr.Linkname, dfd, base) })
	case tar.TypeLink:
		err = x.hardlink(dfd, base, name, hdr)
		if err == nil {
			return nil // metadata belongs to the inode, set when it was extracted
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(hdr.Mode & 07777)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		err = x.replace(dfd, base, name, func() error { return unix.Mknodat(dfd, base, mode, dev) })
	default:
		// GNU tar extracts unknown types as regular files.
		x.warn("type"+string(hdr.Typeflag), "%s: unknown entry type %q, extracted as a regular file", hdr.Name, hdr.Typeflag)
		return x.file(dfd, base, name, hdr, r, nil)
	}
	if err == nil {
		err = x.meta(dfd, base, -1, hdr, true)
	}
	if err == nil {
		err = x.times(dfd, base, hdr)
	}
	if err != nil {
		return x.pathErr(hdr.Name, err)
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "fifo"
	}
	return "file"
}

// pathErr wraps a failure on an entry; os.Root's refusal to leave the tree becomes
// ErrInsecurePath, running out of space ErrNoSpace.
func (x *Extractor) pathErr(name string, err error) error {
	var se *StreamError
	switch {
	case errors.As(err, &se):
		return se
	case escapes(x.root, err):
		return fmt.Errorf("%w: %q leads outside the target: %w", ErrInsecurePath, name, err)
	case errors.Is(err, unix.ENOSPC), errors.Is(err, unix.EDQUOT):
		return fmt.Errorf("%w: extracting %s: %w", ErrNoSpace, name, err)
	}
	return fmt.Errorf("extracting %s: %w", name, err)
}

// escapes reports whether err is root's refusal of a path that leads outside its tree. Go
// (1.26) does not export that error (os's errPathEscapes, "path escapes from parent"), so its
// value is learnt from root itself: root refuses ".." with it, in an *os.PathError, before any
// system call. Matching the value rather than the message's text also keeps a failure on an
// entry whose name holds that text from passing for an escape.
func escapes(root *os.Root, err error) bool {
	if root == nil || err == nil {
		return false
	}
	_, perr := root.Lstat("..")
	var pe *os.PathError
	if !errors.As(perr, &pe) || pe.Err == nil {
		return false
	}
	return errors.Is(err, pe.Err)
}

// maxCachedDirs bounds the open directory descriptors; a root file system has thousands of
// directories, but tar lists each one's entries together.
const maxCachedDirs = 256

// parent returns an open descriptor of directory dir (relative, "" for the root), creating
// missing directories as tar does (0755). The descriptor stays valid until the next call.
func (x *Extractor) parent(dir string) (int, error) {
	dir = cacheKey(dir)
	x.closeRetired()
	if fd, ok := x.cache[dir]; ok {
		return fd, nil
	}
	// Usually the directory is opened (or made) in its cached parent with one call; the last
	// component is not followed, so that this cannot leave the tree. A symlink on the way (or
	// any failure) goes through os.Root, which follows symlinks that stay inside the tree.
	fd := -1
	if d, base := path.Split(dir); dir != "." {
		if pfd, err := x.parent(d); err == nil {
			const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
			fd, err = unix.Openat(pfd, base, flags, 0)
			if errors.Is(err, unix.ENOENT) && unix.Mkdirat(pfd, base, 0o755) == nil {
				fd, err = unix.Openat(pfd, base, flags, 0)
			}
			if err != nil {
				fd = -1
			}
		}
	}
	if fd < 0 {
		var err error
		if fd, err = x.openRoot(dir); err != nil {
			return -1, err
		}
	}
	if len(x.cache) >= maxCachedDirs {
		x.closeCache()
	}
	x.cache[dir] = fd
	x.acl[dir] = hasDefaultACL(fd)
	return fd, nil
}

// cacheKey is the name of directory dir (as path.Split returns it) in the cache.
func cacheKey(dir string) string {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	return dir
}

// openRoot opens (or makes) dir through os.Root and returns a descriptor of its own.
func (x *Extractor) openRoot(dir string) (int, error) {
	f, err := x.root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if errors.Is(err, os.ErrNotExist) {
		if err = x.root.MkdirAll(dir, 0o755); err == nil {
			f, err = x.root.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
		}
	}
	if err != nil {
		return -1, err
	}
	defer f.Close()
	return dupFile(f)
}

// dupFile returns a descriptor of f's own, for the caller to close.
func dupFile(f *os.File) (int, error) {
	var fd int
	var derr error
	rc, err := f.SyscallConn()
	if err == nil {
		err = rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) })
	}
	if err == nil {
		err = derr
	}
	if err != nil {
		return -1, fmt.Errorf("dup %s: %w", f.Name(), err)
	}
	return fd, nil
}

func (x *Extractor) closeCache() {
	x.closeRetired()
	for k, fd := range x.cache {
		unix.Close(fd)
		delete(x.cache, k)
	}
	clear(x.acl)
}

func (x *Extractor) closeRetired() {
	for _, fd := range x.retired {
		unix.Close(fd)
	}
	x.retired = x.retired[:0]
}

// replace runs create; if the name is taken, it removes what is there (an empty directory at
// most: a non-empty one is an error, as with GNU tar) and tries once more.
func (x *Extractor) replace(dfd int, base, name string, create func() error) error {
	err := create()
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := x.remove(dfd, base, name); err != nil {
		return err
	}
	return create()
}

// remove removes what is at base in dfd (an empty directory at most). Removing a directory or
// a symlink changes where paths through it lead (GNU tar follows the new entry): every cached
// descriptor is dropped, dfd included, which stays open for the caller until the next lookup;
// a removed directory's metadata is no longer applied at the end.
func (x *Extractor) remove(dfd int, base, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); errors.Is(err, unix.ENOENT) {
		return nil
	} else if err != nil {
		return fmt.Errorf("replacing existing %s: %w", base, err)
	}
	typ := st.Mode & unix.S_IFMT
	flags := 0
	if typ == unix.S_IFDIR {
		flags = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(dfd, base, flags); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("replacing existing %s: %w", base, err)
	}
	if typ == unix.S_IFDIR || typ == unix.S_IFLNK {
		for k, fd := range x.cache {
			x.retired = append(x.retired, fd)
			delete(x.cache, k)
		}
		clear(x.acl)
	}
	if typ == unix.S_IFDIR {
		gone := func(k string) bool { return k == name || strings.HasPrefix(k, name+"/") }
		for k := range x.dirs {
			if gone(k) {
				delete(x.dirs, k)
			}
		}
		x.order = slices.DeleteFunc(x.order, gone)
	}
	return nil
}

// file writes a regular file; sp is the sparse map of a sparse member (r then is the raw
// stream of its fragments), nil for others.
func (x *Extractor) file(dfd int, base, name string, hdr *tar.Header, r io.Reader, sp *sparseMap) error {
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	dir, _ := path.Split(name)
	acl, known := x.acl[cacheKey(dir)] // known: entry has just looked the directory up
	mode, modeSet := x.createMode(hdr, acl || !known)
	var fd int
	err := x.replace(dfd, base, name, func() (err error) {
		fd, err = unix.Openat(dfd, base, flags, mode)
		return err
	})
	if err != nil {
		return x.pathErr(hdr.Name, err)
	}
	if x.w != nil && sp == nil && !isSparse(hdr) {
		return x.sendFile(fd, hdr, r, modeSet)
	}
	if x.buf == nil {
		x.buf = make([]byte, writerChunkSize)
	}
	var werr error
	switch {
	case sp != nil:
		werr = x.writeSparse(fd, r, sp, hdr.Size)
	case isSparse(hdr):
		// Its map was not found: read whole, with holes where the zeros are.
		x.warn("sparse", "%s: sparse map not read back: its holes are read as zeros (slow)", hdr.Name)
		werr = x.copyHoles(fd, r, hdr.Size)
	default:
		werr = x.copy(fd, r, hdr.Size)
	}
	return x.finishFile(&fileJob{fd: fd, hdr: hdr, modeSet: modeSet}, werr)
}

// copy writes the entry's data; archive/tar reports a stream shorter than the header's size.
func (x *Extractor) copy(fd int, r io.Reader, size int64) error {
	var done int64
	for done < size {
		n, err := r.Read(x.buf[:min(int64(len(x.buf)), size-done)])
		for p := x.buf[:n]; len(p) > 0; {
			w, werr := unix.Write(fd, p)
			if werr == unix.EINTR {
				continue
			}
			if werr != nil {
				return werr
			}
			p = p[w:]
		}
		done += int64(n)
		x.Bytes += int64(n)
		if err == io.EOF && done < size {
			return &StreamError{fmt.Errorf("data ends after %d of %d bytes: %w", done, size, io.ErrUnexpectedEOF)}
		}
		if err != nil && err != io.EOF {
			return &StreamError{err}
		}
	}
	return nil
}

// StreamError is a failure to read the tar stream (its decompression or download), as opposed
// to a failure to write what it holds.
type StreamError struct{ Err error }

func (e *StreamError) Error() string { return e.Err.Error() }
func (e *StreamError) Unwrap() error { return e.Err }

func (x *Extractor) hardlink(dfd int, base, name string, hdr *tar.Header) error {
	target, err := CleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link %s: %w", hdr.Name, err)
	}
	if target == "." {
		return fmt.Errorf("%w: hard link %s to the target directory", ErrInsecurePath, hdr.Name)
	}
	tdir, tbase := path.Split(target)
	// The target's directory is usually cached (a hard link mostly points into a directory
	// just extracted, often its own); its descriptor was opened as parent opens every one,
	// without leaving the tree. A lookup only: parent could close dfd to make room.
	if tfd, ok := x.cache[cacheKey(tdir)]; ok {
		return x.replace(dfd, base, name, func() error { return unix.Linkat(tfd, tbase, dfd, base, 0) })
	}
	if tdir == "" {
		tdir = "."
	}
	// Opened apart from the cache, so that dfd stays valid.
	tf, err := x.root.OpenFile(tdir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer tf.Close()
	tfd := int(tf.Fd())
	return x.replace(dfd, base, name, func() error { return unix.Linkat(tfd, tbase, dfd, base, 0) })
}

// dir creates a directory now and records its metadata for the end, so that a read-only
// directory can still be filled and its mtime is not changed by its children.
func (x *Extractor) dir(name string, hdr *tar.Header) error {
	if name != "." {
		d, base := path.Split(name)
		dfd, err := x.parent(d)
		if err != nil {
			return x.pathErr(hdr.Name, err)
		}
		err = unix.Mkdirat(dfd, base, 0o700)
		if errors.Is(err, unix.EEXIST) {
			var st unix.Stat_t
			if err = unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				err = x.replace(dfd, base, name, func() error { return unix.Mkdirat(dfd, base, 0o700) })
			}
		}
		if err != nil {
			return x.pathErr(hdr.Name, err)
		}
	}
	if _, ok := x.dirs[name]; !ok {
		x.order = append(x.order, name)
	}
	x.dirs[name] = hdr
	return nil
}

// finishDirs applies the metadata of every directory but the target itself (see FinishRoot).
func (x *Extractor) finishDirs() error {
	for _, name := range slices.Backward(x.order) {
		hdr := x.dirs[name]
		if name == "." {
			continue
		}
		fd, err := x.openDir(name)
		if err != nil {
			return x.pathErr(hdr.Name, err)
		}
		err = x.meta(fd, ".", fd, hdr, false)
		if err == nil {
			err = x.times(fd, ".", hdr)
		}
		unix.Close(fd)
		if err != nil {
			return x.pathErr(hdr.Name, err)
		}
	}
	return nil
}

// openDir opens the directory name without following it if it is a symlink; through its cached
// parent when it can, else through os.Root.
func (x *Extractor) openDir(name string) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if d, base := path.Split(name); name != "." {
		if pfd, err := x.parent(d); err == nil {
			if fd, err := unix.Openat(pfd, base, flags, 0); err == nil {
				return fd, nil
			}
		}
	}
	f, err := x.root.OpenFile(name, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, err
	}
	defer f.Close()
	return dupFile(f)
}

// meta applies owner, xattrs and mode (in that order) to base in dfd; fd is the open entry when
// there is one (regular files, directories), else -1; created says that the entry was just
// created by this process, so that it may already have the right owner (chown is then skipped:
// on a new entry it would change nothing, setuid bits and capabilities come later). Times are
// applied by the caller, last.
func (x *Extractor) meta(dfd int, base string, fd int, hdr *tar.Header, created bool) error {
	link := hdr.Typeflag == tar.TypeSymlink
	owned := created && x.newOwner.ok && hdr.Uid == x.newOwner.uid && hdr.Gid == x.newOwner.gid
	if x.owners && !owned {
		var err error
		if fd >= 0 {
			err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
		} else {
			err = unix.Fchownat(dfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	for _, xa := range Xattrs(hdr) {
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, xa.Name, xa.Value, 0)
		} else {
			// Symlinks, devices and fifos cannot be opened for fsetxattr; name them through
			// the directory descriptor without following the last component.
			err = unix.Lsetxattr(fmt.Sprintf("/proc/self/fd/%d/%s", dfd, base), xa.Name, xa.Value, 0)
		}
		if err != nil {
			if errors.Is(err, unix.ENOTSUP) || (!x.owners && errors.Is(err, unix.EPERM)) {
				x.warn("xattr"+xa.Name, "%s: cannot set xattr %s: %v (further ones not reported)", hdr.Name, xa.Name, err)
				continue
			}
			return fmt.Errorf("setting xattr %s: %w", xa.Name, err)
		}
	}
	if link {
		return nil
	}
	mode := uint32(hdr.Mode & 07777)
	if fd >= 0 {
		if err := unix.Fchmod(fd, mode); err != nil {
			return fmt.Errorf("chmod %o: %w", mode, err)
		}
	} else if err := unix.Fchmodat(dfd, base, mode, 0); err != nil {
		return fmt.Errorf("chmod %o: %w", mode, err)
	}
	return nil
}

func (x *Extractor) times(dfd int, base string, hdr *tar.Header) error {
	ts := entryTimes(hdr)
	if err := unix.UtimesNanoAt(dfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

// warn logs a problem once per key. Writers call it too.
func (x *Extractor) warn(key, format string, args ...any) {
	x.logMu.Lock()
	defer x.logMu.Unlock()
	if !x.warned[key] {
		x.warned[key] = true
		x.logf(format, args...)
	}
}

func (x *Extractor) log(format string, args ...any) {
	x.logMu.Lock()
	defer x.logMu.Unlock()
	x.logf(format, args...)
}

// Xattr is one extended attribute of an archive entry.
type Xattr struct {
	Name  string
	Value []byte
}

// Xattrs returns an entry's extended attributes, from GNU tar/star PAX records
// (SCHILY.xattr.NAME) and libarchive's (LIBARCHIVE.xattr.NAME, URL-encoded name, base64 value),
// sorted by name.
func Xattrs(hdr *tar.Header) []Xattr {
	var out []Xattr
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			out = append(out, Xattr{name, []byte(v)})
		} else if name, ok := strings.CutPrefix(k, "LIBARCHIVE.xattr."); ok {
			n, err1 := url.PathUnescape(name)
			val, err2 := base64.StdEncoding.WithPadding(base64.NoPadding).DecodeString(strings.TrimRight(v, "="))
			if err1 == nil && err2 == nil {
				if !slices.ContainsFunc(out, func(x Xattr) bool { return x.Name == n }) {
					out = append(out, Xattr{n, val})
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b Xattr) int { return strings.Compare(a.Name, b.Name) })
	return out
}
