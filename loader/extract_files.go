package loader

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Writing a root file system into a tmpfs is bound by the kernel's work for each file (creating
// the inode, copying the data into the page cache, setting mode and times), not by decoding.
// So regular files' data is written by a few goroutines (writers) while the extractor reads the
// next headers; everything that changes names (creating, replacing and removing entries, hard
// links, symlinks, directories) stays in the extractor's goroutine, in archive order:
//
//   - a file is created (O_EXCL) by the extractor before the next entry is read, so a hard link
//     to it, or a later entry that replaces it, finds it where tar would; a writer holds only
//     the file's descriptor, never a name, so it cannot be led outside the target;
//   - a writer applies data → chown → xattrs → chmod → times to its file, the order that keeps
//     setuid bits and capabilities (a chown clears them);
//   - directories' metadata is applied only once every writer has finished (Extract waits for
//     them before finishDirs), so that a read-only or setgid directory, or its mtime, is final;
//   - the first failure, the extractor's or a writer's, stops the extraction: writers then
//     close what they hold without writing, and Extract returns only once all have stopped.
//
// The data in flight is bounded: the extractor reads each file into chunks taken from a fixed
// set (writerChunks of writerChunkSize); a file larger than a chunk is streamed, chunk by chunk,
// to the writer that took it.
//
// Files that fit in a chunk are packed, one after the other, into the chunk the extractor is
// filling, and handed over together (a batch) once the chunk is full, or holds maxBatch files,
// or before the extractor would wait: a root file system is mostly small files, and handing
// each over on its own woke a writer for every one (on 2 CPUs, the extractor then waited for a
// CPU after most of its own system calls: sysmon hands a P that has a goroutine to run over to
// another thread while the extractor is in openat).

const (
	writerChunkSize = 128 << 10
	writerChunks    = 16 // 2 MiB of file data in flight
	maxWriters      = 4
	maxBatch        = 16 // files handed over at once
)

// extractWriters is the number of writer goroutines when the decompression leaves the CPUs
// free (see Extractor.decoders); 0 writes in the extractor's goroutine. Tests change it.
var extractWriters = func() int {
	n := runtime.GOMAXPROCS(0)
	if n < 2 {
		return 0 // one CPU: handing files over would only add work
	}
	return min(n, maxWriters)
}

// writerCount is the size of the writer pool: extractWriters, less the CPUs the decompression
// keeps busy. Writers that compete with decoders for a CPU only slow the decoding, or the
// extractor, and one of the two bounds the load. On 2 CPUs, a 134 MB Debian root: the xz
// decoder has a goroutine per CPU, and the load took 4% longer with two writers than written
// in the extractor's goroutine, and 3% more CPU; zstd's decoder has one, and the load took
// 3.5% longer with two writers than with one (medians of 15 alternating rounds).
func (x *Extractor) writerCount() int {
	n := extractWriters()
	if x.decoders > 0 {
		n = min(n, runtime.GOMAXPROCS(0)-x.decoders)
	}
	return max(n, 0)
}

// poolHook, when set (by tests), is told the size of each writer pool.
var poolHook func(int)

// writerHook, when set (by tests), runs in a writer before it writes a file.
var writerHook func(*tar.Header)

// fileJob is one regular file for a writer: created and open, data to come.
type fileJob struct {
	fd  int
	hdr *tar.Header
	// modeSet: the file was created with its final mode, nothing (chown, xattrs) changes it.
	modeSet bool
	data    []byte      // all the data, when it fits one chunk (in its batch's chunk)
	more    chan []byte // else the chunks in order, closed after the last one
}

// batch is what a writer takes at once: files packed into one chunk, returned once they are
// all written; or one file streamed through more (chunk nil).
type batch struct {
	jobs  []*fileJob
	chunk []byte
	used  int // chunk[:used] holds the jobs' data
}

// writers is the pool of goroutines that finish regular files.
type writers struct {
	x      *Extractor
	jobs   chan *batch
	free   chan []byte
	cur    *batch // the batch the extractor is filling; extractor only
	wg     sync.WaitGroup
	failed atomic.Bool
	mu     sync.Mutex
	err    error // the first failure of the extraction
	closed bool
}

func (x *Extractor) startWriters(n int) {
	if poolHook != nil {
		poolHook(n)
	}
	if n <= 0 {
		return
	}
	w := &writers{x: x, jobs: make(chan *batch, writerChunks), free: make(chan []byte, writerChunks)}
	for range writerChunks {
		w.free <- make([]byte, writerChunkSize)
	}
	w.wg.Add(n)
	for range n {
		go w.run()
	}
	x.w = w
}

// stopWriters waits for the writers to finish what they hold and returns the first failure
// (err, the extractor's own, unless a writer's came first).
func (x *Extractor) stopWriters(err error) error {
	w := x.w
	if w == nil {
		return err
	}
	if err != nil {
		w.fail(err)
	}
	w.flush() // with a failure recorded, the writers close its files unwritten
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.jobs)
	}
	w.mu.Unlock()
	w.wg.Wait()
	x.w = nil
	return w.firstErr()
}

// fail records err unless an earlier failure was recorded; writers stop writing.
func (w *writers) fail(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	w.failed.Store(true)
}

func (w *writers) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *writers) run() {
	defer w.wg.Done()
	for b := range w.jobs {
		for _, j := range b.jobs {
			w.do(j)
		}
		w.put(b.chunk)
	}
}

// flush hands the batch being filled to the writers. Extractor only.
func (w *writers) flush() {
	if b := w.cur; b != nil {
		w.cur = nil
		w.jobs <- b
	}
}

// chunk returns a free chunk, handing the pending batch over first if it has to wait for one
// (the chunks may all be in the writers' hands or in that batch).
func (w *writers) chunk() []byte {
	select {
	case c := <-w.free:
		return c
	default:
	}
	w.flush()
	return <-w.free
}

// do writes and finishes one file. A panic in it is the extraction's error, not a crash (the
// extractor runs in PID 1); the job is drained all the same, so that its chunks come back.
func (w *writers) do(j *fileJob) {
	closed := false
	defer func() {
		if p := recover(); p != nil {
			w.fail(panicError(p))
			if !closed {
				unix.Close(j.fd)
			}
			w.drain(j)
		}
	}()
	if writerHook != nil {
		writerHook(j.hdr)
	}
	var err error
	if w.failed.Load() {
		err = errAbandoned
	} else {
		err = writeAll(j.fd, j.data)
	}
	if j.more != nil {
		for c := range j.more {
			if err == nil && !w.failed.Load() {
				err = writeAll(j.fd, c)
			}
			w.put(c)
		}
	}
	if err == nil && w.failed.Load() {
		err = errAbandoned // the extraction failed meanwhile (perhaps in the middle of this file)
	}
	closed = true
	if err = w.x.finishFile(j, err); err != nil && !errors.Is(err, errAbandoned) {
		w.fail(err)
	}
}

func (w *writers) drain(j *fileJob) {
	if j.more != nil {
		for c := range j.more {
			w.put(c)
		}
	}
}

func (w *writers) put(c []byte) {
	if c != nil {
		w.free <- c[:cap(c)]
	}
}

// errAbandoned stands for a file not finished because the extraction failed elsewhere.
var errAbandoned = errors.New("extraction abandoned")

// writeAll writes p to fd.
func writeAll(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// sendFile hands the regular file just created as fd to the writers, reading its data from r.
// The extractor's goroutine keeps reading: it returns once the data is read, not written.
func (x *Extractor) sendFile(fd int, hdr *tar.Header, r io.Reader, modeSet bool) error {
	w := x.w
	j := &fileJob{fd: fd, hdr: hdr, modeSet: modeSet}
	size := hdr.Size
	if size <= writerChunkSize {
		// Packed into the batch being filled, or a new one when it has no room left.
		if w.cur != nil && int64(len(w.cur.chunk)-w.cur.used) < size {
			w.flush()
		}
		if w.cur == nil {
			c := w.chunk()
			w.cur = &batch{chunk: c, jobs: make([]*fileJob, 0, maxBatch)}
		}
		b := w.cur
		n, err := x.readData(r, b.chunk[b.used:b.used+int(size)], 0, size)
		j.data = b.chunk[b.used : b.used+n]
		b.used += n
		b.jobs = append(b.jobs, j)
		if err != nil {
			// Recorded before a writer sees the job, so that it does not finish a truncated
			// file.
			w.fail(x.pathErr(hdr.Name, err))
			w.flush()
			return err
		}
		if len(b.jobs) == maxBatch {
			w.flush()
		}
		return nil
	}
	// Streamed: the batch being filled goes first, then this file on its own.
	w.flush()
	j.more = make(chan []byte, writerChunks)
	w.jobs <- &batch{jobs: []*fileJob{j}}
	var rerr error
	for done := int64(0); done < size; {
		c := w.chunk()
		n, err := x.readData(r, c[:min(int64(len(c)), size-done)], done, size)
		done += int64(n)
		j.more <- c[:n]
		if err != nil {
			rerr = err
			break
		}
	}
	if rerr != nil {
		// Recorded before the writer sees the end of the data, so that it does not finish a
		// truncated file.
		w.fail(x.pathErr(hdr.Name, rerr))
	}
	close(j.more)
	return rerr
}

// readData reads len(p) bytes of an entry's data, of which done of size were read before.
func (x *Extractor) readData(r io.Reader, p []byte, done, size int64) (int, error) {
	n, err := io.ReadFull(r, p)
	x.Bytes += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return n, &StreamError{fmt.Errorf("data ends after %d of %d bytes: %w", done+int64(n), size, io.ErrUnexpectedEOF)}
		}
		return n, &StreamError{err}
	}
	return n, nil
}

// finishFile applies a regular file's metadata once its data is written (err is the
// writing's outcome) and closes it.
func (x *Extractor) finishFile(j *fileJob, err error) error {
	if err == nil && !j.modeSet {
		err = x.meta(-1, "", j.fd, j.hdr, true)
	}
	if err == nil {
		err = futimens(j.fd, j.hdr)
	}
	if cerr := unix.Close(j.fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil && !errors.Is(err, errAbandoned) {
		return x.pathErr(j.hdr.Name, err)
	}
	return err
}

// futimens sets the times of the open file fd: utimensat with a NULL path, as the C library's
// futimens does (x/sys/unix passes "" for a path, which the kernel refuses).
func futimens(fd int, hdr *tar.Header) error {
	ts := entryTimes(hdr)
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return fmt.Errorf("setting times: %w", e)
	}
	return nil
}

// entryTimes is an entry's access and modification time; the access time is now when the
// archive has none, as with GNU tar.
func entryTimes(hdr *tar.Header) [2]unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = time.Now()
	}
	return [2]unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
}

// createMode returns the mode to create a regular file with, and whether that is its final
// mode, which saves a chmod for most files: true when the permission bits survive the umask
// and no default ACL of the directory (dirACL) replaces them, and when nothing applied later
// changes them: no setuid, setgid or sticky bit, no xattrs (an access ACL rewrites the group
// bits), no chown (the file's interim owner is then its final one).
func (x *Extractor) createMode(hdr *tar.Header, dirACL bool) (uint32, bool) {
	perm := uint32(hdr.Mode & 07777)
	switch {
	case x.umask < 0, dirACL, perm&^0o777 != 0, uint32(x.umask)&perm != 0,
		x.owners && !(x.newOwner.ok && hdr.Uid == x.newOwner.uid && hdr.Gid == x.newOwner.gid):
		return 0o600, false
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") || strings.HasPrefix(k, "LIBARCHIVE.xattr.") {
			return 0o600, false
		}
	}
	return perm, true
}

// processUmask reads the umask from /proc/self/status (Linux 4.7+) rather than with umask(2),
// which would have to change it; -1 when it is not known.
func processUmask() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := bytes.CutPrefix(s.Bytes(), []byte("Umask:")); ok {
			m, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 32)
			if err != nil || m > 0o777 {
				return -1
			}
			return int(m)
		}
	}
	return -1
}

// hasDefaultACL tells whether the directory fd has a default ACL, which sets the mode of what
// is created in it in place of the umask; true when that cannot be told.
func hasDefaultACL(fd int) bool {
	_, err := unix.Fgetxattr(fd, "system.posix_acl_default", nil)
	return !(errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP))
}
