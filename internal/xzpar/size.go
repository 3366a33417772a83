package xzpar

import (
	"errors"
	"fmt"
	"io"
)

// maxIndexSize bounds the index UncompressedSize will read; a real index
// takes a few bytes per block, so this allows millions of blocks.
const maxIndexSize = 64 << 20

// tailReader reads from an io.ReaderAt, serving reads from the last block
// it fetched when it can, so that a file's footer, index and padding
// usually cost one read (one HTTP Range request).
type tailReader struct {
	r     io.ReaderAt
	buf   []byte
	start int64 // offset of buf
}

func (t *tailReader) read(off int64, n int) ([]byte, error) {
	if off >= t.start && off+int64(n) <= t.start+int64(len(t.buf)) {
		return t.buf[off-t.start : off-t.start+int64(n)], nil
	}
	// Fetch at least 64 KiB ending at off+n: reads move backwards.
	end := off + int64(n)
	start := min(off, max(end-64<<10, 0))
	buf := make([]byte, end-start)
	// ReadAt may return io.EOF with a full read at the end of the input.
	if k, err := t.r.ReadAt(buf, start); k < len(buf) {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("reading xz index: %w", err)
	}
	t.buf, t.start = buf, start
	return buf[off-start:], nil
}

// UncompressedSize returns the total uncompressed size of the xz data in r,
// which is size bytes long, by reading each stream's footer, index and
// header from the end backwards. It reads only a few small ranges, so r can
// be implemented with HTTP Range requests. It returns an error wrapping
// ErrFormat or ErrCorrupt if the data is not a valid xz file.
func UncompressedSize(r io.ReaderAt, size int64) (int64, error) {
	t := &tailReader{r: r}
	pos := size
	var total int64
	streams := 0
	for {
		// Stream padding: zero bytes in groups of four.
		if pos%4 != 0 {
			return 0, fmt.Errorf("%w: size %d is not a multiple of four", ErrFormat, size)
		}
		for pos > 0 {
			n := int(min(pos, 4096))
			b, err := t.read(pos-int64(n), n)
			if err != nil {
				return 0, err
			}
			i := n
			for i >= 4 && b[i-4]|b[i-3]|b[i-2]|b[i-1] == 0 {
				i -= 4
			}
			pos -= int64(n - i)
			if i > 0 {
				break
			}
		}
		if pos == 0 {
			if streams == 0 {
				return 0, ErrFormat
			}
			return total, nil
		}
		if pos < streamHeaderSize+8+streamFooterSize {
			return 0, fmt.Errorf("%w: no xz stream before offset %d", ErrFormat, pos)
		}
		b, err := t.read(pos-streamFooterSize, streamFooterSize)
		if err != nil {
			return 0, err
		}
		if string(b[10:12]) != string(footerMagic) {
			return 0, fmt.Errorf("%w: no stream footer before offset %d", ErrFormat, pos)
		}
		f, err := parseStreamFooter(b)
		if err != nil {
			return 0, err
		}
		if f.backwardSize > maxIndexSize {
			return 0, fmt.Errorf("%w: index of %d bytes too large", ErrFormat, f.backwardSize)
		}
		indexStart := pos - streamFooterSize - f.backwardSize
		if indexStart < streamHeaderSize {
			return 0, fmt.Errorf("%w: index size %d exceeds the file", ErrCorrupt, f.backwardSize)
		}
		b, err = t.read(indexStart, int(f.backwardSize))
		if err != nil {
			return 0, err
		}
		st, err := parseIndex(b)
		if err != nil {
			return 0, err
		}
		if st.overflow || st.stored > uint64(indexStart-streamHeaderSize) {
			return 0, fmt.Errorf("%w: index lists more data than the file holds", ErrCorrupt)
		}
		start := indexStart - int64(st.stored) - streamHeaderSize
		b, err = t.read(start, streamHeaderSize)
		if err != nil {
			return 0, err
		}
		check, err := parseStreamHeader(b)
		if err != nil {
			if errors.Is(err, ErrFormat) {
				return 0, fmt.Errorf("%w: no stream header at offset %d", ErrCorrupt, start)
			}
			return 0, err
		}
		if check != f.check {
			return 0, fmt.Errorf("%w: stream header and footer flags differ", ErrCorrupt)
		}
		if st.uncompressed > uint64(1<<63-1-total) {
			return 0, fmt.Errorf("%w: uncompressed size overflows", ErrCorrupt)
		}
		total += int64(st.uncompressed)
		streams++
		pos = start
	}
}
