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
	x     *reader
	num   int // 1-based over the whole input, for messages
	hdr   blockHeader
	check byte

	// A block decoded from a buffer: its bytes (header..check) + rcPad, and their reservation.
	comp         []byte
	compMapped   bool  // comp is from mapBytes
	compCharge   int64 // budget held for comp
	compReleased int   // decoder only: comp[:compReleased] was given back

	// The output buffer's reservation: the whole block, or the window of a block decoded as it
	// is read. Set before the decoder starts.
	charge int64

	mu            sync.Mutex
	cond          sync.Cond
	buf           []byte // output window; b.buf[rd:avail] is unread
	mapped        bool   // buf is from mapBytes: it never moves
	whole         bool   // buf holds the whole block: the consumer gives back the pages it read
	rd, avail     int
	done          bool // the decoder is done with the block
	dropped       bool // the consumer is done with the block (read or abandoned)
	freed         bool // buf is given back: both sides are done
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

// outBuf is a block's output buffer on its way back to the reader's memory.
type outBuf struct {
	buf      []byte
	mapped   bool
	released int
	charge   int64
}

// freeLocked detaches the output buffer once both the decoder and the consumer are done with
// it, for the caller to pass to freeOut after unlocking. b.mu is held. b.released is the
// consumer's, but the consumer no longer touches it once it has dropped the block.
func (b *block) freeLocked() (outBuf, bool) {
	if !b.done || !b.dropped || b.freed {
		return outBuf{}, false
	}
	b.freed = true
	o := outBuf{buf: b.buf, mapped: b.mapped, released: b.released, charge: b.charge}
	b.buf = nil
	return o, true
}

// freeOut returns a block's output buffer.
func (x *reader) freeOut(o outBuf) {
	x.mem.blockDone() // before the memory goes to the next block
	x.noteErr(x.mem.free(o.buf, o.mapped, o.released, o.charge))
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
	o, free := b.freeLocked()
	b.mu.Unlock()
	if free {
		b.x.freeOut(o)
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
	if !b.mapped || !b.whole || free-b.released < readChunk {
		buf = nil
	}
	if buf != nil {
		// Without the lock: the decoder never touches these bytes again, and the buffer is not
		// unmapped before the consumer is done with it.
		b.mu.Unlock()
		b.released = b.x.mem.release(buf, b.released, free)
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
	o, free := b.freeLocked()
	b.mu.Unlock()
	if free {
		b.x.freeOut(o)
	}
}

// item is what the dispatcher sends the consumer, in input order.
type item struct {
	b     *block      // a block to read
	index *indexState // end of a stream: the records its index lists
	err   error       // the input cannot be decoded further
}

// reader implements NewReader's io.ReadCloser.
type reader struct {
	br      *bufio.Reader
	workers int
	check   byte // check ID of the first stream, from NewReader

	sem chan struct{} // one token per block in flight: dispatched and not yet read
	// busy has one token per block being decoded from a buffer. A block decoded as it is read
	// (readBlock) takes none: the dispatcher decodes it, and it may wait for the consumer, who
	// may be waiting for a block that needs the token. So with a block in flight beyond the
	// workers, a streamed block can be decoded beside as many buffered ones as there are
	// workers.
	busy    chan struct{}
	queue   chan item
	closing chan struct{}

	mem   *memory
	decMu sync.Mutex
	decs  []*lzma2Dec

	// Consumer state, used only by Read.
	cur     *block
	curBuf  []byte
	lo, hi  int
	seen    indexState // blocks read in the current stream
	err     error
	closeMu sync.Once

	unmapErr atomic.Pointer[error] // the first failure to unmap a buffer
}

// noteErr records a failure to unmap a buffer (a bug: the buffer was not a whole mapping),
// which leaks the buffer and fails the reader's next Read.
func (x *reader) noteErr(err error) {
	if err != nil {
		x.unmapErr.CompareAndSwap(nil, &err)
	}
}

// NewReader is NewReaderOptions with workers goroutines (0 = runtime.GOMAXPROCS) and the
// memory budget worked out from the memory available.
func NewReader(r io.Reader, workers int) (io.ReadCloser, error) {
	return NewReaderOptions(r, Options{Workers: workers})
}

// NewReaderOptions decodes the xz data in r (one or more concatenated streams,
// with stream padding); output is delivered in order.
//
// Memory is bounded by o.MemoryBudget. A block whose header records both its
// compressed and uncompressed sizes, and whose compressed bytes plus decoded
// output fit in the budget, is read whole and decoded into a buffer of its
// size, in parallel with others: up to o.Workers blocks are decoded at once,
// and with more than one worker one block more is in flight (read and queued,
// or decoded and waiting for the consumer), as far as their buffers fit in what
// the blocks ahead of them leave of the budget (a block waits for the consumer
// to read those). Pages the consumer has read
// are given back to the kernel and to the budget as it reads. Any other block
// is decoded sequentially as it is read, into a window of its dictionary size
// and a few MiB ahead of the consumer (less if the budget is small, and no
// more than the block). The decoder needs such a window whatever the budget,
// so a budget smaller than one window (the dictionary plus 2 MiB) is exceeded
// by the difference, a window at a time. Besides the budget, the reader takes
// a few hundred KiB on the Go heap. On Linux the buffers are mapped outside
// the Go heap.
//
// NewReaderOptions reads the first stream header and returns an error
// wrapping ErrFormat if r does not hold xz data. Decoding errors are returned
// by Read and wrap ErrCorrupt or ErrCheck; input that ends early is never
// reported as io.EOF. Close stops the decoding goroutines but does not close
// r; a goroutine blocked reading r exits when that read returns. Like most
// readers, the result is not safe for concurrent use: do not call Close while
// a Read is in progress.
func NewReaderOptions(r io.Reader, o Options) (io.ReadCloser, error) {
	workers := o.Workers
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
		sem:     make(chan struct{}, workers+aheadBlocks(workers)),
		busy:    make(chan struct{}, workers),
		queue:   make(chan item, workers+4),
		closing: make(chan struct{}),
		mem:     newMemory(o),
	}
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
	o, free := b.freeLocked() // the decoder is done: the block ended
	b.mu.Unlock()
	if free {
		x.freeOut(o)
	}
	<-x.sem
}

// Close stops decoding and releases the reader's goroutines.
func (x *reader) Close() error {
	x.closeMu.Do(func() {
		close(x.closing)
		x.mem.close()
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
		if err := x.readBlock(b, hb); err != nil {
			return err
		}
	}
}

// readBlock hands the block whose header is hb, just read, to a decoder: to a goroutine of its
// own with the block's bytes read into a buffer if its buffers fit in the budget, or else to
// the dispatcher itself, which decodes it as it reads it. A sem token is held for the block.
func (x *reader) readBlock(b *block, hb []byte) error {
	h := b.hdr
	comp, buffered := x.bufferedSize(h, b.check)
	if !buffered {
		b.charge = x.windowSize(h)
		if err := x.mem.reserve(b.charge); err != nil {
			return err
		}
		x.mem.blockStarted()
		if !x.send(item{b: b}) {
			b.finish(errClosed)
			return errClosed
		}
		err := x.decodeStreaming(b)
		b.finish(err)
		if err != nil {
			return errClosed // the consumer reports the block's error
		}
		return nil
	}
	b.compCharge, b.charge = int64(comp), h.uncompressed
	if err := x.mem.reserve(b.compCharge + b.charge); err != nil {
		return err
	}
	x.mem.blockStarted()
	var err error
	b.comp, b.compMapped, err = x.readComp(hb, comp-rcPad)
	if err != nil {
		x.freeComp(b)
		b.dropped = true
		b.finish(nil)
		<-x.sem
		return fmt.Errorf("block %d: %w", b.num, err)
	}
	if !x.send(item{b: b}) {
		x.freeComp(b)
		b.finish(errClosed)
		return errClosed
	}
	go x.decodeBuffered(b)
	return nil
}

// maxBuffered bounds the buffers of a block decoded from a buffer, so that their sizes are
// ints everywhere and can be mapped.
const maxBuffered = 1<<31 - 1

// bufferedSize returns the size of the buffer that holds a block of header h with its rcPad,
// and whether the block is to be decoded from such a buffer: if its header records both sizes
// and that buffer and one for its output fit in the budget.
func (x *reader) bufferedSize(h blockHeader, check byte) (int, bool) {
	if h.compressed < 0 || h.uncompressed < 0 || h.uncompressed > maxBuffered {
		return 0, false
	}
	cs := h.compressed // at most maxCompressedBlock
	total := int64(h.size) + cs + (-cs & 3) + int64(checkSize(check)) + rcPad
	if total > maxBuffered || !x.mem.fits(total+h.uncompressed) {
		return 0, false
	}
	return int(total), true
}

// Sizes of the window of a block decoded as it is read: beyond the dictionary, it holds
// windowAhead bytes decoded ahead of the consumer, at least minAhead (one LZMA2 chunk of
// at most 2 MiB must fit) if the budget does not leave that much.
const (
	windowAhead = 4 << 20
	minAhead    = 2 << 20
)

// windowSize returns the size of the output window of a block of header h decoded as it is
// read: its dictionary and room to decode ahead, no more than the block if its size is known.
func (x *reader) windowSize(h blockHeader) int64 {
	dict := int64(h.dictSize)
	ahead := max(dict/4, windowAhead)
	for ahead > minAhead && !x.mem.fits(dict+ahead) {
		ahead = max(ahead/2, minAhead)
	}
	n := dict + ahead
	if h.uncompressed >= 0 {
		n = min(n, h.uncompressed)
	}
	return n
}

// readComp reads a whole block of total bytes whose header is hb into a
// buffer with rcPad spare bytes, and reports whether the buffer is mapped.
// A mapped buffer only takes memory as data arrives; a heap buffer grows as
// data arrives. Either way a corrupt size cannot make it take much more
// memory than the input holds.
func (x *reader) readComp(hb []byte, total int) ([]byte, bool, error) {
	if buf := x.mem.mapBytes(total+rcPad, true); buf != nil {
		n := copy(buf, hb)
		if _, err := io.ReadFull(x.br, buf[n:total]); err != nil {
			return buf, true, inputErr(err)
		}
		return buf, true, nil
	}
	buf, err := x.readBlockHeap(hb, total)
	return buf, false, err
}

// freeComp returns the buffer of a block's bytes.
func (x *reader) freeComp(b *block) {
	x.noteErr(x.mem.free(b.comp, b.compMapped, b.compReleased, b.compCharge))
	b.comp, b.compCharge = nil, 0
}

func (x *reader) readBlockHeap(hb []byte, total int) ([]byte, error) {
	buf := make([]byte, min(total+rcPad, 4<<20))
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

// aheadBlocks is how many blocks may be in flight beyond one per worker, with workers
// decoders: one, when there is more than one CPU to decode on.
//
// With one block in flight per worker, the workers took the next blocks only as the consumer
// finished reading the earlier ones: once a pair of blocks was decoded, the second waited
// whole while the consumer extracted it, and only one worker had a block meanwhile. On 2 CPUs,
// a 175 MB root in 24 MiB blocks (xz -T0), that left a CPU idle for about a tenth of the load.
// With one block more, both workers decode while the consumer reads a decoded block: the
// extraction takes its CPU time from theirs instead of adding to the load's. It costs memory,
// as far as the budget allows: one block's output more at most.
func aheadBlocks(workers int) int {
	if workers < 2 {
		return 0 // one CPU: decoding ahead would only take memory
	}
	return 1
}

// decodingHook, when set (by tests), is told when a block of reader x starts decoding from its
// buffer (+1) and ends (-1). Atomic, as decoders of other readers may still be running when a
// test sets it.
var decodingHook atomic.Pointer[func(x *reader, d int)]

// decodeBuffered decodes a fully buffered block; it runs on its own
// goroutine. It waits for a busy token, so that no more blocks are decoded at once than there
// are workers, whatever the number in flight.
func (x *reader) decodeBuffered(b *block) {
	defer func() {
		// decodeBufferedErr recovers from the decoder's panics; this is for the rest.
		if p := recover(); p != nil {
			b.finish(panicError(fmt.Sprintf("block %d", b.num), p))
		}
	}()
	var err error
	select {
	case x.busy <- struct{}{}:
		err = x.decodeBusy(b)
	case <-x.closing:
		err = errClosed
	}
	x.freeComp(b)
	b.finish(err)
}

// decodeBusy is decodeBufferedErr with a busy token, which it gives back whatever happens.
func (x *reader) decodeBusy(b *block) error {
	defer func() { <-x.busy }()
	if hook := decodingHook.Load(); hook != nil {
		(*hook)(x, 1)
		defer (*hook)(x, -1)
	}
	return x.decodeBufferedErr(b)
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
	src := &sliceSource{buf: b.comp, off: h.size, end: h.size + cs, released: &b.compReleased}
	if b.compMapped {
		src.mem = x.mem
	}
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

// decodeStreaming decodes a block straight from the input, into a window that slides.
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
	src := &streamSource{r: x.br, scratch: make([]byte, 1<<16+rcPad), limit: b.hdr.compressed}
	d := x.getDec()
	err = d.run(src, w)
	x.putDec(d)
	if err != nil {
		return err
	}
	cs := src.n
	if b.hdr.compressed >= 0 && cs != b.hdr.compressed {
		return fmt.Errorf("%w: lzma2 data ends before the block's compressed size", ErrCorrupt)
	}
	tail := make([]byte, int(-cs&3)+checkSize(b.check))
	if _, err := io.ReadFull(x.br, tail); err != nil {
		return inputErr(err)
	}
	return x.finishBlock(b, w, tail[:-cs&3], tail[-cs&3:], cs)
}

// newWindow prepares the output window of a block, of b.charge bytes: the whole block, or with
// slide a window of the last bytes.
func (x *reader) newWindow(b *block, slide bool) (*window, error) {
	h := b.hdr
	hash, err := newCheck(b.check)
	if err != nil {
		return nil, err
	}
	w := &window{b: b, dictSize: h.dictSize, limit: h.uncompressed, slide: slide, h: hash}
	if b.charge <= maxMapped {
		// Huge pages for a buffer that will be filled; a window of a block of unknown size
		// may hold a few KiB (a kernel module).
		if buf := x.mem.mapBytes(int(b.charge), h.uncompressed >= 0); buf != nil {
			w.buf, w.maxBuf = buf, len(buf)
			b.mu.Lock()
			b.buf, b.mapped, b.whole = buf, true, !slide
			b.mu.Unlock()
			return w, nil
		}
	}
	// On the Go heap, the buffer grows as data arrives up to what was reserved, and so does
	// the memory it takes: trust the header only as far as the compressed size makes
	// plausible.
	want := 0
	if slide {
		w.maxBuf = int(b.charge)
	} else if h.uncompressed >= 0 {
		want = int(min(h.uncompressed, max(16*h.compressed, 1<<20)))
	}
	w.buf = make([]byte, want)
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
