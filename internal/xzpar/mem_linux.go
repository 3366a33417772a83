package xzpar

import (
	"math"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Large buffers (a block's compressed bytes and its decoded output) are mapped outside the Go
// heap, for two reasons: the kernel can take back the pages the decoder and the consumer are
// done with while the rest of the buffer is still in use (madvise), and the garbage collector
// neither scans them nor lets the heap grow to twice their size before collecting. Pages are
// only backed by memory once written, so a buffer as large as a header claims costs address
// space, not memory, until the data is there.

// maxMapped bounds one mapping: beyond it buffers come from the Go heap and grow as data
// arrives, so that a corrupt size cannot exhaust the address space.
const maxMapped = math.MaxInt32

// mapBytes returns n zero bytes outside the Go heap, or nil if that is not possible. huge asks
// for transparent huge pages: for a buffer that will be filled.
func mapBytes(n int, huge bool) []byte {
	if n <= 0 || n > maxMapped {
		return nil
	}
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	if huge && n >= 2*hugePage {
		// Transparent huge pages, where the system offers them on request: a fault per 2 MiB
		// rather than per 4 KiB as the decoder fills the buffer.
		_ = unix.Madvise(b, unix.MADV_HUGEPAGE)
	}
	return b
}

// hugePage is the size of a transparent huge page on amd64 and arm64 (with 4 KiB pages).
const hugePage = 2 << 20

// unmapBytes releases a buffer from mapBytes. Nothing may refer to it afterwards: an access
// crashes the program. An error (only possible for a slice that is not a whole mapping) leaves
// the buffer mapped.
func unmapBytes(b []byte) error {
	if h := munmapHook.Load(); h != nil {
		return (*h)(b)
	}
	return unix.Munmap(b)
}

// munmapHook replaces unix.Munmap when set: tests make it fail. Atomic, as decoders of other
// readers may still be unmapping when a test sets it.
var munmapHook atomic.Pointer[func([]byte) error]

// pageSize is the granularity of releaseBytes: whole huge pages, as releasing part of one
// splits it.
var pageSize = max(unix.Getpagesize(), hugePage)

// releaseBytes gives the whole pages of b[lo:hi] back to the kernel; b is from mapBytes and the
// range is not read again (it would read zeros). It returns how far it released, a page
// boundary at or below hi (lo when nothing was released).
func releaseBytes(b []byte, lo, hi int) int {
	start := (lo + pageSize - 1) &^ (pageSize - 1)
	end := hi &^ (pageSize - 1)
	if end <= start {
		return lo
	}
	// Failure only costs memory.
	_ = unix.Madvise(b[start:end], unix.MADV_DONTNEED)
	return end
}

// memAvailable returns MemAvailable from /proc/meminfo: the memory the kernel can give without
// swapping, free pages and caches it can drop.
func memAvailable() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseMemAvailable(f)
}
