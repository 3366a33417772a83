// Package xzpar decodes xz data from a stream, decoding independent blocks
// in parallel.
//
// Multi-threaded xz encoders (xz -T, pixz) split their input into blocks
// whose headers record the compressed size, so a sequential reader can cut
// the input into blocks without decoding it and hand each block to a
// different core. Output is delivered in order; the block being read streams
// to the consumer as it is decoded, and at most a fixed number of blocks is
// in memory at once. Blocks without a recorded size (single-threaded xz) are
// decoded sequentially with a bounded window.
//
// Only the LZMA2 filter is supported; that is what xz and pixz produce by
// default.
package xzpar

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// Errors returned by the decoder; they are wrapped with details, so test
// them with errors.Is.
var (
	// ErrFormat means the input is not xz data, or uses a feature (filter,
	// check type, flag) this package does not support.
	ErrFormat = errors.New("xzpar: not supported xz data")
	// ErrCorrupt means the data is corrupt or truncated.
	ErrCorrupt = errors.New("xzpar: corrupt xz data")
	// ErrCheck means a block's CRC32, CRC64 or SHA-256 does not match.
	ErrCheck = errors.New("xzpar: xz check mismatch")
	// ErrPanic means a goroutine of the reader panicked: a bug, in the decoder (an error for
	// corrupt data then wraps ErrCorrupt too) or in the input reader. The message holds the
	// panic value and the goroutine's stack. The reader never lets a panic crash the program.
	ErrPanic = errors.New("xzpar: panic")
)

// panicError turns a recovered panic value into an error wrapping ErrPanic; called in the
// deferred function that recovered, so that the stack is the panicking goroutine's.
func panicError(where string, p any) error {
	return fmt.Errorf("%w in %s: %v\n%s", ErrPanic, where, p, debug.Stack())
}

var errClosed = errors.New("xzpar: reader closed")

// maxCompressedBlock bounds a block's recorded compressed size so that a
// corrupt header cannot make the reader allocate without reading.
const maxCompressedBlock = 1 << 40

// block is one xz block, from the dispatcher through a decoder to the
// consumer.
type block struct {
	x          *reader
	num        int // 1-based over the whole input, for messages
	hdr        blockHeader
	check      byte
	comp       []byte // buffered block (header..check) + rcPad, if hdr.compressed >= 0
	compMapped bool   // comp is from mapBytes

	mu            sync.Mutex
	cond          sync.Cond
	buf           []byte // output window; b.buf[rd:avail] is unread
	mapped        bool   // buf is from mapBytes: it never moves, and is unmapped once both sides are done
	rd, avail     int
	done          bool // the decoder is done with the block
	dropped       bool // the consumer is done with the block (read or abandoned)
	err           error
	abandoned     bool
	readerWaiting bool
	writerWaiting bool

	// Valid once done without error.
	unpadded, uncompressed int64

	released int // consumer only: b.buf[:released] was given back to the kernel
}

// readChunk bounds how much of a block's output the consumer takes at once, so that it gives
// the pages it has read back to the kernel as it goes rather than at the end of the block.
const readChunk = 4 << 20

// unmapLocked detaches a mapped output buffer once both the decoder and the consumer are done
// with it, for the caller to unmap after unlocking. b.mu is held.
func (b *block) unmapLocked() []byte {
	if !b.mapped || !b.done || !b.dropped || b.buf == nil {
		return nil
	}
	buf := b.buf
	b.buf = nil
	return buf
}

func (x *reader) newBlock(num int, h blockHeader, check byte) *block {
	b := &block{x: x, num: num, hdr: h, check: check}
	b.cond.L = &b.mu
	return b
}

// finish marks the block decoded (or failed) and wakes the consumer.
func (b *block) finish(err error) {
	b.mu.Lock()
	if err != nil && !errors.Is(err, errClosed) {
		b.err = fmt.Errorf("decoding block %d: %w", b.num, err)
	}
	b.done = true
	b.cond.Broadcast()
	buf := b.unmapLocked()
	b.mu.Unlock()
	if buf != nil {
		b.x.unmap(buf)
	}
}

// next records that the consumer has read up to consumed, then waits for
// more output. It returns the buffer and the unread range, which is empty
// once the block is done.
func (b *block) next(consumed int) ([]byte, int, int, error) {
	b.mu.Lock()
	b.rd = consumed
	if b.writerWaiting {
		b.cond.Broadcast()
	}
	// What was read is not needed again, except as the dictionary of a block still being
	// decoded: matches reach back at most the dictionary size.
	free, buf := consumed, b.buf
	if !b.done {
		free = min(free, b.avail-int(b.hdr.dictSize))
	}
	if !b.mapped || free-b.released < readChunk {
		buf = nil
	}
	if buf != nil {
		// Without the lock: the decoder never touches these bytes again, and the buffer is not
		// unmapped before the consumer is done with it.
		b.mu.Unlock()
		b.released = releaseBytes(buf, b.released, free)
		b.mu.Lock()
	}
	for b.rd == b.avail && !b.done {
		b.readerWaiting = true
		b.cond.Wait()
	}
	b.readerWaiting = false
	defer b.mu.Unlock()
	if b.rd < b.avail {
		return b.buf, b.rd, min(b.avail, b.rd+readChunk), nil
	}
	if b.err != nil {
		return nil, 0, 0, b.err
	}
	return nil, 0, 0, io.EOF
}

// abandon tells the decoder that nobody will read the block; the consumer is done with it.
func (b *block) abandon() {
	b.mu.Lock()
	b.abandoned = true
	b.dropped = true
	b.cond.Broadcast()
	buf := b.unmapLocked()
	b.mu.Unlock()
	if buf != nil {
		b.x.unmap(buf)
	}
}

// item is what the dispatcher sends the consumer, in input order.
type item struct {
	b     *block      // a block to read
	index *indexState // end of a stream: the records its index lists
	err   error       // the input cannot be decoded further
}

// freeList keeps a few byte buffers for reuse.
type freeList struct {
	mu   sync.Mutex
	bufs [][]byte
	max  int
}

// get returns a buffer of length n, reusing a free one if it is big enough.
func (f *freeList) get(n int) []byte {
	f.mu.Lock()
	for i, b := range f.bufs {
		if cap(b) >= n {
			f.bufs = append(f.bufs[:i], f.bufs[i+1:]...)
			f.mu.Unlock()
			return b[:n]
		}
	}
	f.mu.Unlock()
	return make([]byte, n)
}

func (f *freeList) put(b []byte) {
	if b == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bufs) < f.max {
		f.bufs = append(f.bufs, b)
		return
	}
	// Keep the biggest buffers.
	for i, c := range f.bufs {
		if cap(c) < cap(b) {
			f.bufs[i] = b
			return
		}
	}
}

// reader implements NewReader's io.ReadCloser.
type reader struct {
	br      *bufio.Reader
	workers int
	check   byte // check ID of the first stream, from NewReader

	sem     chan struct{} // one token per block in flight
	queue   chan item
	closing chan struct{}

	outBufs  freeList
	compBufs freeList
	decMu    sync.Mutex
	decs     []*lzma2Dec

	// Consumer state, used only by Read.
	cur     *block
	curBuf  []byte
	lo, hi  int
	seen    indexState // blocks read in the current stream
	err     error
	closeMu sync.Once

	unmapErr atomic.Pointer[error] // the first failure to unmap a buffer
}

// unmap releases a buffer from mapBytes. A failure (a bug: the buffer was not a whole mapping)
// leaks the buffer and fails the reader's next Read.
func (x *reader) unmap(b []byte) {
	if err := unmapBytes(b); err != nil {
		err = fmt.Errorf("xzpar: munmap: %w", err)
		x.unmapErr.CompareAndSwap(nil, &err)
	}
}

// NewReader decodes the xz data in r (one or more concatenated streams, with
// stream padding). Blocks whose headers record their compressed size are
// decoded in parallel by up to workers goroutines (0 = runtime.GOMAXPROCS);
// output is delivered in order. Memory is bounded: at most workers blocks
// are in flight, each holding its compressed bytes and its decoded output
// (or, for blocks of unknown size, a window of about the dictionary size).
//
// NewReader reads the first stream header and returns an error wrapping
// ErrFormat if r does not hold xz data. Decoding errors are returned by Read
// and wrap ErrCorrupt or ErrCheck; input that ends early is never reported
// as io.EOF. Close stops the decoding goroutines but does not close r; a
// goroutine blocked reading r exits when that read returns. Like most
// readers, the result is not safe for concurrent use: do not call Close
// while a Read is in progress.
func NewReader(r io.Reader, workers int) (io.ReadCloser, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	br := bufio.NewReaderSize(r, 1<<16)
	var hdr [streamHeaderSize]byte
	n, err := io.ReadFull(br, hdr[:])
	if n < len(headerMagic) || !bytes.Equal(hdr[:len(headerMagic)], headerMagic) {
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("reading xz header: %w", err)
		}
		return nil, ErrFormat
	}
	if err != nil {
		return nil, fmt.Errorf("reading xz header: %w", inputErr(err))
	}
	check, err := parseStreamHeader(hdr[:])
	if err != nil {
		return nil, fmt.Errorf("reading xz header: %w", err)
	}
	if _, err := newCheck(check); err != nil {
		return nil, err
	}
	x := &reader{
		br:      br,
		workers: workers,
		check:   check,
		sem:     make(chan struct{}, workers),
		queue:   make(chan item, workers+4),
		closing: make(chan struct{}),
	}
	x.outBufs.max = workers + 1
	x.compBufs.max = workers + 1
	go x.dispatch()
	return x, nil
}

// Read implements io.Reader.
func (x *reader) Read(p []byte) (int, error) {
	if e := x.unmapErr.Load(); e != nil && x.err == nil {
		x.err = *e
	}
	for {
		if x.lo < x.hi {
			n := copy(p, x.curBuf[x.lo:x.hi])
			x.lo += n
			return n, nil
		}
		if x.err != nil {
			return 0, x.err
		}
		if x.cur != nil {
			buf, lo, hi, err := x.cur.next(x.hi)
			switch {
			case err == nil:
				x.curBuf, x.lo, x.hi = buf, lo, hi
			case err == io.EOF:
				x.seen.add(uint64(x.cur.unpadded), uint64(x.cur.uncompressed))
				x.release(x.cur)
				x.cur, x.curBuf, x.lo, x.hi = nil, nil, 0, 0
			default:
				x.err = err
			}
			continue
		}
		it, ok := <-x.queue
		switch {
		case !ok:
			x.err = io.EOF
		case it.err != nil:
			x.err = it.err
		case it.index != nil:
			if !x.seen.equal(*it.index) {
				x.err = fmt.Errorf("%w: index does not match the blocks", ErrCorrupt)
			}
			x.seen = indexState{}
		default:
			x.cur = it.b
		}
	}
}

// release returns a fully read block's resources.
func (x *reader) release(b *block) {
	b.mu.Lock()
	b.dropped = true
	buf := b.buf
	if b.mapped {
		buf = b.unmapLocked() // the decoder is done: the block ended
	}
	b.buf = nil
	b.mu.Unlock()
	if b.mapped {
		if buf != nil {
			x.unmap(buf)
		}
	} else {
		x.outBufs.put(buf)
	}
	<-x.sem
}

// Close stops decoding and releases the reader's goroutines.
func (x *reader) Close() error {
	x.closeMu.Do(func() {
		close(x.closing)
		if x.cur != nil {
			x.cur.abandon()
		}
		go func() {
			// Nobody is left to hear of a panic here: it must not crash the program.
			defer func() { _ = recover() }()
			for it := range x.queue {
				if it.b != nil {
					it.b.abandon()
				}
			}
		}()
		if x.err == nil {
			x.err = errClosed
		}
		x.cur, x.curBuf, x.lo, x.hi = nil, nil, 0, 0
	})
	if e := x.unmapErr.Load(); e != nil {
		return *e
	}
	return nil
}

func (x *reader) getDec() *lzma2Dec {
	x.decMu.Lock()
	defer x.decMu.Unlock()
	if n := len(x.decs); n > 0 {
		d := x.decs[n-1]
		x.decs = x.decs[:n-1]
		return d
	}
	return new(lzma2Dec)
}

func (x *reader) putDec(d *lzma2Dec) {
	x.decMu.Lock()
	x.decs = append(x.decs, d)
	x.decMu.Unlock()
}

// send passes an item to the consumer unless the reader is closed.
func (x *reader) send(it item) bool {
	select {
	case x.queue <- it:
		return true
	case <-x.closing:
		if it.b != nil {
			it.b.abandon()
		}
		return false
	}
}

// dispatch reads the input, cutting it into blocks for the decoders.
func (x *reader) dispatch() {
	defer close(x.queue)
	if err := x.readStreamsProtected(); err != nil && !errors.Is(err, errClosed) {
		x.send(item{err: err})
	}
}

// readStreamsProtected is readStreams with a panic (in the input reader, say) as its error.
func (x *reader) readStreamsProtected() (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError("reading the xz input", p)
		}
	}()
	return x.readStreams()
}

func (x *reader) readStreams() error {
	check := x.check
	num := 0
	for {
		if err := x.readStream(check, &num); err != nil {
			return err
		}
		// Stream padding: groups of four zero bytes, then another stream
		// or the end.
		for {
			b, err := x.br.Peek(4)
			if len(b) == 0 && errors.Is(err, io.EOF) {
				return nil
			}
			if len(b) < 4 {
				if errors.Is(err, io.EOF) {
					return fmt.Errorf("%w: trailing bytes after stream", ErrCorrupt)
				}
				return inputErr(err)
			}
			if b[0]|b[1]|b[2]|b[3] != 0 {
				break
			}
			x.br.Discard(4)
		}
		var hdr [streamHeaderSize]byte
		n, err := io.ReadFull(x.br, hdr[:])
		if err != nil && (n < len(headerMagic) || !bytes.Equal(hdr[:len(headerMagic)], headerMagic)) {
			err = ErrFormat
		} else if err != nil {
			return inputErr(err)
		} else {
			check, err = parseStreamHeader(hdr[:])
		}
		if err != nil {
			if errors.Is(err, ErrFormat) {
				return fmt.Errorf("%w: trailing garbage after stream", ErrCorrupt)
			}
			return err
		}
		if _, err := newCheck(check); err != nil {
			return err
		}
	}
}

// readStream reads one stream's blocks, index and footer; the header has
// been read.
func (x *reader) readStream(check byte, num *int) error {
	var hdrBuf [maxBlockHeader]byte
	blocks := uint64(0)
	for {
		first, err := x.br.ReadByte()
		if err != nil {
			return inputErr(err)
		}
		if first == 0 {
			return x.readIndex(check, blocks)
		}
		hb := hdrBuf[:(int(first)+1)*4]
		hb[0] = first
		if _, err := io.ReadFull(x.br, hb[1:]); err != nil {
			return inputErr(err)
		}
		*num++
		blocks++
		h, err := parseBlockHeader(hb)
		if err != nil {
			return fmt.Errorf("block %d: %w", *num, err)
		}
		if h.compressed > maxCompressedBlock {
			return fmt.Errorf("block %d: %w: compressed size %d too large", *num, ErrCorrupt, h.compressed)
		}
		select {
		case x.sem <- struct{}{}:
		case <-x.closing:
			return errClosed
		}
		b := x.newBlock(*num, h, check)
		if h.compressed < 0 {
			// Unknown size: decode sequentially from the input.
			if !x.send(item{b: b}) {
				return errClosed
			}
			err := x.decodeStreaming(b)
			b.finish(err)
			if err != nil {
				return errClosed // the consumer reports the block's error
			}
			continue
		}
		cs := int(h.compressed)
		total := len(hb) + cs + (-cs & 3) + checkSize(check)
		comp, mapped, err := x.readBlock(hb, total)
		if err != nil {
			x.freeComp(comp, mapped)
			<-x.sem
			return fmt.Errorf("block %d: %w", *num, err)
		}
		b.comp, b.compMapped = comp, mapped
		if !x.send(item{b: b}) {
			return errClosed
		}
		go x.decodeBuffered(b)
	}
}

// readBlock reads a whole block of total bytes whose header is hb into a
// buffer with rcPad spare bytes, and reports whether the buffer is mapped.
// A mapped buffer only takes memory as data arrives; a heap buffer grows as
// data arrives. Either way a corrupt size cannot make it take much more
// memory than the input holds.
func (x *reader) readBlock(hb []byte, total int) ([]byte, bool, error) {
	if buf := mapBytes(total + rcPad); buf != nil {
		n := copy(buf, hb)
		if _, err := io.ReadFull(x.br, buf[n:total]); err != nil {
			return buf, true, inputErr(err)
		}
		return buf, true, nil
	}
	buf, err := x.readBlockHeap(hb, total)
	return buf, false, err
}

// freeComp returns a buffer from readBlock.
func (x *reader) freeComp(buf []byte, mapped bool) {
	if mapped {
		x.unmap(buf)
	} else {
		x.compBufs.put(buf)
	}
}

func (x *reader) readBlockHeap(hb []byte, total int) ([]byte, error) {
	want := min(total+rcPad, 4<<20)
	buf := x.compBufs.get(want)
	buf = buf[:cap(buf)]
	n := copy(buf, hb)
	for n < total {
		if n == len(buf) {
			size := 2 * len(buf)
			if size > total+rcPad {
				size = total + rcPad
			}
			nb := make([]byte, size)
			copy(nb, buf[:n])
			buf = nb
		}
		end := len(buf)
		if end > total {
			end = total
		}
		m, err := io.ReadFull(x.br, buf[n:end])
		n += m
		if err != nil {
			return buf, inputErr(err)
		}
	}
	if len(buf) < total+rcPad {
		nb := make([]byte, total+rcPad)
		copy(nb, buf[:total])
		buf = nb
	}
	return buf[:total+rcPad], nil
}

// readIndex reads the rest of an index (after its 0x00 indicator) and the
// stream footer, and queues the index for comparison with the blocks.
func (x *reader) readIndex(check byte, blocks uint64) error {
	idx := []byte{0}
	readVLIByte := func() (uint64, error) {
		start := len(idx)
		for {
			c, err := x.br.ReadByte()
			if err != nil {
				return 0, inputErr(err)
			}
			idx = append(idx, c)
			if c&0x80 == 0 || len(idx)-start >= 9 {
				break
			}
		}
		v, _, err := readVLI(idx[start:])
		if err != nil {
			return 0, fmt.Errorf("%w: index: %w", ErrCorrupt, err)
		}
		return v, nil
	}
	count, err := readVLIByte()
	if err != nil {
		return err
	}
	if count != blocks {
		return fmt.Errorf("%w: index lists %d blocks, stream has %d", ErrCorrupt, count, blocks)
	}
	for i := uint64(0); i < 2*count; i++ {
		if _, err := readVLIByte(); err != nil {
			return err
		}
	}
	for len(idx)%4 != 0 {
		c, err := x.br.ReadByte()
		if err != nil {
			return inputErr(err)
		}
		idx = append(idx, c)
	}
	var crc [4]byte
	if _, err := io.ReadFull(x.br, crc[:]); err != nil {
		return inputErr(err)
	}
	idx = append(idx, crc[:]...)
	st, err := parseIndex(idx)
	if err != nil {
		return err
	}
	var ftr [streamFooterSize]byte
	if _, err := io.ReadFull(x.br, ftr[:]); err != nil {
		return inputErr(err)
	}
	f, err := parseStreamFooter(ftr[:])
	if err != nil {
		return err
	}
	if f.backwardSize != int64(len(idx)) {
		return fmt.Errorf("%w: stream footer backward size %d, index is %d bytes", ErrCorrupt, f.backwardSize, len(idx))
	}
	if f.check != check {
		return fmt.Errorf("%w: stream header and footer flags differ", ErrCorrupt)
	}
	if !x.send(item{index: &st}) {
		return errClosed
	}
	return nil
}

// decodeBuffered decodes a fully buffered block; it runs on its own
// goroutine.
func (x *reader) decodeBuffered(b *block) {
	defer func() {
		// decodeBufferedErr recovers from the decoder's panics; this is for the rest.
		if p := recover(); p != nil {
			b.finish(panicError(fmt.Sprintf("block %d", b.num), p))
		}
	}()
	err := x.decodeBufferedErr(b)
	x.freeComp(b.comp, b.compMapped)
	b.comp = nil
	b.finish(err)
}

func (x *reader) decodeBufferedErr(b *block) (err error) {
	defer func() {
		// The decoder checks its input, but a bug must not crash the
		// program that is booting.
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %w", ErrCorrupt, panicError("the decoder", p))
		}
	}()
	h := b.hdr
	cs := int(h.compressed)
	src := &sliceSource{buf: b.comp, off: h.size, end: h.size + cs, mapped: b.compMapped}
	w, err := x.newWindow(b, false)
	if err != nil {
		return err
	}
	d := x.getDec()
	err = d.run(src, w)
	x.putDec(d)
	if err != nil {
		return err
	}
	if src.off != src.end {
		return fmt.Errorf("%w: lzma2 data ends before the block's compressed size", ErrCorrupt)
	}
	tail := b.comp[src.end : len(b.comp)-rcPad]
	return x.finishBlock(b, w, tail[:-cs&3], tail[-cs&3:], int64(cs))
}

// decodeStreaming decodes a block of unknown compressed size straight from
// the input.
func (x *reader) decodeStreaming(b *block) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %w", ErrCorrupt, panicError("the decoder", p))
		}
	}()
	w, err := x.newWindow(b, true)
	if err != nil {
		return err
	}
	src := &streamSource{r: x.br, scratch: make([]byte, 1<<16+rcPad)}
	d := x.getDec()
	err = d.run(src, w)
	x.putDec(d)
	if err != nil {
		return err
	}
	cs := src.n
	tail := make([]byte, int(-cs&3)+checkSize(b.check))
	if _, err := io.ReadFull(x.br, tail); err != nil {
		return inputErr(err)
	}
	return x.finishBlock(b, w, tail[:-cs&3], tail[-cs&3:], cs)
}

// newWindow prepares the output window of a block.
func (x *reader) newWindow(b *block, slide bool) (*window, error) {
	h := b.hdr
	hash, err := newCheck(b.check)
	if err != nil {
		return nil, err
	}
	w := &window{b: b, dictSize: h.dictSize, limit: h.uncompressed, slide: slide, h: hash}
	want := 0
	if !slide && h.uncompressed > 0 && h.uncompressed <= maxMapped {
		if buf := mapBytes(int(h.uncompressed)); buf != nil {
			w.buf = buf
			b.mu.Lock()
			b.buf, b.mapped = buf, true
			b.mu.Unlock()
			return w, nil
		}
	}
	if slide {
		extra := h.dictSize / 4
		if extra < 4<<20 {
			extra = 4 << 20
		}
		w.maxBuf = int(h.dictSize) + int(extra)
	} else if h.uncompressed >= 0 {
		// Trust the header only as far as the compressed size makes
		// plausible; the window grows if needed.
		want = int(min(h.uncompressed, max(16*h.compressed, 1<<20)))
	}
	buf := x.outBufs.get(want)
	w.buf = buf[:cap(buf)]
	b.mu.Lock()
	b.buf = w.buf
	b.mu.Unlock()
	return w, nil
}

// finishBlock checks a decoded block's sizes, padding and check value.
func (x *reader) finishBlock(b *block, w *window, padding, check []byte, compressed int64) error {
	h := b.hdr
	if h.uncompressed >= 0 && w.total != h.uncompressed {
		return fmt.Errorf("%w: block is smaller than its header says", ErrCorrupt)
	}
	for _, c := range padding {
		if c != 0 {
			return fmt.Errorf("%w: block padding not zero", ErrCorrupt)
		}
	}
	if w.h != nil {
		var sum [64]byte
		if !bytes.Equal(checkSum(w.h, b.check, sum[:0]), check) {
			return ErrCheck
		}
	}
	b.mu.Lock()
	b.unpadded = int64(h.size) + compressed + int64(checkSize(b.check))
	b.uncompressed = w.total
	b.mu.Unlock()
	return nil
}
