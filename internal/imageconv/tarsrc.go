package imageconv

import (
	"bufio"
	"compress/bzip2"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/ramboot/ramboot/internal/xzpar"
	"github.com/ramboot/ramboot/loader"
)

// addTarFile reads a root-filesystem archive, compressed or not: the format is told by its
// first bytes, as the loader does.
func (t *tree) addTarFile(ctx context.Context, p string, progress func(done, total int64)) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("a directory: for a directory use dir:%s", p)
	}
	cr := &countReader{r: f, fn: func(n int64) { progress(n, st.Size()) }}
	br := bufio.NewReaderSize(&ctxReader{ctx: ctx, r: cr}, 1<<20)
	head, err := br.Peek(512)
	if err != nil && err != io.EOF {
		return err
	}
	format := loader.Sniff(head)
	var r io.Reader
	switch format {
	case loader.FormatTar:
		r = br
	case loader.FormatXZ:
		d, err := xzpar.NewReader(br, 0)
		if err != nil {
			return err
		}
		defer d.Close()
		r = d
	case loader.FormatZstd:
		d, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(1<<28))
		if err != nil {
			return err
		}
		defer d.Close()
		r = d
	case loader.FormatGzip:
		d, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		r = d
	case loader.FormatBzip2:
		r = bzip2.NewReader(br)
	default:
		return fmt.Errorf("%w: first bytes % x are not tar, xz, zstd, gzip or bzip2", loader.ErrFormat, head[:min(len(head), 8)])
	}
	if err := t.addTar(r); err != nil {
		return fmt.Errorf("%s: %w", format, err)
	}
	return nil
}

// countReader reports the running total of bytes read.
type countReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		c.fn(c.n)
	}
	return n, err
}
