package imageconv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"hash/crc64"
	"io"
	"runtime"

	"github.com/ulikunitz/xz/lzma"
)

// xzWriter writes an xz stream of independent LZMA2 blocks of a fixed uncompressed size,
// compressed in parallel: the layout `xz -T` and pixz write, which ramboot's loader (and
// pixz -d, xz -T0 -d) decodes on every core. Each block header records both sizes, the check
// is CRC64. Block boundaries depend only on the input, not on the number of workers, so the
// output is the same on every machine.
type xzWriter struct {
	w         io.Writer
	blockSize int
	dictCap   int
	buf       []byte
	jobs      chan *xzBlock
	pending   []*xzBlock // in stream order, being compressed
	max       int        // blocks in flight at most
	index     []xzRecord
	err       error
}

type xzBlock struct {
	data     []byte
	out      []byte // block header, compressed data, padding, check
	unpadded int64  // the size of out without the padding, for the index
	err      error
	done     chan struct{}
}

type xzRecord struct{ unpadded, uncompressed int64 }

// xzDefaultBlock is the block size: small enough for parallel decoding of even small images
// and a bounded decoder memory (ramboot's loader keeps about one block per core), large
// enough that the ratio is within about 1% of one block.
const xzDefaultBlock = 8 << 20

func newXZWriter(w io.Writer, blockSize, workers int) (*xzWriter, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	x := &xzWriter{
		w: w, blockSize: blockSize, dictCap: min(blockSize, 8<<20),
		jobs: make(chan *xzBlock), max: workers + 1,
	}
	for range workers {
		go x.worker()
	}
	// Stream header: magic, flags (check type 4: CRC64), CRC32 of the flags.
	hdr := []byte{0xFD, '7', 'z', 'X', 'Z', 0, 0, 4}
	hdr = binary.LittleEndian.AppendUint32(hdr, crc32.ChecksumIEEE(hdr[6:8]))
	if _, err := w.Write(hdr); err != nil {
		close(x.jobs)
		return nil, err
	}
	return x, nil
}

func (x *xzWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 && x.err == nil {
		if x.buf == nil {
			x.buf = make([]byte, 0, x.blockSize)
		}
		c := copy(x.buf[len(x.buf):cap(x.buf)], p)
		x.buf = x.buf[:len(x.buf)+c]
		p, n = p[c:], n+c
		if len(x.buf) == cap(x.buf) {
			x.submit()
		}
	}
	return n, x.err
}

// submit hands the current block to a worker, first writing out the oldest blocks when too
// many are in flight.
func (x *xzWriter) submit() {
	b := &xzBlock{data: x.buf, done: make(chan struct{})}
	x.buf = nil
	for len(x.pending) >= x.max && x.err == nil {
		x.flushOne()
	}
	if x.err != nil {
		return
	}
	x.pending = append(x.pending, b)
	x.jobs <- b
}

func (x *xzWriter) flushOne() {
	b := x.pending[0]
	x.pending = x.pending[1:]
	<-b.done
	if b.err != nil {
		x.err = b.err
		return
	}
	if _, err := x.w.Write(b.out); err != nil {
		x.err = err
		return
	}
	x.index = append(x.index, xzRecord{b.unpadded, int64(len(b.data))})
}

func (x *xzWriter) worker() {
	for b := range x.jobs {
		b.out, b.unpadded, b.err = x.compress(b.data)
		close(b.done)
	}
}

// compress makes one block: header with both sizes and the LZMA2 filter, raw LZMA2 data,
// padding to four bytes, CRC64 of the uncompressed data.
func (x *xzWriter) compress(data []byte) ([]byte, int64, error) {
	var comp bytes.Buffer
	comp.Grow(len(data)/2 + 1024)
	lw, err := lzma.Writer2Config{DictCap: x.dictCap, Matcher: lzma.HashTable4}.NewWriter2(&comp)
	if err != nil {
		return nil, 0, err
	}
	if _, err := lw.Write(data); err != nil {
		return nil, 0, err
	}
	if err := lw.Close(); err != nil {
		return nil, 0, err
	}
	// Block header: size byte, flags (one filter, both sizes present), compressed size,
	// uncompressed size, filter LZMA2 (id 0x21, one property byte: the dictionary size),
	// zero padding to four bytes, CRC32.
	h := []byte{0, 0xC0}
	h = binary.AppendUvarint(h, uint64(comp.Len()))
	h = binary.AppendUvarint(h, uint64(len(data)))
	h = append(h, 0x21, 1, dictProp(x.dictCap))
	for len(h)%4 != 0 {
		h = append(h, 0)
	}
	h[0] = byte((len(h)+4)/4 - 1)
	h = binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(h))
	out := make([]byte, 0, len(h)+comp.Len()+3+8)
	out = append(append(out, h...), comp.Bytes()...)
	for len(out)%4 != 0 {
		out = append(out, 0)
	}
	unpadded := int64(len(h) + comp.Len() + 8)
	return binary.LittleEndian.AppendUint64(out, crc64.Checksum(data, crc64Table)), unpadded, nil
}

var crc64Table = crc64.MakeTable(crc64.ECMA)

// dictProp encodes a dictionary size as LZMA2's property byte: the smallest size of the form
// 2^n or 3*2^(n-1) that holds it.
func dictProp(size int) byte {
	for p := byte(0); p < 40; p++ {
		if (2|int(p&1))<<(p/2+11) >= size {
			return p
		}
	}
	return 40
}

// Close writes the last block, the index and the stream footer. It does not close the
// underlying writer.
func (x *xzWriter) Close() error {
	if len(x.buf) > 0 && x.err == nil {
		x.submit()
	}
	for len(x.pending) > 0 && x.err == nil {
		x.flushOne()
	}
	close(x.jobs)
	for _, b := range x.pending { // after an error: let the workers finish
		<-b.done
	}
	if x.err != nil {
		return x.err
	}
	// Index: indicator, record count, (unpadded size, uncompressed size) per block, padding,
	// CRC32.
	idx := []byte{0}
	idx = binary.AppendUvarint(idx, uint64(len(x.index)))
	for _, r := range x.index {
		idx = binary.AppendUvarint(idx, uint64(r.unpadded))
		idx = binary.AppendUvarint(idx, uint64(r.uncompressed))
	}
	for len(idx)%4 != 0 {
		idx = append(idx, 0)
	}
	idx = binary.LittleEndian.AppendUint32(idx, crc32.ChecksumIEEE(idx))
	// Footer: CRC32 of (backward size, flags), backward size, flags, magic.
	foot := binary.LittleEndian.AppendUint32(nil, uint32(len(idx)/4-1))
	foot = append(foot, 0, 4)
	foot = append(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(foot)), foot...)
	foot = append(foot, 'Y', 'Z')
	if _, err := x.w.Write(append(idx, foot...)); err != nil {
		return err
	}
	x.err = errors.New("xz writer closed")
	return nil
}
