package xzpar

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
)

// Sizes and magic numbers from the .xz file format specification 1.1.0.
const (
	streamHeaderSize = 12
	streamFooterSize = 12
	maxBlockHeader   = 1024

	checkNone   = 0x00
	checkCRC32  = 0x01
	checkCRC64  = 0x04
	checkSHA256 = 0x0a

	filterLZMA2 = 0x21
)

var (
	headerMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	footerMagic = []byte{'Y', 'Z'}
)

var crc64Table = crc64.MakeTable(crc64.ECMA)

// checkSize returns the size of the check field for a check ID; the sizes
// are fixed by the specification even for checks this package cannot
// verify.
func checkSize(id byte) int {
	if id == 0 {
		return 0
	}
	return 4 << ((id - 1) / 3)
}

// newCheck returns a hash for the check ID, nil for "none", or an error for
// reserved or unsupported IDs.
func newCheck(id byte) (hash.Hash, error) {
	switch id {
	case checkNone:
		return nil, nil
	case checkCRC32:
		return crc32.NewIEEE(), nil
	case checkCRC64:
		return newCRC64(), nil
	case checkSHA256:
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("%w: unsupported check type 0x%02x", ErrFormat, id)
}

// checkSum writes the check value in the byte order the format stores it:
// CRC32 and CRC64 little-endian, SHA-256 as is.
func checkSum(h hash.Hash, id byte, dst []byte) []byte {
	switch id {
	case checkCRC32:
		return binary.LittleEndian.AppendUint32(dst, h.(hash.Hash32).Sum32())
	case checkCRC64:
		return binary.LittleEndian.AppendUint64(dst, h.(hash.Hash64).Sum64())
	}
	return h.Sum(dst)
}

// parseStreamHeader validates a stream header and returns its check ID.
func parseStreamHeader(b []byte) (byte, error) {
	if len(b) < streamHeaderSize || !bytes.Equal(b[:6], headerMagic) {
		return 0, ErrFormat
	}
	if crc32.ChecksumIEEE(b[6:8]) != binary.LittleEndian.Uint32(b[8:12]) {
		return 0, fmt.Errorf("%w: stream header crc mismatch", ErrCorrupt)
	}
	return parseFlags(b[6:8])
}

func parseFlags(f []byte) (byte, error) {
	if f[0] != 0 || f[1]&0xf0 != 0 {
		return 0, fmt.Errorf("%w: unsupported stream flags %#02x%02x", ErrFormat, f[0], f[1])
	}
	return f[1], nil
}

// footer is a parsed stream footer.
type footer struct {
	backwardSize int64 // size of the index
	check        byte
}

func parseStreamFooter(b []byte) (footer, error) {
	if len(b) < streamFooterSize || !bytes.Equal(b[10:12], footerMagic) {
		return footer{}, fmt.Errorf("%w: bad stream footer magic", ErrCorrupt)
	}
	if crc32.ChecksumIEEE(b[4:10]) != binary.LittleEndian.Uint32(b[0:4]) {
		return footer{}, fmt.Errorf("%w: stream footer crc mismatch", ErrCorrupt)
	}
	check, err := parseFlags(b[8:10])
	if err != nil {
		return footer{}, err
	}
	return footer{
		backwardSize: (int64(binary.LittleEndian.Uint32(b[4:8])) + 1) * 4,
		check:        check,
	}, nil
}

var errVLI = errors.New("bad variable-length integer")

// readVLI decodes a variable-length integer from b, returning it and the
// number of bytes used. Encodings longer than needed are rejected, as the
// specification requires.
func readVLI(b []byte) (uint64, int, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		if i >= len(b) {
			return 0, 0, errVLI
		}
		c := b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if c == 0 && i > 0 {
				return 0, 0, errVLI
			}
			return v, i + 1, nil
		}
	}
	return 0, 0, errVLI
}

// blockHeader is a parsed block header.
type blockHeader struct {
	size         int   // header size in bytes
	compressed   int64 // -1 if not recorded
	uncompressed int64 // -1 if not recorded
	dictSize     uint32
}

// parseBlockHeader parses a complete block header b (b[0] != 0).
func parseBlockHeader(b []byte) (blockHeader, error) {
	h := blockHeader{size: len(b), compressed: -1, uncompressed: -1}
	if len(b) < 8 || len(b) != (int(b[0])+1)*4 {
		return h, fmt.Errorf("%w: bad block header size", ErrCorrupt)
	}
	n := len(b) - 4
	if crc32.ChecksumIEEE(b[:n]) != binary.LittleEndian.Uint32(b[n:]) {
		return h, fmt.Errorf("%w: block header crc mismatch", ErrCorrupt)
	}
	flags := b[1]
	if flags&0x3c != 0 {
		return h, fmt.Errorf("%w: unsupported block flags %#02x", ErrFormat, flags)
	}
	p := b[2:n]
	vli := func() (uint64, error) {
		v, k, err := readVLI(p)
		if err != nil {
			return 0, fmt.Errorf("%w: block header: %w", ErrCorrupt, err)
		}
		p = p[k:]
		return v, nil
	}
	if flags&0x40 != 0 {
		v, err := vli()
		if err != nil {
			return h, err
		}
		if v == 0 || v > 1<<62 {
			return h, fmt.Errorf("%w: bad compressed size %d", ErrCorrupt, v)
		}
		h.compressed = int64(v)
	}
	if flags&0x80 != 0 {
		v, err := vli()
		if err != nil {
			return h, err
		}
		if v > 1<<62 {
			return h, fmt.Errorf("%w: bad uncompressed size %d", ErrCorrupt, v)
		}
		h.uncompressed = int64(v)
	}
	nf := int(flags&3) + 1
	for i := 0; i < nf; i++ {
		id, err := vli()
		if err != nil {
			return h, err
		}
		psize, err := vli()
		if err != nil {
			return h, err
		}
		if psize > uint64(len(p)) {
			return h, fmt.Errorf("%w: block header: filter properties overflow", ErrCorrupt)
		}
		props := p[:psize]
		p = p[psize:]
		last := i == nf-1
		switch {
		case id == filterLZMA2 && last:
			if len(props) != 1 || props[0] > 40 {
				return h, fmt.Errorf("%w: bad lzma2 properties", ErrCorrupt)
			}
			if props[0] == 40 {
				h.dictSize = 0xffffffff
			} else {
				h.dictSize = (2 | uint32(props[0])&1) << (props[0]/2 + 11)
			}
		default:
			return h, fmt.Errorf("%w: unsupported filter chain: filter id %#x (%s) at position %d of %d",
				ErrFormat, id, filterName(id), i+1, nf)
		}
	}
	for _, c := range p {
		if c != 0 {
			return h, fmt.Errorf("%w: block header padding not zero", ErrCorrupt)
		}
	}
	return h, nil
}

func filterName(id uint64) string {
	switch id {
	case 0x03:
		return "delta"
	case 0x04:
		return "x86"
	case 0x05:
		return "powerpc"
	case 0x06:
		return "ia64"
	case 0x07:
		return "arm"
	case 0x08:
		return "armthumb"
	case 0x09:
		return "sparc"
	case 0x0a:
		return "arm64"
	case 0x0b:
		return "riscv"
	case 0x21:
		return "lzma2"
	}
	return "unknown"
}

// indexState accumulates the (unpadded size, uncompressed size) records of
// a stream's blocks, from the blocks as decoded or from the index, so that
// the two can be compared without keeping every record.
type indexState struct {
	count        uint64
	unpadded     uint64
	uncompressed uint64
	stored       uint64 // sum of unpadded sizes rounded up to multiples of 4
	hash         uint64
	overflow     bool
}

func (s *indexState) add(unpadded, uncompressed uint64) {
	s.count++
	if s.uncompressed+uncompressed < s.uncompressed || s.stored+unpadded+3 < s.stored {
		s.overflow = true
	}
	s.unpadded += unpadded
	s.uncompressed += uncompressed
	s.stored += (unpadded + 3) &^ 3
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], unpadded)
	binary.LittleEndian.PutUint64(b[8:], uncompressed)
	s.hash = crc64.Update(s.hash, crc64Table, b[:])
}

// parseIndex parses a complete index b (starting with the 0x00 indicator,
// ending with its CRC32).
func parseIndex(b []byte) (indexState, error) {
	var s indexState
	if len(b) < 8 || len(b)%4 != 0 || b[0] != 0 {
		return s, fmt.Errorf("%w: bad index size", ErrCorrupt)
	}
	n := len(b) - 4
	if crc32.ChecksumIEEE(b[:n]) != binary.LittleEndian.Uint32(b[n:]) {
		return s, fmt.Errorf("%w: index crc mismatch", ErrCorrupt)
	}
	p := b[1:n]
	count, k, err := readVLI(p)
	if err != nil {
		return s, fmt.Errorf("%w: index: %w", ErrCorrupt, err)
	}
	p = p[k:]
	if count > uint64(len(p))/2 {
		return s, fmt.Errorf("%w: index record count %d too large", ErrCorrupt, count)
	}
	for i := uint64(0); i < count; i++ {
		unpadded, k, err := readVLI(p)
		if err != nil {
			return s, fmt.Errorf("%w: index: %w", ErrCorrupt, err)
		}
		p = p[k:]
		uncompressed, k, err := readVLI(p)
		if err != nil {
			return s, fmt.Errorf("%w: index: %w", ErrCorrupt, err)
		}
		p = p[k:]
		if unpadded == 0 {
			return s, fmt.Errorf("%w: index: zero unpadded size", ErrCorrupt)
		}
		s.add(unpadded, uncompressed)
	}
	if len(p) > 3 {
		return s, fmt.Errorf("%w: index: trailing bytes", ErrCorrupt)
	}
	for _, c := range p {
		if c != 0 {
			return s, fmt.Errorf("%w: index padding not zero", ErrCorrupt)
		}
	}
	return s, nil
}

// equal reports whether two index states describe the same records.
func (s indexState) equal(o indexState) bool { return s == o }
