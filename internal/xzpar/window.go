package xzpar

import (
	"bufio"
	"errors"
	"fmt"
	"hash"
	"io"
)

// chunkSource supplies LZMA2 data in pieces.
type chunkSource interface {
	// next returns the next n bytes (n <= 1<<16) in b[:n]; len(b) is at
	// least n+rcPad so the range decoder may read past the end.
	next(n int) ([]byte, error)
}

// sliceSource reads LZMA2 data from a buffered block. buf must extend at
// least rcPad bytes past end.
type sliceSource struct {
	buf      []byte
	off, end int
	mem      *memory // if buf is from mem.mapBytes: the pages read are given back as decoding proceeds
	released *int    // buf[:*released] was given back
}

func (s *sliceSource) next(n int) ([]byte, error) {
	if n > s.end-s.off {
		return nil, fmt.Errorf("%w: lzma2 data exceeds the block's compressed size", ErrCorrupt)
	}
	if s.mem != nil && s.off-*s.released >= 1<<20 {
		// Slices returned before are no longer in use.
		*s.released = s.mem.release(s.buf, *s.released, s.off)
	}
	b := s.buf[s.off : s.off+n+rcPad]
	s.off += n
	return b, nil
}

// streamSource reads LZMA2 data straight from the input, for blocks decoded
// as they are read, counting the bytes consumed.
type streamSource struct {
	r       *bufio.Reader
	scratch []byte // 1<<16 + rcPad bytes
	n       int64
	limit   int64 // the block's compressed size, or -1
}

func (s *streamSource) next(n int) ([]byte, error) {
	if s.limit >= 0 && int64(n) > s.limit-s.n {
		return nil, fmt.Errorf("%w: lzma2 data exceeds the block's compressed size", ErrCorrupt)
	}
	b := s.scratch[:n+rcPad]
	if _, err := io.ReadFull(s.r, b[:n]); err != nil {
		return nil, inputErr(err)
	}
	s.n += int64(n)
	return b, nil
}

// inputErr turns an error from the input into one that cannot be mistaken
// for a clean end of data.
func inputErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated input: %w", ErrCorrupt, io.ErrUnexpectedEOF)
	}
	return fmt.Errorf("reading xz input: %w", err)
}

// window is the decoder's output: a linear buffer that holds both the
// dictionary (history) and the decoded bytes the consumer has yet to read.
//
// A block decoded from a buffer is decoded into a buffer that holds the
// whole block (slide == false), because blocks decoded ahead of the consumer
// must be kept anyway. A block decoded while streaming its input
// (slide == true) is bounded: once the buffer reaches its maximum, the
// decoder waits for the consumer to catch up and moves the last dictSize
// bytes to the front.
type window struct {
	b         *block
	buf       []byte
	pos       int // write position
	dictStart int // matches may not reach before this
	posBase   int // position of the last dictionary reset, for contexts
	dictSize  uint32
	total     int64 // bytes produced by the block
	limit     int64 // uncompressed size from the block header, or -1
	slide     bool
	maxBuf    int // with slide, the buffer size at which to slide
	h         hash.Hash
}

func (w *window) resetDict() { w.dictStart, w.posBase = w.pos, w.pos }

// reserve makes room for n more bytes at w.buf[w.pos:].
func (w *window) reserve(n int) error {
	if w.limit >= 0 && w.total+int64(n) > w.limit {
		return fmt.Errorf("%w: block is larger than its header says", ErrCorrupt)
	}
	if w.pos+n <= len(w.buf) {
		return nil
	}
	if w.slide && len(w.buf) >= w.maxBuf {
		return w.slideDown(n)
	}
	size := 2 * len(w.buf)
	if size < 1<<20 {
		size = 1 << 20
	}
	if w.limit >= 0 && int64(size) > w.limit-w.total+int64(w.pos) {
		size = int(w.limit - w.total + int64(w.pos))
	}
	if w.slide && size > w.maxBuf {
		size = w.maxBuf
	}
	if size < w.pos+n {
		size = w.pos + n
	}
	nb := make([]byte, size)
	copy(nb, w.buf[:w.pos])
	// The consumer may still be reading the old buffer; its published
	// bytes are never written again, so it stays valid.
	w.b.mu.Lock()
	w.b.buf = nb
	w.b.mu.Unlock()
	w.buf = nb
	return nil
}

// slideDown waits until the consumer has read everything, then keeps only
// the dictionary at the start of the buffer.
func (w *window) slideDown(n int) error {
	b := w.b
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.rd != b.avail && !b.abandoned {
		b.writerWaiting = true
		b.cond.Wait()
	}
	b.writerWaiting = false
	if b.abandoned {
		return errClosed
	}
	keep := w.pos - w.dictStart
	if keep > int(w.dictSize) {
		keep = int(w.dictSize)
	}
	shift := w.pos - keep
	copy(w.buf, w.buf[shift:w.pos])
	w.pos = keep
	w.dictStart = 0
	w.posBase -= shift
	b.rd, b.avail = keep, keep
	if w.pos+n > len(w.buf) {
		return fmt.Errorf("xzpar: internal error: window too small")
	}
	return nil
}

// commit publishes n bytes written at w.buf[w.pos:] to the consumer.
func (w *window) commit(n int) error {
	if w.h != nil {
		w.h.Write(w.buf[w.pos : w.pos+n])
	}
	w.pos += n
	w.total += int64(n)
	b := w.b
	b.mu.Lock()
	b.avail = w.pos
	if b.readerWaiting {
		b.cond.Broadcast()
	}
	abandoned := b.abandoned
	b.mu.Unlock()
	if abandoned {
		return errClosed
	}
	return nil
}
