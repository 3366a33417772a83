package xzpar

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Options configures NewReaderOptions. The zero value decodes up to runtime.GOMAXPROCS(0)
// blocks at once within a quarter of the memory available.
type Options struct {
	// Workers is the number of blocks decoded at once; 0 means runtime.GOMAXPROCS(0).
	Workers int

	// MemoryBudget bounds, in bytes, the memory the reader's buffers take: the compressed
	// and decoded bytes of the blocks in flight, or the window of a block decoded as it is
	// read. A block whose buffers do not fit is decoded sequentially into a window of about
	// its dictionary size (see NewReaderOptions).
	//
	// 0 derives the budget from MemAvailable in /proc/meminfo: a quarter of what is
	// available after Reserve, and at least MinMemoryBudget (FallbackMemoryBudget where
	// /proc/meminfo cannot be read). It is read once, and only if the reader needs more
	// than MinMemoryBudget. Below 0, every block is decoded as it is read.
	MemoryBudget int64

	// Reserve is memory that the caller will take while the reader runs, subtracted from
	// MemAvailable when MemoryBudget is 0: when extracting into a tmpfs, which lives in RAM,
	// the uncompressed size of the data (or the tmpfs size, if smaller).
	Reserve int64
}

const (
	// MinMemoryBudget is the least budget worked out from MemAvailable: enough to stream a block
	// written by xz -6 (8 MiB dictionary) with room for small blocks decoded ahead.
	MinMemoryBudget = 32 << 20
	// FallbackMemoryBudget is the budget where MemAvailable cannot be read.
	FallbackMemoryBudget = 256 << 20
)

// budgetFromAvailable turns MemAvailable into a budget: a quarter of what the caller leaves.
func budgetFromAvailable(avail, reserve int64) int64 {
	return max((avail-max(reserve, 0))/4, MinMemoryBudget)
}

// parseMemAvailable returns MemAvailable, in bytes, from the contents of /proc/meminfo.
func parseMemAvailable(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("parsing MemAvailable: %q", rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<53 {
			return 0, fmt.Errorf("parsing MemAvailable: %q", rest)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no MemAvailable")
}

// memory is a reader's account of its large buffers. The dispatcher reserves a block's
// buffers from the budget before it reads the block; a buffer's reservation comes back as its
// pages are given to the kernel and when it is freed. It also counts the bytes mapped, to show
// that the reservations hold what is really mapped.
//
// Each buffer's reservation is its exact size, so that a mapping returns what was reserved
// for it as it is released page by page; a buffer on the Go heap returns its reservation
// whole when it is freed.
type memory struct {
	mu    sync.Mutex
	cond  sync.Cond
	limit int64        // 0 until resolved
	find  func() int64 // resolves limit when it is first needed
	used  int64        // reserved and not given back
	open  bool         // false once the reader is closed: nobody waits any more

	mapped, peakMapped int64 // bytes mapped and not given back, and their high-water mark
	peakUsed           int64
	blocks, peakBlocks int // blocks holding an output reservation
}

// newMemory returns the account of a reader with options o.
func newMemory(o Options) *memory {
	m := &memory{limit: o.MemoryBudget, open: true}
	if m.limit < 0 {
		m.limit = 1
	}
	m.find = func() int64 {
		avail, err := memAvailable()
		if err != nil {
			return FallbackMemoryBudget
		}
		return budgetFromAvailable(avail, o.Reserve)
	}
	m.cond.L = &m.mu
	return m
}

// budget returns the limit, resolving it on first use. m.mu is held.
func (m *memory) budget() int64 {
	if m.limit <= 0 {
		m.limit = max(m.find(), 1)
	}
	return m.limit
}

// within reports whether n bytes are within the budget. It resolves a derived budget only if
// n is more than any derived budget can be less than. m.mu is held.
func (m *memory) within(n int64) bool {
	if n <= MinMemoryBudget && m.limit <= 0 {
		return true
	}
	return n <= m.budget()
}

// fits reports whether a buffer of n bytes can ever be reserved without exceeding the budget.
func (m *memory) fits(n int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.within(n)
}

// reserve waits until n more bytes are within the budget, and takes them. A request larger
// than the whole budget (the window of a block whose dictionary is larger than the budget)
// waits until nothing else is reserved: the budget is then exceeded by as little as can be.
// It returns errClosed if the reader is closed meanwhile.
func (m *memory) reserve(n int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.open && m.used > 0 && !m.within(m.used+n) {
		m.cond.Wait()
	}
	if !m.open {
		return errClosed
	}
	m.used += n
	m.peakUsed = max(m.peakUsed, m.used)
	return nil
}

// unreserve gives back n reserved bytes.
func (m *memory) unreserve(n int64) {
	if n == 0 {
		return
	}
	m.mu.Lock()
	m.used -= n
	m.cond.Broadcast()
	m.mu.Unlock()
}

// close wakes a dispatcher waiting for memory, for good.
func (m *memory) close() {
	m.mu.Lock()
	m.open = false
	m.cond.Broadcast()
	m.mu.Unlock()
}

// mapBytes maps n bytes (see mapBytes) and counts them; their reservation is the caller's.
func (m *memory) mapBytes(n int, huge bool) []byte {
	b := mapBytes(n, huge)
	if b != nil {
		m.mu.Lock()
		m.mapped += int64(n)
		m.peakMapped = max(m.peakMapped, m.mapped)
		m.mu.Unlock()
	}
	return b
}

// release gives the pages of b[lo:hi] back to the kernel (see releaseBytes), and their
// reservation back to the budget. lo is what an earlier call returned, or 0.
func (m *memory) release(b []byte, lo, hi int) int {
	end := releaseBytes(b, lo, hi)
	if n := int64(end - lo); n > 0 {
		m.mu.Lock()
		m.mapped -= n
		m.used -= n
		m.cond.Broadcast()
		m.mu.Unlock()
	}
	return end
}

// free returns a buffer and its reservation: charge bytes, of which a mapping gave back
// b[:released] already. A mapping is unmapped; nothing may refer to it afterwards.
func (m *memory) free(b []byte, mapped bool, released int, charge int64) error {
	var err error
	if mapped {
		err = unmapBytes(b)
		if err == nil {
			m.mu.Lock()
			m.mapped -= int64(len(b) - released)
			m.mu.Unlock()
		} else {
			err = fmt.Errorf("xzpar: munmap: %w", err)
		}
		charge -= int64(released)
	}
	m.unreserve(charge)
	return err
}

// blockStarted and blockDone count the blocks in flight, from the reservation of their
// buffers to their release.
func (m *memory) blockStarted() {
	m.mu.Lock()
	m.blocks++
	m.peakBlocks = max(m.peakBlocks, m.blocks)
	m.mu.Unlock()
}

func (m *memory) blockDone() {
	m.mu.Lock()
	m.blocks--
	m.mu.Unlock()
}

// memStats is what tests learn of a reader's memory.
type memStats struct {
	budget             int64 // 0 if not resolved
	used, peakUsed     int64
	mapped, peakMapped int64
	blocks, peakBlocks int
}

func (m *memory) stats() memStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return memStats{
		budget: m.limit,
		used:   m.used, peakUsed: m.peakUsed,
		mapped: m.mapped, peakMapped: m.peakMapped,
		blocks: m.blocks, peakBlocks: m.peakBlocks,
	}
}
