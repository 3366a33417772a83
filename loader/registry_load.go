package loader

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// registryRun is one Load of a docker:// URL.
type registryRun struct {
	plan       *registryPlan
	docFetcher *Fetcher // manifests and configs: a failing mirror hands over at once
	blobs      *Fetcher // layers
	logf       func(string, ...any)

	mu   sync.Mutex
	live []registrySource // sources not (yet) found failing
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// newRegistryRun sets up the requests of a registry load.
func newRegistryRun(urls []string, opts *Options, f *Fetcher, logf func(string, ...any)) (*registryRun, error) {
	plan, err := planRegistry(urls, opts.Registry)
	if err != nil {
		return nil, err
	}
	kc, err := loadKeychain(opts.Registry.AuthFile)
	if err != nil {
		return nil, err
	}
	rt := &registryTransport{base: f.client().Transport, regs: map[string]name.Registry{}, creds: kc, rts: map[string]http.RoundTripper{}}
	if rt.base == nil {
		rt.base = http.DefaultTransport
	}
	for _, s := range plan.sources {
		rt.regs[s.reg.RegistryStr()] = s.reg
	}
	client := &http.Client{Transport: rt}
	blobs := *f
	blobs.Client = client
	docs := blobs
	docs.Attempts = 1
	return &registryRun{plan: plan, docFetcher: &docs, blobs: &blobs, logf: logf, live: plan.sources}, nil
}

// loadRegistry is Load for a docker:// URL: resolve the reference to this platform's image,
// then stream its layers, in order, into dir.
func loadRegistry(ctx context.Context, dir string, urls []string, opts *Options) (*Result, error) {
	f, pin, logf, err := opts.defaults()
	if err != nil {
		return nil, err
	}
	r, err := newRegistryRun(urls, opts, f, logf)
	if err != nil {
		return nil, err
	}
	state, err := emptyTarget(dir)
	if err != nil {
		return nil, err
	}
	m := newMeter(opts.Progress)
	defer m.close()
	src := &blobsSource{total: -1, url: urls[0]}
	m.follow(src)
	img, err := r.resolve(ctx, pin)
	if err != nil {
		return nil, err
	}
	if err := m.failure(); err != nil {
		return nil, err
	}
	owners := os.Geteuid() == 0 && !opts.NoOwners
	for {
		res, err := protect(func() (*Result, error) { return r.loadOnce(ctx, dir, img, m, src, owners) })
		if err == nil {
			res.URL = RegistryScheme + img.from.reg.RegistryStr() + "/" + img.from.repo + "@" + img.digest.String()
			res.SHA256, res.Verified = img.digest.Hex, true
			return res, nil
		}
		if rerr := emptyDir(dir); rerr != nil {
			logf("cleaning %s after failure: %v", dir, rerr)
		}
		if rerr := state.restore(); rerr != nil {
			logf("after failure: %v", rerr)
		}
		var bad *badBlobError
		if !errors.As(err, &bad) || !bad.src.mirror {
			return nil, err
		}
		r.dropMirror(bad.src, bad.err)
		logf("starting over without mirror %s", bad.src.reg.RegistryStr())
	}
}

// badBlobError: a source served a blob whose digest is not the one asked for.
type badBlobError struct {
	src registrySource
	err error
}

func (e *badBlobError) Error() string { return e.err.Error() }
func (e *badBlobError) Unwrap() error { return e.err }

func (r *registryRun) sources() []registrySource {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live
}

// loadOnce downloads and applies every layer; the next layer downloads while the current one
// is applied (blobQueue).
func (r *registryRun) loadOnce(ctx context.Context, dir string, img *registryImage, m *meter, src *blobsSource, owners bool) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var total int64
	for _, l := range img.layers {
		total += l.Size
	}
	src.reset(total)
	m.follow(src)
	q := r.startBlobs(ctx, img.layers, m, src)
	defer q.stop()
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	a := newLayerApplier(root, owners, r.logf)
	res := &Result{}
	for i, l := range img.layers {
		n, format, err := r.applyLayer(ctx, q, a, m, i > 0)
		if err != nil {
			var bad *badBlobError
			if errors.As(err, &bad) {
				return nil, err
			}
			return nil, fmt.Errorf("layer %d of %d (%s): %w", i+1, len(img.layers), l.Digest, err)
		}
		res.Uncompressed += n
		if i == 0 {
			res.Format = format
		}
	}
	if err := m.failure(); err != nil {
		return nil, err
	}
	if err := a.FinishRoot(); err != nil {
		return nil, err
	}
	m.setStage(StageDone, src.URL())
	res.Size, res.Files, res.Entries = total, a.Bytes, a.Entries
	return res, nil
}

// applyLayer reads one layer from q (to the end of its blob, so that its digest is checked)
// and applies it.
func (r *registryRun) applyLayer(ctx context.Context, q *blobQueue, a *layerApplier, m *meter, lower bool) (int64, Format, error) {
	blob := q.next()
	br := bufio.NewReaderSize(blob, 64<<10)
	head, err := br.Peek(sniffLen)
	if err != nil && err != io.EOF {
		return 0, FormatUnknown, blob.explain(&StreamError{err})
	}
	format := Sniff(head)
	if format == FormatUnknown && (len(head) == 0 || (len(head) == sniffLen && allZero(head))) {
		format = FormatTar
	}
	if format == FormatUnknown {
		return 0, format, fmt.Errorf("%w: first bytes % x are not gzip, zstd or tar", ErrFormat, head[:min(len(head), 8)])
	}
	dec, err := decompressor(format, br, 0)
	if err != nil {
		return 0, format, blob.explain(&StreamError{err})
	}
	defer dec.Close()
	tail := &tailReader{r: dec, m: m, done: ctx.Done(), stopped: func() error {
		return fmt.Errorf("%w, while extracting", ctx.Err())
	}}
	if err := a.Layer(tail, lower); err != nil {
		return 0, format, blob.verdict(err)
	}
	// The compressed stream's own checks, and the blob's digest, cover every byte.
	if _, err := io.Copy(io.Discard, tail); err != nil {
		return 0, format, blob.explain(&StreamError{err})
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return 0, format, blob.explain(&StreamError{err})
	}
	return tail.n, format, nil
}

// blobsSource is what the meter shows of a registry load: the blob being downloaded, and the
// size of all layers.
type blobsSource struct {
	mu    sync.Mutex
	s     *Stream
	url   string
	total int64
}

func (b *blobsSource) reset(total int64) {
	b.mu.Lock()
	b.total = total
	b.mu.Unlock()
}

func (b *blobsSource) set(s *Stream) {
	b.mu.Lock()
	b.s = s
	b.mu.Unlock()
}

func (b *blobsSource) URL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.s != nil {
		return b.s.URL()
	}
	return b.url
}

func (b *blobsSource) Size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

func (b *blobsSource) retrying() retryStatus {
	b.mu.Lock()
	s := b.s
	b.mu.Unlock()
	if s == nil {
		return retryStatus{}
	}
	return s.retrying()
}

// blobQueue downloads an image's layers one after the other, in a goroutine, into a bounded
// queue of buffers: the download runs ahead of the extraction by at most blobBuffers
// megabytes, across layer boundaries, so that the next layer is downloading while the current
// one is still being applied. Each blob's size and digest are checked as it ends; the reader of
// a blob sees io.EOF only for a verified blob.
type blobQueue struct {
	full   chan blobChunk
	free   chan []byte
	done   chan struct{}
	exited chan struct{}
	once   sync.Once
	// discard, closed by judge: the reader has given up on the current blob; the download
	// finishes it without handing it over, records its verdict and stops.
	discard     chan struct{}
	discardOnce sync.Once
	n           int // blobs handed to readers (next)

	mu       sync.Mutex
	cur      *Stream
	verdicts map[int]error // by layer index, once the blob has ended: nil when verified
}

// blobChunk is data of the current blob, or (b nil) its end: err nil when it was verified.
type blobChunk struct {
	b   []byte
	err error
}

const (
	blobBuffers    = 8
	blobBufferSize = 1 << 20
)

func (r *registryRun) startBlobs(ctx context.Context, layers []v1.Descriptor, m *meter, src *blobsSource) *blobQueue {
	q := &blobQueue{
		full: make(chan blobChunk, blobBuffers+1), free: make(chan []byte, blobBuffers),
		done: make(chan struct{}), exited: make(chan struct{}), discard: make(chan struct{}),
		verdicts: map[int]error{},
	}
	for range blobBuffers {
		q.free <- make([]byte, blobBufferSize)
	}
	go func() {
		defer close(q.exited)
		for i, l := range layers {
			var err error
			if perr := catch(func() { err = r.download(ctx, q, l, m, src) }); perr != nil {
				err = perr
			}
			if err != nil {
				err = fmt.Errorf("layer %d of %d (%s): %w", i+1, len(layers), l.Digest, err)
			}
			q.mu.Lock()
			q.verdicts[i] = err
			q.mu.Unlock()
			if q.discarding() || !q.send(blobChunk{err: err}) || err != nil || q.discarding() {
				return
			}
		}
	}()
	return q
}

// send hands a chunk to the reader; false when the load has ended. Once the reader has given
// up on the blob (discard), the chunk is dropped.
func (q *blobQueue) send(c blobChunk) bool {
	select {
	case q.full <- c:
		return true
	case <-q.discard:
		return true
	case <-q.done:
		return false
	}
}

func (q *blobQueue) discarding() bool {
	select {
	case <-q.discard:
		return true
	default:
		return false
	}
}

// judge is called by the reader of blob i that stopped before its end: the download finishes
// that blob unread and stops; judge returns its failure (nil for a verified blob). A blob that
// had already ended is judged at once.
func (q *blobQueue) judge(i int) error {
	q.mu.Lock()
	v, ok := q.verdicts[i]
	q.mu.Unlock()
	if !ok {
		q.discardOnce.Do(func() { close(q.discard) })
		<-q.exited
		q.mu.Lock()
		v = q.verdicts[i]
		q.mu.Unlock()
	}
	return v
}

// stop ends the download and waits for its goroutine.
func (q *blobQueue) stop() {
	q.once.Do(func() { close(q.done) })
	q.mu.Lock()
	if q.cur != nil {
		q.cur.Close()
	}
	q.mu.Unlock()
	<-q.exited
}

// download streams one blob into the queue and checks it; the end marker is the caller's.
func (r *registryRun) download(ctx context.Context, q *blobQueue, l v1.Descriptor, m *meter, src *blobsSource) error {
	live := r.sources()
	urls := make([]string, len(live))
	for i, s := range live {
		urls[i] = s.url("blobs", l.Digest.String())
	}
	s, err := r.blobs.Open(ctx, urls...)
	if err != nil {
		return err
	}
	if m.fn != nil {
		s.notify = func() { m.tick(true) }
	}
	q.mu.Lock()
	q.cur = s
	stopped := false
	select {
	case <-q.done:
		stopped = true
	default:
	}
	q.mu.Unlock()
	defer s.Close()
	if stopped {
		return errStopped
	}
	src.set(s)
	dropFailed := func() {
		for i, e := range s.lastErr {
			if e != nil && live[i].mirror && i != s.cur {
				r.dropMirror(live[i], e)
			}
		}
	}
	// At most the declared size and one byte more is read: a source that sends more (an
	// endless stream for a real digest) has served a bad blob, found before it fills the
	// target, whatever the extraction makes of it.
	overlong := func(what string) error {
		dropFailed()
		from := live[min(s.cur, len(live)-1)]
		return &badBlobError{src: from, err: fmt.Errorf("blob from %s: %w: %s than the %d bytes the manifest says", from, ErrChecksum, what, l.Size)}
	}
	h := sha256.New()
	var n int64
	// Once the reader has given up on the blob, the rest is read into scratch.
	var scratch []byte
	// release puts b back into the pool, unless it is scratch.
	release := func(b []byte) {
		if scratch == nil || &b[0] != &scratch[0] {
			q.free <- b
		}
	}
	for {
		var b []byte
		select {
		case b = <-q.free:
		case <-q.discard:
			if scratch == nil {
				scratch = make([]byte, blobBufferSize)
			}
			b = scratch
		case <-q.done:
			return errStopped
		}
		k := 0
		var err error
		for k < len(b)/2 && err == nil {
			var c int
			c, err = s.Read(b[k:min(int64(len(b)), int64(k)+l.Size+1-n)])
			if c > 0 {
				h.Write(b[k : k+c])
				m.arrived(c)
			}
			k += c
			if total := s.Size(); total > l.Size {
				release(b)
				return overlong(fmt.Sprintf("it announced %d bytes, more", total))
			}
			if n+int64(k) > l.Size {
				release(b)
				return overlong("it sent more")
			}
		}
		n += int64(k)
		switch {
		case k == 0 || q.discarding():
			release(b)
		case !q.send(blobChunk{b: b[:k]}):
			return errStopped
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			dropFailed()
			return err
		}
	}
	dropFailed()
	from := live[min(s.cur, len(live)-1)]
	got := hex.EncodeToString(h.Sum(nil))
	switch {
	case got != l.Digest.Hex:
		return &badBlobError{src: from, err: fmt.Errorf("blob from %s: %w", from, &ChecksumError{Want: l.Digest.Hex, Got: got})}
	case n != l.Size:
		return &badBlobError{src: from, err: fmt.Errorf("blob from %s: %w: %d bytes, the manifest says %d", from, ErrChecksum, n, l.Size)}
	}
	return nil
}

// blobReader reads one blob of the queue.
type blobReader struct {
	q   *blobQueue
	i   int // the layer's index
	buf []byte
	off int
	mu  sync.Mutex
	err error // sticky: io.EOF for a verified blob, else why it failed
}

func (b *blobReader) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// next returns the reader of the next blob; the previous one must have been read to its end.
func (q *blobQueue) next() *blobReader {
	b := &blobReader{q: q, i: q.n}
	q.n++
	return b
}

func (b *blobReader) Read(p []byte) (int, error) {
	for b.off >= len(b.buf) {
		if b.buf != nil {
			b.q.free <- b.buf[:cap(b.buf)]
			b.buf = nil
		}
		if err := b.failure(); err != nil {
			return 0, err
		}
		var c blobChunk
		select {
		case c = <-b.q.full:
		case <-b.q.exited:
			select {
			case c = <-b.q.full:
			default:
				c = blobChunk{err: errStopped}
			}
		}
		if c.b == nil {
			err := c.err
			if err == nil {
				err = io.EOF
			}
			b.mu.Lock()
			b.err = err
			b.mu.Unlock()
			return 0, err
		}
		b.buf, b.off = c.b, 0
	}
	n := copy(p, b.buf[b.off:])
	b.off += n
	return n, nil
}

// verdict explains an extraction that failed before the end of its blob. Unless the load was
// ended, the download is let finish the blob first (at most its declared size: the download
// stops there), so that its digest is known: a blob that is not the one asked for (a mirror's
// wrong data filling the target, a decompression bomb) is then blamed on its source, which
// loses it the load, instead of failing the image.
func (b *blobReader) verdict(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPanic) {
		return b.explain(err)
	}
	if berr := b.q.judge(b.i); berr != nil {
		return berr
	}
	return b.explain(err)
}

// explain prefers the download's own failure to what it caused downstream (a corrupt gzip
// stream, a cut tar archive).
func (b *blobReader) explain(err error) error {
	if berr := b.failure(); berr != nil && berr != io.EOF {
		return berr
	}
	var se *StreamError
	if errors.As(err, &se) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrPanic) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrFormat, se.Err)
	}
	return err
}
