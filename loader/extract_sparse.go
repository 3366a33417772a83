package loader

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sparse members (GNU tar --sparse: the old GNU 'S' type, PAX versions 0.0, 0.1 and 1.0) are
// extracted with their holes, as GNU tar does: a 10 KiB archive may hold a 1 TiB lastlog.
// archive/tar reads them back dense (holes as zeros, at memory speed: minutes for a terabyte)
// and does not export the map, so the extractor reads the map from the header blocks
// archive/tar consumed (tarTap records them), writes the data fragments it reads from the raw
// stream at their offsets, and sizes the file with ftruncate. When the map cannot be read back
// the member goes through archive/tar, and zero blocks become holes (copyHoles).

const blockSize = 512

// maxRecord bounds the header bytes kept for one entry: archive/tar allows 1 MiB for each of a
// PAX header, a long name, a long link name and a sparse map.
const maxRecord = 8 << 20

// tarTap is the reader under archive/tar, over the tarSource that counts the bytes consumed. It
// keeps those read while archive/tar looks for the next header: the end-of-archive zero blocks
// and the sparse maps that archive/tar does not report are read from them.
type tarTap struct {
	src  *tarSource
	from int64  // offset of rec[0]
	rec  []byte // bytes read since record
	on   bool
	full bool // more than maxRecord bytes were read while recording
}

func (t *tarTap) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	if t.on && n > 0 {
		if len(t.rec)+n <= maxRecord {
			t.rec = append(t.rec, p[:n]...)
		} else {
			t.full = true
		}
	}
	return n, err
}

func (t *tarTap) record() {
	t.on, t.from, t.rec, t.full = true, t.src.off, t.rec[:0], false
}

// headerStart is the offset of the first block read since record (after the last entry's
// padding).
func (t *tarTap) headerStart() int64 {
	return (t.from + blockSize - 1) / blockSize * blockSize
}

// blocks returns the whole blocks read since record, from the first block boundary: the
// headers archive/tar read for the entry it returned.
func (t *tarTap) blocks() []byte {
	skip := t.headerStart() - t.from
	if int64(len(t.rec)) < skip {
		return nil
	}
	b := t.rec[skip:]
	return b[:len(b)/blockSize*blockSize]
}

// endMarker tells whether archive/tar's end (io.EOF) or refusal (ErrHeader) came from a zero
// block where a header belonged, and whether that block was alone (not followed by another).
func (t *tarTap) endMarker() (end, lone bool) {
	b := t.blocks()
	if len(b) < blockSize || !allZero(b[:blockSize]) {
		return false, false
	}
	return true, len(b) < 2*blockSize || !allZero(b[blockSize:2*blockSize])
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// isSparse tells a sparse member as archive/tar does.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	if hdr.Typeflag != tar.TypeReg { // archive/tar reports the old '\x00' as TypeReg
		return false
	}
	return hdr.PAXRecords["GNU.sparse.major"] != "" || hdr.PAXRecords["GNU.sparse.minor"] != "" ||
		hdr.PAXRecords["GNU.sparse.map"] != ""
}

// sparseMap is where a sparse member's data goes.
type sparseMap struct {
	frags    []fragment // sorted, not overlapping, inside the file
	physical int64      // bytes of data in the stream: the sum of the fragments' lengths
}

type fragment struct{ off, n int64 }

// readSparseMap returns the map of the sparse member hdr, read from the header blocks tp
// recorded; nil when they do not hold a map archive/tar would agree with (the member is
// then read through archive/tar).
func readSparseMap(hdr *tar.Header, tp *tarTap) *sparseMap {
	if tp.full {
		return nil
	}
	b := tp.blocks()
	// Skip the meta headers (PAX, long names) to the member's own.
	for len(b) >= blockSize {
		t := b[156]
		if t != tar.TypeXHeader && t != tar.TypeXGlobalHeader && t != tar.TypeGNULongName && t != tar.TypeGNULongLink {
			break
		}
		size, ok := tarNumber(b[124:136])
		if !ok || size > int64(len(b)) {
			return nil
		}
		b = b[blockSize+(size+blockSize-1)/blockSize*blockSize:]
	}
	if len(b) < blockSize {
		return nil
	}
	main, rest := b[:blockSize], b[blockSize:]
	size, ok := tarNumber(main[124:136])
	if v, found := hdr.PAXRecords["size"]; found {
		size, ok = parseDecimal(v)
	}
	if !ok {
		return nil
	}
	var frags []fragment
	switch {
	case main[156] == tar.TypeGNUSparse:
		if hdr.Typeflag != tar.TypeGNUSparse {
			return nil
		}
		realSize, ok := tarNumber(main[483:495])
		if !ok || realSize != hdr.Size {
			return nil
		}
		// Four entries in the header, 21 in each extension block; a flag after them says that
		// another block follows.
		area, ext := main[386:386+4*24], main[482]
		for {
			for e := area; len(e) >= 24 && e[0] != 0; e = e[24:] {
				off, ok1 := tarNumber(e[:12])
				n, ok2 := tarNumber(e[12:24])
				if !ok1 || !ok2 {
					return nil
				}
				frags = append(frags, fragment{off, n})
			}
			if ext == 0 {
				break
			}
			if len(rest) < blockSize {
				return nil
			}
			area, ext, rest = rest[:21*24], rest[504], rest[blockSize:]
		}
	case hdr.PAXRecords["GNU.sparse.major"] == "1" && hdr.PAXRecords["GNU.sparse.minor"] == "0":
		// Version 1.0: the map leads the data, as decimal numbers on lines, padded to a block:
		// the count, then offset and length of each fragment.
		lines := strings.Split(string(rest), "\n")
		count, ok := parseDecimal(lines[0])
		if !ok || count > int64(len(lines)-1)/2 {
			return nil
		}
		used := int64(len(lines[0]) + 1)
		for i := int64(0); i < count; i++ {
			off, ok1 := parseDecimal(lines[1+2*i])
			n, ok2 := parseDecimal(lines[2+2*i])
			if !ok1 || !ok2 {
				return nil
			}
			frags = append(frags, fragment{off, n})
			used += int64(len(lines[1+2*i]) + len(lines[2+2*i]) + 2)
		}
		mapBlocks := (used + blockSize - 1) / blockSize * blockSize
		if mapBlocks != int64(len(rest)) {
			return nil
		}
		size -= mapBlocks
		rest = nil
	default: // 0.0 and 0.1: the map is a PAX record (archive/tar turns 0.0's into 0.1's)
		fields := strings.Split(hdr.PAXRecords["GNU.sparse.map"], ",")
		if len(fields) == 1 && fields[0] == "" {
			fields = nil
		}
		if len(fields)%2 != 0 {
			return nil
		}
		for i := 0; i < len(fields); i += 2 {
			off, ok1 := parseDecimal(fields[i])
			n, ok2 := parseDecimal(fields[i+1])
			if !ok1 || !ok2 {
				return nil
			}
			frags = append(frags, fragment{off, n})
		}
	}
	if len(rest) != 0 {
		return nil // archive/tar read more (or less) than this map: do not second-guess it
	}
	sp := &sparseMap{}
	var end int64
	for _, f := range frags {
		if f.off < end || f.n < 0 || f.off > hdr.Size-f.n {
			return nil
		}
		end = f.off + f.n
		sp.physical += f.n
		if f.n > 0 {
			sp.frags = append(sp.frags, f)
		}
	}
	if sp.physical != size {
		return nil
	}
	return sp
}

// tarNumber parses a numeric header field: octal, or base-256 when the first bit is set.
func tarNumber(b []byte) (int64, bool) {
	if len(b) > 0 && b[0]&0x80 != 0 {
		if b[0]&0x40 != 0 {
			return 0, false // negative
		}
		var v uint64
		for i, c := range b {
			if i == 0 {
				c &= 0x7f
			}
			if v>>55 != 0 {
				return 0, false
			}
			v = v<<8 | uint64(c)
		}
		return int64(v), true
	}
	s := strings.Trim(string(bytes.TrimRight(b, "\x00")), " \x00")
	if s == "" {
		return 0, true
	}
	v, err := strconv.ParseInt(s, 8, 64)
	return v, err == nil && v >= 0
}

func parseDecimal(s string) (int64, bool) {
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil && v >= 0
}

// writeSparse writes the fragments of sp, read from the raw stream r, at their offsets in fd
// and gives it its size: what lies between stays a hole.
func (x *Extractor) writeSparse(fd int, r io.Reader, sp *sparseMap, size int64) error {
	for _, f := range sp.frags {
		for done := int64(0); done < f.n; {
			n, err := io.ReadFull(r, x.buf[:min(int64(len(x.buf)), f.n-done)])
			if err := pwriteAll(fd, x.buf[:n], f.off+done); err != nil {
				return err
			}
			done += int64(n)
			x.Bytes += int64(n)
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = io.ErrUnexpectedEOF
				}
				return &StreamError{fmt.Errorf("sparse data: %w", err)}
			}
		}
	}
	return unix.Ftruncate(fd, size)
}

// copyHoles is copy for a sparse member whose map is not known: blocks of zeros are skipped
// rather than written.
func (x *Extractor) copyHoles(fd int, r io.Reader, size int64) error {
	const hole = 4096
	var done int64
	for done < size {
		n, err := io.ReadFull(r, x.buf[:min(int64(len(x.buf)), size-done)])
		for p, off := x.buf[:n], done; len(p) > 0; {
			k := min(len(p), hole)
			if !allZero(p[:k]) {
				if werr := pwriteAll(fd, p[:k], off); werr != nil {
					return werr
				}
			}
			p, off = p[k:], off+int64(k)
		}
		done += int64(n)
		x.Bytes += int64(n)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("data ends after %d of %d bytes: %w", done, size, io.ErrUnexpectedEOF)
			}
			return &StreamError{err}
		}
	}
	return unix.Ftruncate(fd, size)
}

func pwriteAll(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := unix.Pwrite(fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

// skipPadding reads the padding after a member's data of n bytes.
func skipPadding(r io.Reader, n int64) error {
	pad := (blockSize - n%blockSize) % blockSize
	if _, err := io.CopyN(io.Discard, r, pad); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return &StreamError{err}
	}
	return nil
}
