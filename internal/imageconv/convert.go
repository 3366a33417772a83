package imageconv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Options tune Convert. The zero value makes a faithful image of the source for linux/amd64.
type Options struct {
	// Force replaces an existing output; without it Convert refuses to touch one.
	Force bool
	// MtimeClamp, when not zero, caps every mtime (SOURCE_DATE_EPOCH semantics); it is also
	// the time of the entries Convert makes. Unset, those get the newest mtime of the tree.
	MtimeClamp time.Time
	// DropModules leaves lib/modules and usr/lib/modules empty: ramboot's /init copies the
	// running kernel's modules into images that have none for it.
	DropModules bool
	// RootPasswordEmpty empties root's password (in etc/shadow, else etc/passwd), for rescue
	// images with a console login.
	RootPasswordEmpty bool
	// SSHKeys are authorized_keys lines added for root (home from etc/passwd, .ssh 0700,
	// authorized_keys 0600, owned by root).
	SSHKeys []byte
	// Platform selects among a multi-platform image's manifests; default linux/amd64.
	Platform string
	// Keychain finds registry credentials; default authn.DefaultKeychain (docker's
	// config.json and its credential helpers).
	Keychain authn.Keychain
	// Transport for registry requests; default go-containerregistry's.
	Transport http.RoundTripper
	// TempDir holds the spool of tar and container sources (their data, uncompressed,
	// so that entries can be sorted); default os.TempDir().
	TempDir string
	// Progress receives snapshots about ten times a second and at every stage change.
	Progress func(Progress)
	// Logf receives warnings (skipped sockets, edits made). Default: discard.
	Logf func(format string, args ...any)
}

// Stage is where a conversion is.
type Stage int

// The stages of a conversion, in order.
const (
	StageReading Stage = iota // reading the source (and spooling its data)
	StageWriting              // writing and compressing the archive
	StageDone
)

func (s Stage) String() string { return [...]string{"reading", "writing", "done"}[s] }

// Progress is a snapshot handed to Options.Progress.
type Progress struct {
	Stage Stage
	Done  int64 // bytes: of the source read (tar files: compressed) or of the archive written
	Total int64 // the same's total, 0 when unknown
}

// Result describes a written image.
type Result struct {
	Out         string
	Compression Compression
	SHA256      string
	Size        int64 // bytes of the output
	TarSize     int64 // bytes of the uncompressed archive
	Entries     int
	Duration    time.Duration
}

// ErrExists means the output exists and Options.Force is not set.
var ErrExists = errors.New("output exists (use --force to replace it)")

// Convert makes the image of src at out, compressed by out's extension, and out.sha256 beside
// it. Both appear complete or not at all (temporary files renamed into place).
func Convert(ctx context.Context, src Source, out string, opts Options) (*Result, error) {
	start := time.Now()
	comp, err := CompressionFor(out)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Lstat(out); err == nil && !opts.Force {
		return nil, fmt.Errorf("%s: %w", out, ErrExists)
	} else if err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is a directory", ErrOutput, out)
	}
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	plat, err := v1.ParsePlatform(cmp.Or(opts.Platform, "linux/amd64"))
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", opts.Platform, err)
	}
	m := newMeter(opts.Progress)
	defer m.stop()

	t := newTree(opts.TempDir, logf, func(n int64) { m.done.Add(n) })
	defer t.close()
	if err := read(ctx, t, src, plat, opts, m); err != nil {
		return nil, fmt.Errorf("%v: %w", src, err)
	}
	dirTime := opts.MtimeClamp
	if dirTime.IsZero() {
		dirTime = t.newest()
	}
	if err := edit(t, opts, dirTime); err != nil {
		return nil, err
	}
	nodes, err := t.finish(dirTime)
	if err != nil {
		return nil, fmt.Errorf("%v: %w", src, err)
	}
	size, err := tarSize(nodes, opts.MtimeClamp)
	if err != nil {
		return nil, err
	}

	m.set(StageWriting, size)
	o, err := createOutput(out)
	if err != nil {
		return nil, err
	}
	if err := write(ctx, t, nodes, opts.MtimeClamp, comp, size, o, m); err != nil {
		o.abort()
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	if err := o.commit(out); err != nil {
		o.abort()
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	m.set(StageDone, size)
	return &Result{
		Out: out, Compression: comp, SHA256: o.sum(), Size: o.n, TarSize: size,
		Entries: len(nodes), Duration: time.Since(start),
	}, nil
}

func read(ctx context.Context, t *tree, src Source, plat *v1.Platform, opts Options, m *meter) error {
	switch src.Kind {
	case KindDir:
		return t.addDir(ctx, src.Path)
	case KindTar:
		return t.addTarFile(ctx, src.Path, func(done, total int64) { m.done.Store(done); m.total.Store(total) })
	case KindDockerArchive, KindOCI, KindRegistry:
		kc := opts.Keychain
		if kc == nil {
			kc = authn.DefaultKeychain
		}
		img, err := openImage(ctx, src, plat, kc, opts.Transport)
		if err != nil {
			return err
		}
		if err := checkImage(img, src, plat); err != nil {
			return err
		}
		return t.addImage(ctx, img)
	}
	return fmt.Errorf("%w: unknown source kind %d", ErrSource, src.Kind)
}

func write(ctx context.Context, t *tree, nodes []*node, clamp time.Time, comp Compression, size int64, o *output, m *meter) error {
	cw, err := compressor(comp, o, size)
	if err != nil {
		return err
	}
	err = writeTar(t, nodes, clamp, &progressWriter{ctx: ctx, w: cw, m: m})
	if cerr := cw.Close(); err == nil {
		err = cerr
	}
	return err
}

// progressWriter counts the archive's bytes and stops when ctx is done.
type progressWriter struct {
	ctx context.Context
	w   io.Writer
	m   *meter
}

func (p *progressWriter) Write(b []byte) (int, error) {
	if err := p.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := p.w.Write(b)
	p.m.done.Add(int64(n))
	return n, err
}

// meter turns counts into throttled Progress callbacks from a goroutine of its own.
type meter struct {
	fn          func(Progress)
	done, total atomic.Int64
	mu          sync.Mutex
	stage       Stage
	quit        chan struct{}
	wg          sync.WaitGroup
}

func newMeter(fn func(Progress)) *meter {
	m := &meter{fn: fn, quit: make(chan struct{})}
	if fn == nil {
		return m
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-m.quit:
				return
			case <-tick.C:
				m.report()
			}
		}
	}()
	m.report()
	return m
}

func (m *meter) report() {
	if m.fn == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fn(Progress{Stage: m.stage, Done: m.done.Load(), Total: m.total.Load()})
}

func (m *meter) set(s Stage, total int64) {
	m.mu.Lock()
	m.stage = s
	m.done.Store(0)
	if s == StageDone {
		m.done.Store(total)
	}
	m.total.Store(total)
	m.mu.Unlock()
	m.report()
}

func (m *meter) stop() {
	close(m.quit)
	m.wg.Wait()
}
