package imageconv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

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
	r, format, err := loader.Decompress(br)
	if err != nil {
		return err
	}
	defer r.Close()
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
