package loader

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/xzpar"
)

// Options tune Load. The zero value verifies against URL.sha256 when the server has one.
type Options struct {
	// SHA256 is the expected checksum (hex). Empty: URL.sha256 (".sha256" appended to the
	// URL's path, its query kept) is fetched and used when it exists; a 404 or 410 means it
	// does not, any other failure to read it fails the load with ErrChecksumFile.
	SHA256 string
	// NoSidecar skips looking for URL.sha256 when SHA256 is empty.
	NoSidecar bool
	// Fetcher does the downloads. Default: a zero Fetcher (system CAs, default retries).
	Fetcher *Fetcher
	// Progress receives snapshots about ten times a second while bytes arrive, every second
	// at least, and at every stage change, failed attempt and start of the next attempt
	// (from the checksum file's first request on), from more than one goroutine but never
	// two calls at once. A panic in it fails the load with ErrPanic.
	Progress func(Progress)
	// Logf receives retries, resumes, warnings. Default: discard.
	Logf func(format string, args ...any)
	// NoOwners keeps the extracting user as owner of every file. Owners are always kept
	// only when running as root.
	NoOwners bool
	// SkipSpaceCheck skips refusing an image whose uncompressed size is known to exceed the
	// free space.
	SkipSpaceCheck bool
	// Restarts is how often a download starts over because the object changed on the server.
	// Default 2.
	Restarts int
	// Verifiers check the image as it streams (signatures); see Verifier. All must pass
	// before the root is finished or the file kept.
	Verifiers []Verifier
	// Registry configures docker:// URLs: mirrors, plain-HTTP registries, credentials. For a
	// docker:// URL, SHA256 is the digest its reference must resolve to.
	Registry Registry
}

// Result describes a completed load.
type Result struct {
	URL          string // the URL (of the mirrors) the last byte came from
	Format       Format
	Size         int64  // bytes downloaded (the compressed image)
	Uncompressed int64  // bytes of the tar stream
	Files        int64  // bytes of file data written
	Entries      int    // archive entries extracted
	SHA256       string // of the image as downloaded
	Verified     bool   // SHA256 matched an expected sum
	Duration     time.Duration
}

// Load streams the image at urls[0] (the rest are mirrors of it) into dir, which is created if
// missing and must be empty. It verifies the checksum when one is known, and returns only once
// the whole image was extracted and verified. A docker:// urls[0] is an image in an OCI
// registry (see Registry): its digests verify it, and the other URLs are registry mirrors
// (http(s)://HOST[:PORT]) or other docker:// references of the same image.
//
// On any failure Load removes everything it extracted, leaving dir empty: a partial or
// unverified tree is never left behind. Errors wrap ErrChecksum, ErrChecksumFile,
// ErrInsecurePath, ErrFormat, ErrNoSpace, ErrTruncated, ErrChanged, ErrStalled,
// ErrRetriesExhausted, ErrPanic or an *HTTPError where one applies, and name the URL. When ctx
// ends, at any stage (checksum file, download, decompression, extraction), Load returns
// promptly with an error wrapping ctx.Err() that tells how much had arrived.
//
// Load does not panic: a panic in its goroutines or in Options.Progress becomes an ErrPanic
// error. Once Load has returned, it calls Options.Progress no more.
func Load(ctx context.Context, dir string, urls []string, opts Options) (*Result, error) {
	if len(urls) == 0 {
		return nil, errors.New("no image URL given")
	}
	start := time.Now()
	res, err := protect(func() (*Result, error) { return load(ctx, dir, urls, &opts) })
	if err != nil {
		return nil, fmt.Errorf("%s: %w", urls[0], err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

// setup applies the defaults of opts and checks what can be checked before any request.
func (opts *Options) setup(urls []string) (f *Fetcher, want string, logf func(string, ...any), err error) {
	if f, want, logf, err = opts.defaults(); err != nil {
		return nil, "", nil, err
	}
	for _, u := range urls {
		if err := checkURL(u); err != nil {
			return nil, "", nil, err
		}
	}
	return f, want, logf, nil
}

// defaults are the options every load starts from: the log, the fetcher, the sum asked for.
func (opts *Options) defaults() (f *Fetcher, want string, logf func(string, ...any), err error) {
	logf = opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	f = opts.Fetcher
	if f == nil {
		f = &Fetcher{Logf: logf}
	}
	want = strings.ToLower(strings.TrimSpace(opts.SHA256))
	if want != "" && !isSHA256(want) {
		return nil, "", nil, fmt.Errorf("bad sha256 %q: want 64 hex digits", opts.SHA256)
	}
	return f, want, logf, nil
}

// emptyTarget creates dir if missing, refuses one that holds anything, and saves its own
// metadata: it goes back to that after every failed attempt, since the archive's "./" entry
// is applied only to a verified image (Extractor.FinishRoot).
func emptyTarget(dir string) (*dirState, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if names, err := readNames(dir); err != nil {
		return nil, err
	} else if len(names) > 0 {
		return nil, fmt.Errorf("%w: %s holds %s", ErrNotEmpty, dir, strings.Join(names[:min(3, len(names))], ", "))
	}
	return saveDir(dir)
}

// expectedSum is the sum to verify against: want, else URL.sha256's when the server has one.
// m follows the checksum file's download, so that its retries show.
func (opts *Options) expectedSum(ctx context.Context, f *Fetcher, urls []string, want string, m *meter, logf func(string, ...any)) (string, error) {
	if want != "" || opts.NoSidecar {
		return want, nil
	}
	sum, err := fetchSidecar(ctx, f, urls, m, logf)
	if err != nil {
		return "", err
	}
	// A Progress call of the heartbeat panicked: the meter is off for the rest of the load.
	return sum, m.failure()
}

func load(ctx context.Context, dir string, urls []string, opts *Options) (*Result, error) {
	if IsRegistry(urls[0]) {
		return loadRegistry(ctx, dir, urls, opts)
	}
	f, want, logf, err := opts.setup(urls)
	if err != nil {
		return nil, err
	}
	state, err := emptyTarget(dir)
	if err != nil {
		return nil, err
	}
	// From here on a server that does not answer shows in the progress: the meter follows
	// the checksum file, then the image, until Load returns.
	m := newMeter(opts.Progress)
	defer m.close()
	if want, err = opts.expectedSum(ctx, f, urls, want, m, logf); err != nil {
		return nil, err
	}
	restarts := opts.Restarts
	if restarts <= 0 {
		restarts = 2
	}
	for attempt := 0; ; attempt++ {
		// A panic is an error here, so that the directory is emptied all the same.
		res, err := protect(func() (*Result, error) { return loadOnce(ctx, dir, urls, want, f, m, opts, logf) })
		if err == nil {
			return res, nil
		}
		if rerr := emptyDir(dir); rerr != nil {
			logf("cleaning %s after failure: %v", dir, rerr)
		}
		if rerr := state.restore(); rerr != nil {
			logf("after failure: %v", rerr)
		}
		if !errors.Is(err, errChanged) {
			return nil, err
		}
		if attempt >= restarts {
			return nil, fmt.Errorf("%w: it changed %d times during the download, last: %w", ErrChanged, attempt+1, err)
		}
		logf("%v: starting over", err)
	}
}

func loadOnce(ctx context.Context, dir string, urls []string, want string, f *Fetcher, m *meter, opts *Options, logf func(string, ...any)) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := f.Open(ctx, urls...)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	m.begin(s)
	h := opts.newHash()
	ra := newReadahead(s, h, m, 4, 1<<20)
	// Closing the stream ends the goroutine's pending read; waiting for it means that nothing
	// of this load (a Progress call) runs once Load has returned.
	defer func() {
		s.Close()
		ra.Close()
		ra.wait()
	}()
	br := bufio.NewReaderSize(ra, 64<<10)
	head, err := br.Peek(sniffLen)
	if err != nil && err != io.EOF {
		return nil, streamErr(FormatUnknown, ra, &StreamError{err})
	}
	m.fetching() // the readahead did at the first byte, unless the image is empty
	format := Sniff(head)
	if format == FormatUnknown && len(head) == sniffLen && allZero(head) {
		format = FormatTar // an empty archive, or a lone zero block: see Extractor.Extract
	}
	if format == FormatUnknown {
		return nil, fmt.Errorf("%w: first bytes % x are not xz, zstd, gzip, bzip2 or tar", ErrFormat, head[:min(len(head), 8)])
	}
	need := int64(-1)
	if !opts.SkipSpaceCheck {
		if need, err = checkSpace(dir, format, head, s, logf); err != nil {
			return nil, err
		}
	}
	dec, err := decompressor(format, br, memoryReserve(dir, need))
	if err != nil {
		return nil, streamErr(format, ra, &StreamError{err})
	}
	defer dec.Close()
	// Cancellation is checked at every read of the tar stream, so between entries and within
	// large files: once the download is done the stream no longer looks at ctx, and
	// decompressing and extracting what arrived can take seconds.
	tail := &tailReader{r: dec, m: m, done: ctx.Done(), stopped: func() error {
		// The stream's context ends just after ctx (cancellation reaches children after the
		// parent's Done is closed): until it has, ctx's own error says why.
		if s.ctx.Err() == nil {
			return fmt.Errorf("%w, while extracting", context.Cause(ctx))
		}
		return fmt.Errorf("%w, while extracting", s.ctxErr())
	}}

	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	x := NewExtractor(root, os.Geteuid() == 0 && !opts.NoOwners, logf)
	switch format {
	case FormatXZ:
		x.decoders = xzWorkers()
	case FormatZstd, FormatGzip, FormatBzip2:
		x.decoders = 1 // decoded on goReader's goroutine
	}
	if err := x.Extract(tail); err != nil {
		if errors.Is(err, ErrNoSpace) {
			return nil, fmt.Errorf("%w (%s filled up after %s of the image)", err, dir, HumanBytes(x.Bytes))
		}
		return nil, streamErr(format, ra, err)
	}
	m.setStage(StageVerifying, s.URL())
	// Read to the end: the compressed stream's own checks, and the hash, cover every byte.
	if _, err := io.Copy(io.Discard, tail); err != nil {
		return nil, streamErr(format, ra, &StreamError{err})
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return nil, streamErr(format, ra, &StreamError{err})
	}
	if err := m.failure(); err != nil {
		return nil, err
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return nil, &ChecksumError{Want: want, Got: got}
	}
	if err := opts.verify(); err != nil {
		return nil, err
	}
	if err := x.FinishRoot(); err != nil {
		return nil, err
	}
	m.setStage(StageDone, s.URL())
	return &Result{
		URL: s.URL(), Format: format, Size: s.Offset(), Uncompressed: tail.n,
		Files: x.Bytes, Entries: x.Entries, SHA256: got, Verified: want != "",
	}, nil
}

// streamErr explains a failure to read the tar stream: the download's own error when the
// download failed (it names retries, mirrors, truncation), else corrupt data of the format.
func streamErr(f Format, ra *readahead, err error) error {
	var se *StreamError
	if !errors.As(err, &se) {
		return err
	}
	if src := ra.sourceErr(); src != nil {
		return src
	}
	switch {
	case errors.Is(err, ErrPanic), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, xzpar.ErrPanic):
		return fmt.Errorf("%w: %s: %w", ErrPanic, f, se.Err)
	}
	return fmt.Errorf("%w: %s: %w", ErrFormat, f, se.Err)
}

// tailReader counts the tar stream (the extractor tells a complete archive from a cut one).
//
// It also ends the load when ctx ends (done; stopped explains it) or a Progress call panicked.
type tailReader struct {
	r       io.Reader
	m       *meter
	done    <-chan struct{}
	stopped func() error
	n       int64
}

func (t *tailReader) Read(p []byte) (int, error) {
	select {
	case <-t.done:
		return 0, t.stopped()
	default:
	}
	if err := t.m.failure(); err != nil {
		return 0, err
	}
	n, err := t.r.Read(p)
	if n > 0 {
		t.n += int64(n)
		t.m.extracted(n)
	}
	return n, err
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// fetchSidecar reads the checksum file of the image (sidecarURL: URL.sha256, in sha256sum
// format). The first server that answers decides: a 404 or 410 means there is none ("" and no
// error); any other refusal (401, 403, ...), or no answer within the retry budget, fails with
// ErrChecksumFile, naming the URL and the status: an image that has a checksum file is never
// booted unverified because the file could not be read. The mirrors' checksum files are asked
// only when the first URL's server does not answer.
//
// m follows the download: to a Progress callback it is the image's connecting stage.
func fetchSidecar(ctx context.Context, f *Fetcher, urls []string, m *meter, logf func(string, ...any)) (string, error) {
	side := make([]string, len(urls))
	for i, u := range urls {
		side[i] = sidecarURL(u)
	}
	s, err := f.Open(ctx, side...)
	if errors.Is(err, os.ErrNotExist) {
		logf("no checksum file at %s", side[0])
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%w %s: %w", ErrChecksumFile, side[0], err)
	}
	defer s.Close()
	s.firstAnswer = true
	m.begin(s)
	b, err := io.ReadAll(io.LimitReader(s, 64<<10))
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("fetching the checksum file %s: %w", s.URL(), err)
		}
		var he *HTTPError
		if errors.As(err, &he) && (he.Code == http.StatusNotFound || he.Code == http.StatusGone) {
			logf("no checksum file at %s (%d)", he.URL, he.Code)
			return "", nil
		}
		return "", fmt.Errorf("%w %s: %w", ErrChecksumFile, s.URL(), err)
	}
	name := baseName(urls[0])
	for i, u := range side {
		if u == s.URL() {
			name = baseName(urls[i])
		}
	}
	sum, err := ParseSHA256Sums(b, name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", s.URL(), err)
	}
	logf("verifying against %s", s.URL())
	return sum, nil
}

// ParseSHA256Sums finds the sum for name in sha256sum output ("HEX  NAME" lines, or a bare
// HEX). With several lines the one naming name wins; a single line is taken whatever its name.
func ParseSHA256Sums(b []byte, name string) (string, error) {
	var sums []string
	for line := range strings.Lines(string(b)) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		sum := strings.ToLower(fields[0])
		if !isSHA256(sum) {
			return "", fmt.Errorf("not a sha256 checksum: %q", strings.TrimSpace(line))
		}
		if len(fields) > 1 && strings.TrimPrefix(fields[1], "*") == name {
			return sum, nil
		}
		sums = append(sums, sum)
	}
	switch len(sums) {
	case 0:
		return "", errors.New("empty checksum file")
	case 1:
		return sums[0], nil
	}
	return "", fmt.Errorf("no checksum for %s among %d lines", name, len(sums))
}

// checkSpace refuses an image that cannot fit, when its uncompressed size can be known up front:
// a plain tar's length, a zstd frame's content size, an xz index (read with a Range request).
// It returns the size it found (-1: unknown).
func checkSpace(dir string, f Format, head []byte, s *Stream, logf func(string, ...any)) (int64, error) {
	var need int64 = -1
	switch f {
	case FormatTar:
		need = s.Size()
	case FormatZstd:
		var zh zstd.Header
		if zh.Decode(head) == nil && zh.HasFCS {
			need = int64(zh.FrameContentSize) // a lower bound if there are more frames
		}
	case FormatXZ:
		if s.Size() > 0 {
			n, err := xzpar.UncompressedSize(s, s.Size())
			if err != nil {
				logf("size of the xz image unknown (%v): skipping the space check", err)
			} else {
				need = n
			}
		}
	}
	if need < 0 {
		return need, nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return need, fmt.Errorf("statfs %s: %w", dir, err)
	}
	free := int64(st.Bavail) * int64(st.Bsize) // Bsize is int32 on 32-bit systems
	if need > free {
		return need, fmt.Errorf("%w: the image needs %s unpacked but %s has %s free", ErrNoSpace, HumanBytes(need), dir, HumanBytes(free))
	}
	return need, nil
}

// memoryReserve is the RAM the extraction will take besides the decoder's: when dir is on a
// tmpfs (as /init's new root is), the image's uncompressed size, or all the free space when
// that size is unknown; nothing on a disk. The xz decoder leaves it out of its memory budget.
func memoryReserve(dir string, need int64) int64 {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil || (st.Type != unix.TMPFS_MAGIC && st.Type != unix.RAMFS_MAGIC) {
		return 0
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if need >= 0 && need < free {
		return need
	}
	return free
}

// HumanBytes formats n as "12.3 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func readNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

// emptyDir removes everything inside dir, not dir itself.
func emptyDir(dir string) error {
	names, err := readNames(dir)
	if err != nil {
		return err
	}
	var first error
	for _, n := range names {
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil && first == nil {
			first = err
		}
	}
	return first
}
