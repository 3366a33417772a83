package imageconv

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is an output's compression, chosen by its file name.
type Compression int

// The output compressions.
const (
	None Compression = iota
	Gzip
	XZ
	Zstd
)

func (c Compression) String() string { return [...]string{"tar", "gzip", "xz", "zstd"}[c] }

// ErrOutput means the output name or place is not usable.
var ErrOutput = errors.New("bad output")

// CompressionFor tells the compression from the output's extension: .tar, .tar.gz (.tgz),
// .tar.xz (.txz), .tar.zst (.tzst).
func CompressionFor(out string) (Compression, error) {
	base := strings.ToLower(filepath.Base(out))
	for _, s := range []struct {
		ext string
		c   Compression
	}{
		{".tar.zst", Zstd}, {".tzst", Zstd}, {".tar.xz", XZ}, {".txz", XZ},
		{".tar.gz", Gzip}, {".tgz", Gzip}, {".tar", None},
	} {
		if strings.HasSuffix(base, s.ext) && len(base) > len(s.ext) {
			return s.c, nil
		}
	}
	return 0, fmt.Errorf("%w: %s: the name must end in .tar.zst, .tar.xz, .tar.gz or .tar", ErrOutput, out)
}

// zstdLevel is klauspost's best (about zstd -11) with its 8 MiB window. Decoding speed
// hardly depends on the level and the window stays at the size every decoder handles in little
// memory; what the level buys is fewer bytes on the network at boot. On a 100 MB root tree
// (2 cores): "better" (about -7) 27.0% in 1.1 s, "best" 24.9% in 3.4 s, both extracted by
// ramboot fetch into tmpfs in 0.20 s; zstd -19 gets 21.7% in 32 s but its larger matches
// decode slower (0.25 s).
const zstdLevel = zstd.SpeedBestCompression

// compressor wraps w in the output's compression; size is the exact length of the tar stream,
// recorded in the zstd frame header (the loader checks the free space against it).
func compressor(c Compression, w io.Writer, size int64) (io.WriteCloser, error) {
	switch c {
	case Zstd:
		// Concurrent blocks: sections compressed in parallel with an overlap from the previous
		// one, in one frame. The sections depend on the window, not on the number of
		// goroutines (at least 2, else it is off), so the output is the same on every machine.
		z, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevel), zstd.WithEncoderConcurrency(max(2, runtime.GOMAXPROCS(0))),
			zstd.WithConcurrentBlocks(true), zstd.WithEncoderCRC(true))
		if err != nil {
			return nil, err
		}
		z.ResetContentSize(w, size)
		return z, nil
	case XZ:
		return newXZWriter(w, xzDefaultBlock, 0)
	case Gzip:
		// No name and no time in the header: the output depends on the input only. Level 9
		// is ten times slower here for 1% less.
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	}
	return nopWriteCloser{w}, nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// header returns the archive header of n: names as `tar -C ROOT -c .` writes them ("./",
// "./etc/", "./etc/passwd"), mtimes clamped.
func header(n *node, clamp time.Time) *tar.Header {
	h := n.hdr
	switch {
	case h.Name == ".":
		h.Name = "./"
	case h.Typeflag == tar.TypeDir:
		h.Name = "./" + h.Name + "/"
	default:
		h.Name = "./" + h.Name
	}
	if h.Typeflag == tar.TypeLink {
		h.Linkname = "./" + h.Linkname
	}
	if !clamp.IsZero() && h.ModTime.After(clamp) {
		h.ModTime = clamp
	}
	return &h
}

// tarSize is the exact length of the archive of nodes: the headers as archive/tar writes them,
// the data padded to 512 bytes, two zero blocks at the end.
func tarSize(nodes []*node, clamp time.Time) (int64, error) {
	var c countWriter
	for _, n := range nodes {
		tw := tar.NewWriter(&c)
		if err := tw.WriteHeader(header(n, clamp)); err != nil {
			return 0, fmt.Errorf("%s: %w", n.hdr.Name, err)
		}
		if n.hdr.Typeflag == tar.TypeReg {
			c.n += (n.hdr.Size + 511) &^ 511
		}
	}
	return c.n + 1024, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// writeTar writes the archive of nodes to w.
func writeTar(t *tree, nodes []*node, clamp time.Time, w io.Writer) error {
	tw := tar.NewWriter(w)
	buf := make([]byte, 1<<20)
	for _, n := range nodes {
		if err := tw.WriteHeader(header(n, clamp)); err != nil {
			return fmt.Errorf("%s: %w", n.hdr.Name, err)
		}
		if n.hdr.Typeflag != tar.TypeReg || n.hdr.Size == 0 {
			continue
		}
		r, err := t.open(n)
		if err != nil {
			return err
		}
		c, err := io.CopyBuffer(tw, io.LimitReader(r, n.hdr.Size), buf)
		r.Close()
		if err == nil && c != n.hdr.Size {
			err = fmt.Errorf("%w: %d of %d bytes", errChanged, c, n.hdr.Size)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", n.hdr.Name, err)
		}
	}
	return tw.Close()
}

// output is the file being written: a temporary file beside out, renamed over it when
// complete, so that out is never a partial image and a symlink at out is replaced, not
// written through.
type output struct {
	f    *os.File
	bw   *bufio.Writer
	hash hash.Hash
	n    int64
}

func createOutput(out string) (*output, error) {
	f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return nil, err
	}
	o := &output{f: f, hash: sha256.New()}
	o.bw = bufio.NewWriterSize(io.MultiWriter(f, o.hash), 1<<20)
	return o, nil
}

func (o *output) Write(p []byte) (int, error) {
	n, err := o.bw.Write(p)
	o.n += int64(n)
	return n, err
}

func (o *output) sum() string { return hex.EncodeToString(o.hash.Sum(nil)) }

// commit makes the file durable and puts it in place, with OUT.sha256 beside it.
func (o *output) commit(out string) error {
	if err := o.bw.Flush(); err != nil {
		return err
	}
	if err := o.f.Chmod(outputMode()); err != nil {
		return err
	}
	if err := o.f.Sync(); err != nil {
		return err
	}
	if err := o.f.Close(); err != nil {
		return err
	}
	side := fmt.Sprintf("%s  %s\n", o.sum(), filepath.Base(out))
	if err := writeAtomic(out+".sha256", []byte(side)); err != nil {
		return err
	}
	if err := os.Rename(o.f.Name(), out); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(out)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func (o *output) abort() {
	o.f.Close()
	os.Remove(o.f.Name())
}

func writeAtomic(p string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".tmp*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(outputMode())
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// outputMode is 0644 with the process's umask applied, as a file created in place would get:
// the outputs go through a temporary file (0600) and a rename.
func outputMode() os.FileMode {
	old := syscall.Umask(0)
	syscall.Umask(old)
	return 0o644 &^ os.FileMode(old)
}
