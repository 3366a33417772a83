package loader

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fetcher opens URLs as resumable byte streams. The zero value is usable; fields left zero get
// the defaults documented on each.
type Fetcher struct {
	// Client does the requests. Default: NewClient("", 0).
	Client *http.Client
	// Attempts is how many times one URL is tried without progress before the next mirror is
	// used. Default 4.
	Attempts int
	// Backoff is the delay before the first retry; it doubles up to MaxBackoff. Defaults 500ms
	// and 8s.
	Backoff, MaxBackoff time.Duration
	// IdleTimeout: a connection that delivers no byte for this long is stalled and is resumed
	// on a new one. Default 30s.
	IdleTimeout time.Duration
	// Logf receives one line for every retry, resume and mirror switch. Default: discard.
	Logf func(format string, args ...any)
}

// NewClient returns an HTTP client for image downloads: the system CA pool plus the PEM
// certificates in caFile (if not ""), the proxy from the environment, a connect timeout
// (default 15s), and no transparent gzip (it would hide Content-Length and break Range).
func NewClient(caFile string, connectTimeout time.Duration) (*http.Client, error) {
	if connectTimeout <= 0 {
		connectTimeout = 15 * time.Second
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("reading CA file %s: no PEM certificates in it", caFile)
		}
	}
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: pool},
		TLSHandshakeTimeout:   connectTimeout,
		ResponseHeaderTimeout: 2 * connectTimeout,
		DisableCompression:    true,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Transport: tr}, nil
}

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	c, _ := NewClient("", 0)
	f.Client = c
	return c
}

func (f *Fetcher) attempts() int {
	if f.Attempts > 0 {
		return f.Attempts
	}
	return 4
}

func (f *Fetcher) idle() time.Duration {
	if f.IdleTimeout > 0 {
		return f.IdleTimeout
	}
	return 30 * time.Second
}

func (f *Fetcher) logf(format string, args ...any) {
	if f.Logf != nil {
		f.Logf(format, args...)
	}
}

// backoff returns the delay before retry number n (1-based).
func (f *Fetcher) backoff(n int) time.Duration {
	d, max := f.Backoff, f.MaxBackoff
	if d <= 0 {
		d = 500 * time.Millisecond
	}
	if max <= 0 {
		max = 8 * time.Second
	}
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

// errChanged is returned by a Stream's Read when the object cannot be resumed because it is no
// longer the object the stream started reading. The caller must start over from byte 0.
var errChanged = errors.New("object changed on server")

// Stream is one logical download: the bytes of an object, read once from the first byte to the
// last, surviving broken connections (resumed with Range/If-Range), stalls, server errors
// (retried with backoff) and failing mirrors (the next URL takes over at the same offset when it
// serves an object of the same size).
type Stream struct {
	f    *Fetcher
	ctx  context.Context
	urls []string

	cur      int   // index of the URL in use
	off      int64 // bytes delivered so far
	total    int64 // object size, -1 while unknown
	failures int   // consecutive failed attempts on urls[cur] without progress
	errs     []urlErr

	// Validators of the object, and the URL they were seen on (they mean nothing on a mirror).
	etag, lastMod string
	valURL        int

	body   io.ReadCloser
	cancel context.CancelFunc
	mu     sync.Mutex
	timer  *time.Timer
	stall  bool // the watchdog cancelled the current attempt
	local  bool // a file, not HTTP: no retries
	eof    bool
	accept bool // the server said Accept-Ranges: bytes
}

// Open starts a stream of the object at urls[0]; the other URLs are mirrors of it. A URL may be
// http(s)://, file:// or a plain path. Nothing is requested until the first Read, except for
// local files, which are opened at once.
func (f *Fetcher) Open(ctx context.Context, urls ...string) (*Stream, error) {
	if len(urls) == 0 {
		return nil, errors.New("no URL given")
	}
	for _, u := range urls {
		if err := checkURL(u); err != nil {
			return nil, err
		}
	}
	s := &Stream{f: f, ctx: ctx, urls: urls, total: -1}
	if p, ok := localPath(urls[0]); ok {
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return nil, err
		}
		if !st.Mode().IsRegular() {
			fh.Close()
			return nil, fmt.Errorf("%s is not a regular file", p)
		}
		s.body, s.total, s.local = fh, st.Size(), true
	}
	return s, nil
}

// checkURL rejects what can never be fetched, with a message naming the problem.
func checkURL(raw string) error {
	if raw == "" {
		return errors.New("empty URL")
	}
	if _, ok := localPath(raw); ok {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http", "https":
	default:
		return fmt.Errorf("invalid URL %q: scheme %q is not http, https or file", raw, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("invalid URL %q: no host", raw)
	}
	return nil
}

// localPath returns the file a URL names when it is file:// or a plain path.
func localPath(raw string) (string, bool) {
	if strings.HasPrefix(raw, "file://") {
		u, err := url.Parse(raw)
		if err != nil || (u.Host != "" && u.Host != "localhost") {
			return "", false
		}
		return u.Path, true
	}
	if strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "./") || !strings.Contains(raw, "://") {
		return raw, true
	}
	return "", false
}

// URL is the URL the stream is reading from now.
func (s *Stream) URL() string { return s.urls[min(s.cur, len(s.urls)-1)] }

// Size is the object's size, or -1 while it is not known.
func (s *Stream) Size() int64 { return s.total }

// Offset is the number of bytes delivered so far.
func (s *Stream) Offset() int64 { return s.off }

// Read implements io.Reader. Errors it returns are final: every retry and mirror has been
// tried (or the context ended).
func (s *Stream) Read(p []byte) (int, error) {
	if s.eof {
		return 0, io.EOF
	}
	for {
		if s.body == nil {
			if err := s.open(); err != nil {
				return 0, err
			}
		}
		n, err := s.body.Read(p)
		if n > 0 {
			s.off += int64(n)
			s.failures = 0
			s.kick()
		}
		if err == nil {
			return n, nil
		}
		if err == io.EOF {
			if s.total < 0 || s.off == s.total {
				s.closeBody()
				s.eof = true
				return n, io.EOF
			}
		}
		if (err == io.EOF || err == io.ErrUnexpectedEOF) && s.total >= 0 {
			err = fmt.Errorf("%w: connection closed at byte %d of %d", ErrTruncated, s.off, s.total)
		}
		if s.local {
			return n, fmt.Errorf("reading %s: %w", s.urls[0], err)
		}
		stalled := s.closeBody()
		if s.ctx.Err() != nil {
			return n, s.ctx.Err()
		}
		if stalled {
			err = fmt.Errorf("stalled: no data for %v", s.f.idle())
		}
		s.fail(err)
		if n > 0 {
			return n, nil
		}
	}
}

// Close releases the connection.
func (s *Stream) Close() error {
	s.closeBody()
	return nil
}

func (s *Stream) fail(err error) {
	s.failures++
	s.errs = append(s.errs, urlErr{s.URL(), err})
	s.f.logf("%s: %v (attempt %d of %d, at byte %d)", s.URL(), err, s.failures, s.f.attempts(), s.off)
}

// closeBody ends the current attempt; it reports whether the watchdog had stalled it.
func (s *Stream) closeBody() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if s.body != nil {
		s.body.Close()
		s.body = nil
	}
	if s.cancel != nil {
		s.cancel()
		s.cancel = nil
	}
	stalled := s.stall
	s.stall = false
	return stalled
}

func (s *Stream) kick() {
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Reset(s.f.idle())
	}
	s.mu.Unlock()
}

// open makes attempts until one delivers a body, moving through the mirrors.
func (s *Stream) open() error {
	for {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		if s.local {
			return fmt.Errorf("%s: %w", s.urls[0], io.ErrUnexpectedEOF)
		}
		if s.failures >= s.f.attempts() {
			s.cur++
			s.failures = 0
			if s.cur >= len(s.urls) {
				s.cur = len(s.urls) - 1
				return s.finalError()
			}
			s.f.logf("trying mirror %s at byte %d", s.URL(), s.off)
		}
		if s.failures > 0 {
			t := time.NewTimer(s.f.backoff(s.failures))
			select {
			case <-s.ctx.Done():
				t.Stop()
				return s.ctx.Err()
			case <-t.C:
			}
		}
		err := s.try()
		if err == nil {
			return nil
		}
		if errors.Is(err, errChanged) {
			return err
		}
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		s.fail(err)
		var he *HTTPError
		if errors.As(err, &he) && !he.temporary() {
			s.failures = s.f.attempts() // no point retrying a 404 here
		}
	}
}

// finalError sums up why every URL failed: the last cause, naming its URL, plus how many other
// failures preceded it.
func (s *Stream) finalError() error {
	if len(s.errs) == 0 {
		return errors.New("download failed")
	}
	last := s.errs[len(s.errs)-1]
	if len(s.urls) > 1 {
		return fmt.Errorf("all %d URLs failed, last %s: %w", len(s.urls), last.url, last.err)
	}
	return last.err
}

type urlErr struct {
	url string
	err error
}

// try makes one request for the rest of the object.
func (s *Stream) try() error {
	u := s.URL()
	ctx, cancel := context.WithCancel(s.ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		cancel()
		return err
	}
	req.Header.Set("User-Agent", "ramboot")
	if s.off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", s.off))
		if s.valURL == s.cur {
			// If-Range takes a strong ETag or a date; a weak ETag would always fail.
			if s.etag != "" && !strings.HasPrefix(s.etag, "W/") {
				req.Header.Set("If-Range", s.etag)
			} else if s.lastMod != "" {
				req.Header.Set("If-Range", s.lastMod)
			}
		}
	}
	// The watchdog covers the wait for headers as well as the body.
	s.mu.Lock()
	s.cancel = cancel
	s.timer = time.AfterFunc(s.f.idle(), func() {
		s.mu.Lock()
		s.stall = true
		s.mu.Unlock()
		cancel()
	})
	s.mu.Unlock()
	resp, err := s.f.client().Do(req)
	if err != nil {
		if s.closeBody() {
			return fmt.Errorf("stalled: no response for %v", s.f.idle())
		}
		return err
	}
	s.body = resp.Body
	if err := s.accept206(resp); err != nil {
		s.closeBody()
		return err
	}
	return nil
}

func (s *Stream) accept206(resp *http.Response) error {
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	switch resp.StatusCode {
	case http.StatusOK:
		if s.off == 0 {
			s.total = resp.ContentLength
			s.etag, s.lastMod, s.valURL = etag, lastMod, s.cur
			s.accept = resp.Header.Get("Accept-Ranges") == "bytes"
			return nil
		}
		// Either the server ignores Range, or If-Range failed because the object changed.
		if s.changed(etag, lastMod, resp.ContentLength) {
			return errChanged
		}
		s.f.logf("%s ignores Range: re-reading the first %d bytes", s.URL(), s.off)
		if _, err := io.CopyN(io.Discard, resp.Body, s.off); err != nil {
			return fmt.Errorf("skipping to byte %d: %w", s.off, err)
		}
		return nil
	case http.StatusPartialContent:
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return err
		}
		if start != s.off {
			return fmt.Errorf("server resumed at byte %d, asked for %d", start, s.off)
		}
		if s.changed(etag, lastMod, total) {
			return errChanged
		}
		if s.total < 0 {
			s.total = total
		}
		s.f.logf("%s: resumed at byte %d", s.URL(), s.off)
		return nil
	case http.StatusRequestedRangeNotSatisfiable:
		// The object is now shorter than what was already read.
		return errChanged
	default:
		return &HTTPError{URL: s.URL(), Status: resp.Status, Code: resp.StatusCode}
	}
}

// changed reports whether a response is for another object than the one being read: other
// validators on the same URL, or another size anywhere.
func (s *Stream) changed(etag, lastMod string, size int64) bool {
	if s.total >= 0 && size >= 0 && size != s.total {
		return true
	}
	if s.valURL != s.cur {
		return false
	}
	if s.etag != "" && etag != "" && etag != s.etag {
		return true
	}
	return s.lastMod != "" && lastMod != "" && lastMod != s.lastMod
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*", returned as -1).
func parseContentRange(v string) (start, total int64, err error) {
	bad := fmt.Errorf("bad Content-Range %q", v)
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, 0, bad
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, bad
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, bad
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, bad
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= end {
			return 0, 0, bad
		}
	}
	return start, total, nil
}

// ReadAt reads len(p) bytes at off with a Range request on the current URL, independent of the
// stream's own connection (used to read an xz index at the end of the object). It works only
// on servers that honour Range.
func (s *Stream) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.local {
		return s.body.(*os.File).ReadAt(p, off)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.f.idle())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL(), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+int64(len(p))-1))
	resp, err := s.f.client().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return 0, fmt.Errorf("range read: HTTP %s", resp.Status)
	}
	if start, _, err := parseContentRange(resp.Header.Get("Content-Range")); err != nil || start != off {
		return 0, fmt.Errorf("range read: bad Content-Range %q", resp.Header.Get("Content-Range"))
	}
	return io.ReadFull(resp.Body, p)
}
