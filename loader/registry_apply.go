package loader

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// The whiteout names of the OCI image layer format (and of docker's AUFS-era layers).
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh." // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): skipped
	whiteoutOpaque = ".wh..wh..opq"
)

// layerApplier applies the layers of an image, in order, to a directory: each layer's entries
// go to the Extractor (through a tar stream of their own, without the whiteouts), its
// whiteouts are applied as containerd's applier does:
//
//   - DIR/.wh.NAME removes DIR/NAME, whatever it is, as a lower layer left it;
//   - DIR/.wh..wh..opq empties DIR of everything the lower layers put there, keeping what
//     this layer adds;
//   - an entry that is not a directory replaces a directory of a lower layer, non-empty too.
//
// The Extractor lags behind the reading of a layer (the pipe between them holds a buffer). A
// removal is safe regardless, because it never touches a path of the current layer: those are
// in seen (or ancestors of them). When a removal would touch one (a malformed layer), the
// current stream is ended first and the Extractor waited for.
type layerApplier struct {
	root   *os.Root
	owners bool
	logf   func(string, ...any)

	run      *layerRun
	rootX    *Extractor // the last one that saw a "./" entry: FinishRoot applies it
	Entries  int
	Bytes    int64
	buf      []byte
	seen     map[string]bool // paths of the current layer
	ancestor map[string]bool // their parent directories
}

func newLayerApplier(root *os.Root, owners bool, logf func(string, ...any)) *layerApplier {
	return &layerApplier{root: root, owners: owners, logf: logf, buf: make([]byte, 256<<10)}
}

// layerRun is one tar stream to an Extractor running in a goroutine.
type layerRun struct {
	pw      *io.PipeWriter
	bw      *bufio.Writer
	tw      *tar.Writer
	x       *Extractor
	done    chan error
	sawRoot bool
}

func (a *layerApplier) start() {
	pr, pw := io.Pipe()
	r := &layerRun{pw: pw, x: NewExtractor(a.root, a.owners, a.logf), done: make(chan error, 1)}
	r.bw = bufio.NewWriterSize(pw, 1<<20)
	r.tw = tar.NewWriter(r.bw)
	go func() {
		var err error
		if perr := catch(func() { err = r.x.Extract(pr) }); perr != nil {
			err = perr
		}
		// A writer blocked on the pipe learns that the extraction has ended.
		pr.CloseWithError(errExtractEnded)
		r.done <- err
	}()
	a.run = r
}

var errExtractEnded = errors.New("extraction ended")

// finish ends the current stream and waits for its extraction.
func (a *layerApplier) finish() error {
	r := a.run
	if r == nil {
		return nil
	}
	a.run = nil
	err := r.tw.Close()
	if err == nil {
		err = r.bw.Flush()
	}
	r.pw.CloseWithError(err)
	xerr := <-r.done
	a.Entries += r.x.Entries
	a.Bytes += r.x.Bytes
	if r.sawRoot && xerr == nil {
		a.rootX = r.x
	}
	if xerr != nil {
		return xerr
	}
	return err
}

// abort ends the current stream with err and waits for its extraction to stop.
func (a *layerApplier) abort(err error) {
	if r := a.run; r != nil {
		a.run = nil
		r.pw.CloseWithError(err)
		<-r.done
	}
}

// write hands one entry to the Extractor; an error from the pipe is the extraction's own.
func (a *layerApplier) write(hdr *tar.Header, data io.Reader) error {
	r := a.run
	werr := r.tw.WriteHeader(hdr)
	if werr == nil && hdr.Size > 0 {
		_, werr = io.CopyBuffer(r.tw, data, a.buf)
	}
	if werr == nil {
		return nil
	}
	if errors.Is(werr, errExtractEnded) || errors.Is(werr, io.ErrClosedPipe) {
		a.run = nil
		if xerr := <-r.done; xerr != nil {
			return xerr
		}
		return fmt.Errorf("the extraction stopped early")
	}
	var se *StreamError
	if errors.As(werr, &se) {
		return werr
	}
	// A read of the layer failed (the download, the decompressor).
	return &StreamError{werr}
}

// Layer applies one layer's tar stream; lower is false for the first layer (nothing below it
// to remove).
func (a *layerApplier) Layer(r io.Reader, lower bool) error {
	a.seen, a.ancestor = map[string]bool{}, map[string]bool{}
	a.start()
	err := a.layer(r, lower)
	if err != nil {
		a.abort(err)
		return err
	}
	return a.finish()
}

func (a *layerApplier) layer(r io.Reader, lower bool) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return &StreamError{err}
		}
		name, err := CleanName(hdr.Name)
		if err != nil {
			return err
		}
		dir, base := path.Split(name)
		dir = path.Clean(dir)
		if strings.HasPrefix(base, whiteoutPrefix) {
			switch {
			case base == whiteoutOpaque:
				err = a.opaque(dir)
			case strings.HasPrefix(base, whiteoutMeta):
			default:
				err = a.whiteout(hdr.Name, dir, strings.TrimPrefix(base, whiteoutPrefix))
			}
			if err != nil {
				return err
			}
			continue
		}
		switch hdr.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeGNUSparse:
			hdr.Typeflag = tar.TypeReg // archive/tar reads the holes as zeros
		}
		if lower && hdr.Typeflag != tar.TypeDir && name != "." && !a.seen[name] {
			if err := a.replaceDir(name); err != nil {
				return err
			}
		}
		a.mark(name)
		if name == "." {
			a.run.sawRoot = true
		}
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				delete(hdr.PAXRecords, k)
			}
		}
		hdr.Format = tar.FormatPAX // keeps nanosecond times and every field as read
		if err := a.write(hdr, tr); err != nil {
			return err
		}
	}
}

// mark records a path of the current layer.
func (a *layerApplier) mark(name string) {
	a.seen[name] = true
	for d := path.Dir(name); d != "." && d != "/" && !a.ancestor[d]; d = path.Dir(d) {
		a.ancestor[d] = true
	}
}

// ours reports whether p is a path of the current layer, or on the way to one.
func (a *layerApplier) ours(p string) bool {
	return a.seen[p] || a.ancestor[p]
}

// sync ends the current stream, so that what the layer wrote so far is on disk, and starts
// another.
func (a *layerApplier) sync() error {
	if err := a.finish(); err != nil {
		return err
	}
	a.start()
	return nil
}

// whiteout applies the whiteout entry of file in dir. ".wh.", ".wh.." and ".wh..." name no
// file of dir but dir itself or its parent ("", ".", ".."): a malformed layer, refused rather
// than read as a removal of a directory above the entry.
func (a *layerApplier) whiteout(entry, dir, file string) error {
	switch file {
	case "", ".", "..":
		return fmt.Errorf("%w: whiteout %q names no file in %s", ErrFormat, entry, dir)
	}
	return a.remove(path.Join(dir, file))
}

// remove applies a whiteout of p.
func (a *layerApplier) remove(p string) error {
	if p == "." {
		return fmt.Errorf("%w: a whiteout of the root", ErrInsecurePath)
	}
	if a.ours(p) {
		if err := a.sync(); err != nil {
			return err
		}
	}
	if err := a.root.RemoveAll(p); err != nil {
		return a.pathErr(p, "whiteout", err)
	}
	return nil
}

// replaceDir removes a lower layer's directory at name, where this layer puts something else.
func (a *layerApplier) replaceDir(name string) error {
	if a.ancestor[name] {
		if err := a.sync(); err != nil {
			return err
		}
	}
	fi, err := a.root.Lstat(name)
	if err != nil || !fi.IsDir() {
		return nil // nothing, or not a directory: the Extractor replaces it
	}
	if err := a.root.RemoveAll(name); err != nil {
		return a.pathErr(name, "replacing a directory", err)
	}
	return nil
}

// opaque empties dir of what the lower layers put there.
func (a *layerApplier) opaque(dir string) error {
	d, err := a.root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return a.pathErr(dir, "opaque directory", err)
	}
	ents, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return a.pathErr(dir, "opaque directory", err)
	}
	for _, e := range ents {
		p := path.Join(dir, e.Name())
		switch {
		case !a.ours(p):
			if err := a.root.RemoveAll(p); err != nil {
				return a.pathErr(p, "opaque directory", err)
			}
		case e.IsDir():
			// Kept for this layer's entries in it; what else is in it is the lower layers'.
			if err := a.opaque(p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *layerApplier) pathErr(p, what string, err error) error {
	if escapes(a.root, err) {
		return fmt.Errorf("%w: %s %q leads outside the target: %w", ErrInsecurePath, what, p, err)
	}
	return fmt.Errorf("%s %s: %w", what, p, err)
}

// FinishRoot applies the last "./" entry's metadata to the target (see Extractor.FinishRoot).
func (a *layerApplier) FinishRoot() error {
	if a.rootX == nil {
		return nil
	}
	return a.rootX.FinishRoot()
}
