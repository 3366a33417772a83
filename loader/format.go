package loader

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ramboot/ramboot/internal/xzpar"
)

// Format is an image's outer format, told by its first bytes.
type Format int

// Formats Sniff recognises.
const (
	FormatUnknown Format = iota
	FormatTar
	FormatXZ
	FormatZstd
	FormatGzip
	FormatBzip2
)

func (f Format) String() string {
	switch f {
	case FormatTar:
		return "tar"
	case FormatXZ:
		return "xz"
	case FormatZstd:
		return "zstd"
	case FormatGzip:
		return "gzip"
	case FormatBzip2:
		return "bzip2"
	}
	return "unknown"
}

// sniffLen is how many leading bytes Sniff needs to tell every format (a tar header block).
const sniffLen = 512

// Sniff tells the format from the first bytes of an image (up to sniffLen; fewer only when
// the whole image is shorter). File names are never consulted: a .tar.xz that is really zstd
// is read as zstd.
func Sniff(head []byte) Format {
	switch {
	case bytes.HasPrefix(head, []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}):
		return FormatXZ
	case bytes.HasPrefix(head, []byte{0x28, 0xB5, 0x2F, 0xFD}):
		return FormatZstd
	case len(head) >= 4 && head[0]&0xF0 == 0x50 && head[1] == 0x2A && head[2] == 0x4D && head[3] == 0x18:
		// A zstd skippable frame (pzstd starts with one).
		return FormatZstd
	case bytes.HasPrefix(head, []byte{0x1F, 0x8B}):
		return FormatGzip
	case len(head) >= 10 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9' &&
		bytes.Equal(head[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}):
		return FormatBzip2
	case isTarHeader(head):
		return FormatTar
	}
	return FormatUnknown
}

// isTarHeader checks a ustar/GNU magic, or failing that (v7 archives) the header checksum.
func isTarHeader(b []byte) bool {
	if len(b) < 512 {
		return false
	}
	if bytes.Equal(b[257:262], []byte("ustar")) {
		return true
	}
	// Header checksum: the sum of all bytes with the checksum field taken as spaces.
	var sum int64
	for i, c := range b[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int64(c)
	}
	field := bytes.Trim(b[148:156], " \x00")
	var want int64
	if len(field) == 0 {
		return false
	}
	for _, c := range field {
		if c < '0' || c > '7' {
			return false
		}
		want = want*8 + int64(c-'0')
	}
	return want == sum && b[0] != 0
}

// Decompress sniffs the format of br's first bytes and returns the tar stream inside it: the
// decompression `ramboot fetch` uses, for other readers of images (`ramboot image tar:`).
func Decompress(br *bufio.Reader) (io.ReadCloser, Format, error) {
	head, err := br.Peek(sniffLen)
	if err != nil && err != io.EOF {
		return nil, FormatUnknown, err
	}
	f := Sniff(head)
	if f == FormatUnknown {
		return nil, f, fmt.Errorf("%w: first bytes % x are not xz, zstd, gzip, bzip2 or tar", ErrFormat, head[:min(len(head), 8)])
	}
	rc, err := decompressor(f, br, 0)
	return rc, f, err
}

// xzWorkers is the number of blocks the xz decoder decodes at once, each on a goroutine of its
// own: one per CPU.
func xzWorkers() int { return runtime.GOMAXPROCS(0) }

// decompressor returns the tar stream inside br, whose first bytes tell its format. reserve is
// memory the caller will fill meanwhile (a tmpfs being extracted into), which the xz decoder
// keeps out of its budget.
func decompressor(f Format, br *bufio.Reader, reserve int64) (io.ReadCloser, error) {
	switch f {
	case FormatTar:
		return io.NopCloser(br), nil
	case FormatXZ:
		return xzpar.NewReaderOptions(br, xzpar.Options{Workers: xzWorkers(), Reserve: reserve})
	case FormatZstd:
		// The default window limit (8 MiB... 128 MiB) covers zstd -19 and --long up to 27.
		// The decoder runs synchronously on goReader's goroutine, which decouples it from the
		// extraction with 1 MiB buffers, like the pipe in `zstd -d | tar -x`. Its concurrent
		// mode adds goroutines and hand-offs per 128 KiB block that cost more than they gain
		// here: the extraction and the download already keep the other CPU busy (measured on
		// 2 cores: 0.46-0.50 s instead of 0.53-0.58 s for the Debian bench image).
		d, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<28))
		if err != nil {
			return nil, err
		}
		return goReader(d.IOReadCloser(), 4, 1<<20), nil
	case FormatGzip:
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		return goReader(z, 4, 1<<20), nil // decoding on a CPU of its own, as above
	case FormatBzip2:
		return goReader(io.NopCloser(bzip2.NewReader(br)), 4, 1<<20), nil
	}
	head, _ := br.Peek(16)
	return nil, fmt.Errorf("%w: first bytes % x are not xz, zstd, gzip, bzip2 or tar", ErrFormat, head)
}
