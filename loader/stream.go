package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// errChanged is returned by a Stream's Read when the object cannot be resumed because it is no
// longer the object the stream started reading. The caller must start over from byte 0.
var errChanged = errors.New("object changed on server")

// errClosed is returned by a Stream's Read after Close.
var errClosed = errors.New("stream closed")

// Stream is one logical download: the bytes of an object, read once from the first byte to the
// last, surviving broken connections (resumed with Range/If-Range), stalls, server errors and
// outages (retried with random backoff for Fetcher.RetryFor without progress) and failing
// mirrors (the next URL takes over at the same offset when it serves an object of the same
// size).
//
// One goroutine reads; it owns the retry state. URL, Size, Offset, ReadAt and Close may be
// called from other goroutines at any time, also while a Read is in progress: what they look
// at is written only by the reading goroutine, and only under mu.
type Stream struct {
	f     *Fetcher
	ctx   context.Context // the caller's, ended early by Close
	stop  context.CancelCauseFunc
	urls  []string
	file  *os.File // a local file (no retries), open until Close; nil for HTTP
	start time.Time
	// firstAnswer: a permanent failure (404, 403, ...) of any URL ends the stream at once,
	// unlogged, instead of handing over to the next mirror (the checksum file: the first
	// server that answers decides whether there is one).
	firstAnswer bool

	// Owned by the reading goroutine: the retry state (see fail).
	retry      retryState
	atStart    retryState // retry at the start of the current attempt
	progressed bool       // the current attempt delivered bytes
	wait       time.Duration
	final      error   // why the stream gave up; every later Read returns it
	lastErr    []error // the last failure of each URL
	dead       []bool  // URLs that failed for good (permanent)
	lastURL    int     // the URL of the last failure
	// Validators of the object, and the URL they were seen on (they mean nothing on a mirror).
	etag, lastMod string
	valURL        int
	eof           bool
	// notify is called after every failed attempt and at the start of the next one, once
	// status says so (a progress meter reports at once); nil: nobody is told. Set before the
	// first Read.
	notify func()

	// Written by the reading goroutine under mu; it reads them without.
	mu     sync.Mutex
	cur    int   // index of the URL in use
	off    int64 // bytes delivered so far
	total  int64 // object size, -1 while unknown
	body   io.ReadCloser
	cancel context.CancelFunc // ends the current attempt
	dog    *watchdog          // of the current attempt
	status retryStatus        // the retries since the last byte, for a progress meter
	closed bool               // written by Close
}

// retryStatus is what a stream tells about its failed attempts (see Progress).
type retryStatus struct {
	n     int       // failed attempts since the last progress; 0 once bytes arrive
	cause string    // why the last one failed
	next  time.Time // when the next attempt starts; zero while one runs (or none will)
}

// retryState counts failures since the last progress (the last attempt that delivered bytes
// at a rate the watchdog accepted).
type retryState struct {
	since    time.Time // the last progress, or the start
	streak   int       // failed attempts since then, on all URLs
	fails    []int     // failed attempts since then, per URL
	slowRun  int       // slow attempts in a row (ErrStalled for slowness)
	attempts int       // failed attempts since then, for the final error
}

func (r retryState) clone() retryState {
	r.fails = slices.Clone(r.fails)
	return r
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
	s := &Stream{f: f, urls: urls, total: -1, start: time.Now()}
	s.retry = retryState{since: f.now(), fails: make([]int, len(urls))}
	s.lastErr = make([]error, len(urls))
	s.dead = make([]bool, len(urls))
	if p, ok := localPath(urls[0]); ok {
		// O_NONBLOCK: a FIFO must not block open(2) (PID 1 would hang); it is refused below.
		// On a regular file the flag changes nothing.
		fh, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
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
		s.file, s.total = fh, st.Size()
	}
	s.ctx, s.stop = context.WithCancelCause(ctx)
	return s, nil
}

// URL is the URL the stream is reading from now.
func (s *Stream) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.urls[min(s.cur, len(s.urls)-1)]
}

// Size is the object's size, or -1 while it is not known.
func (s *Stream) Size() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// retrying reports the failed attempts since bytes last arrived.
func (s *Stream) retrying() retryStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// Offset is the number of bytes delivered so far.
func (s *Stream) Offset() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.off
}

// Read implements io.Reader. Errors it returns are final: every retry and mirror has been
// tried, or the context ended (the error then wraps the context's error and says how much had
// arrived). Only one goroutine may read.
func (s *Stream) Read(p []byte) (int, error) {
	if s.eof {
		return 0, io.EOF
	}
	if s.file != nil {
		return s.readFile(p)
	}
	for {
		if s.body == nil {
			if err := s.open(); err != nil {
				return 0, err
			}
		}
		n, err := s.body.Read(p)
		if n > 0 {
			s.advance(n)
		}
		if err == nil {
			return n, nil
		}
		if err == io.EOF && (s.total < 0 || s.off == s.total) {
			s.endAttempt()
			s.eof = true
			return n, io.EOF
		}
		if (err == io.EOF || err == io.ErrUnexpectedEOF) && s.total >= 0 {
			err = fmt.Errorf("%w: connection closed at byte %d of %d", ErrTruncated, s.off, s.total)
		}
		stall, slow := s.endAttempt()
		if s.ctx.Err() != nil {
			return n, s.ctxErr()
		}
		if stall != nil {
			err = stall
		}
		// What a slow attempt delivered is kept, but it is no progress: a server trickling
		// data must not be retried forever.
		s.fail(err, slow)
		if n > 0 {
			return n, nil
		}
	}
}

// readFile reads a local file: no retries, no watchdog.
func (s *Stream) readFile(p []byte) (int, error) {
	if s.ctx.Err() != nil {
		return 0, s.ctxErr()
	}
	n, err := s.file.Read(p)
	if n > 0 {
		s.advance(n)
	}
	switch {
	case err == io.EOF && s.off == s.total:
		s.eof = true
		return n, io.EOF
	case s.ctx.Err() != nil:
		return n, s.ctxErr()
	case err == io.EOF:
		return n, fmt.Errorf("reading %s: %w: the file has %d bytes, not %d", s.urls[0], ErrTruncated, s.off, s.total)
	case err != nil:
		return n, fmt.Errorf("reading %s: %w", s.urls[0], err)
	}
	return n, nil
}

// advance records n bytes delivered.
func (s *Stream) advance(n int) {
	s.mu.Lock()
	s.off += int64(n)
	s.status = retryStatus{}
	s.mu.Unlock()
	s.progressed = true
	if s.dog != nil {
		s.dog.got(n)
	}
}

// ctxErr explains why the stream's context ended: Close, or the caller's context, with what had
// arrived by then. The error wraps ctx.Err() and the context's cause when it has one of its own
// (context.WithTimeoutCause).
func (s *Stream) ctxErr() error {
	cause := context.Cause(s.ctx)
	if errors.Is(cause, errClosed) {
		return errClosed
	}
	why := fmt.Errorf("%w", s.ctx.Err())
	if cause != nil && cause != s.ctx.Err() {
		why = fmt.Errorf("%w (%w)", s.ctx.Err(), cause)
	}
	s.mu.Lock()
	off, total, cur := s.off, s.total, s.cur
	s.mu.Unlock()
	got := HumanBytes(off)
	if total >= 0 {
		got += " of " + HumanBytes(total)
	}
	if len(s.urls) > 1 {
		got += " from " + s.urls[min(cur, len(s.urls)-1)]
	}
	d := time.Since(s.start)
	return fmt.Errorf("%w after %s in %s (%s on average)", why, got, d.Round(time.Millisecond), formatRate(float64(off)/d.Seconds()))
}

// Close releases the connection or file. It may be called at any time, also while another
// goroutine is in Read, which then returns promptly with an error; Read fails after Close.
func (s *Stream) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	body, cancel, dog := s.body, s.cancel, s.dog
	s.mu.Unlock()
	// Cancel first: it ends a pending Read of the body, which Close could otherwise wait for.
	s.stop(errClosed)
	if dog != nil {
		dog.stop()
	}
	if cancel != nil {
		cancel()
	}
	if body != nil {
		body.Close()
	}
	if s.file != nil {
		s.file.Close()
	}
	return nil
}

// fail records a failed attempt on the current URL and plans the next one: which URL, after
// how long (s.wait), or that the stream gives up (s.final). slow: the watchdog ended the
// attempt for slowness, so what it delivered is no progress.
func (s *Stream) fail(err error, slow bool) {
	// Whatever is decided below, the meter hears of it once it is decided.
	defer s.tell()
	now := s.f.now()
	r := &s.retry
	switch {
	case slow:
		*r = s.atStart.clone()
		r.slowRun++
	case s.progressed:
		clear(r.fails)
		r.since, r.streak, r.slowRun, r.attempts = now, 0, 0, 0
	}
	s.progressed = false
	r.fails[s.cur]++
	r.streak++
	r.attempts++
	s.lastErr[s.cur], s.lastURL = err, s.cur
	s.mu.Lock()
	s.status = retryStatus{n: r.attempts, cause: causeOf(err)}
	s.mu.Unlock()
	attempts := s.f.attempts()
	if permanent(err) {
		s.dead[s.cur] = true
		if s.firstAnswer {
			s.final = err
			return
		}
	}
	live := 0
	for _, d := range s.dead {
		if !d {
			live++
		}
	}
	if live == 0 {
		s.final = s.finalError()
		s.logf("%s: %v", s.urls[s.cur], err)
		return
	}
	if r.slowRun >= attempts*live {
		s.final = s.finalError()
		return
	}
	// The next URL: the same one until it has failed Attempts times in a row, then the next
	// live one, round and round. With another live URL to go to, a stall or a server error
	// hands over at once: a trickling or failing server is not given Attempts stall periods
	// while a mirror may serve at full speed.
	next := s.cur
	if s.dead[next] || r.fails[next]%attempts == 0 || (live > 1 && handOver(err)) {
		for next = (next + 1) % len(s.urls); s.dead[next]; next = (next + 1) % len(s.urls) {
		}
	}
	wait := time.Duration(0)
	if r.fails[next] > 0 {
		wait = s.f.backoff(r.streak)
		var he *HTTPError
		if next == s.cur && errors.As(err, &he) && he.RetryAfter > 0 {
			wait = s.f.retryAfterDelay(he.RetryAfter)
		}
	}
	// Give up when the budget would be spent before the next attempt, once every URL has had
	// its Attempts.
	round := true
	for i, n := range r.fails {
		if !s.dead[i] && n < attempts {
			round = false
		}
	}
	budget := s.f.retryFor()
	if round && !now.Add(wait).Before(r.since.Add(budget)) {
		n := fmt.Sprintf("%d failed attempts", r.attempts)
		if r.attempts == 1 {
			n = "1 failed attempt"
		}
		s.final = fmt.Errorf("%w after %s without progress (%s): %w",
			ErrRetriesExhausted, formatDuration(now.Sub(r.since).Round(time.Millisecond)), n, s.finalError())
		return
	}
	s.wait = wait
	s.mu.Lock()
	s.status.next = time.Now().Add(wait) // the wall clock, for a countdown on the screen
	s.mu.Unlock()
	switch {
	case next != s.cur:
		s.logf("%s: %v (at byte %d)", s.urls[s.cur], err, s.off)
		verb := "trying mirror"
		if r.fails[next] > 0 || next == 0 {
			verb = "trying again"
		}
		s.logf("%s %s at byte %d%s", verb, s.urls[next], s.off, inDelay(wait))
		s.mu.Lock()
		s.cur = next
		// The URL a meter shows is the next one: the cause names the one that failed.
		s.status.cause = s.urls[s.lastURL] + ": " + s.status.cause
		s.mu.Unlock()
	default:
		s.logf("%s: %v (at byte %d): retry %d%s", s.urls[s.cur], err, s.off, r.fails[s.cur], inDelay(wait))
	}
}

// handOver reports whether a failure moves a stream with mirrors to the next one at once: a
// stall (nothing, or too little, arriving) or a server error (5xx). Other failures (a cut or
// refused connection, throttling) are retried on the same URL first.
func handOver(err error) bool {
	var he *HTTPError
	return errors.Is(err, ErrStalled) || (errors.As(err, &he) && he.Code >= 500)
}

// tell passes a change of s.status on to whoever follows the stream.
func (s *Stream) tell() {
	if s.notify != nil {
		s.notify()
	}
}

// causeOf is err for a line next to the URL: without the request's "Get URL: ", which repeats
// it.
func causeOf(err error) string {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err.Error()
	}
	return err.Error()
}

func inDelay(d time.Duration) string {
	if d = d.Round(time.Millisecond); d <= 0 {
		return ""
	}
	return " in " + d.String()
}

func (s *Stream) logf(format string, args ...any) {
	s.f.logf(format, args...)
}

// endAttempt closes the current connection; it reports why the watchdog stopped it, if it did,
// and whether for slowness.
func (s *Stream) endAttempt() (stall error, slow bool) {
	body, cancel, dog := s.body, s.cancel, s.dog
	s.mu.Lock()
	s.body, s.cancel, s.dog = nil, nil, nil
	s.mu.Unlock()
	if dog != nil {
		stall, slow = dog.stop()
	}
	if body != nil {
		body.Close()
	}
	if cancel != nil {
		cancel()
	}
	return stall, slow
}

// open makes attempts until one delivers a body, moving through the mirrors, as fail planned.
func (s *Stream) open() error {
	for {
		if s.ctx.Err() != nil {
			return s.ctxErr()
		}
		if s.final != nil {
			return s.final
		}
		if s.wait > 0 {
			if s.f.sleep(s.ctx, s.wait) != nil {
				return s.ctxErr()
			}
			s.wait = 0
		}
		s.mu.Lock()
		waited := !s.status.next.IsZero()
		s.status.next = time.Time{} // an attempt runs
		s.mu.Unlock()
		if waited {
			s.tell()
		}
		s.atStart = s.retry.clone()
		s.progressed = false
		err := s.try()
		if err == nil {
			return nil
		}
		if errors.Is(err, errChanged) {
			return err
		}
		if s.ctx.Err() != nil {
			return s.ctxErr()
		}
		s.fail(err, false)
	}
}

// finalError sums up why every URL failed: the last cause of each, naming its URL. It wraps
// the last failure's cause.
func (s *Stream) finalError() error {
	last := s.lastErr[s.lastURL]
	if last == nil {
		return errors.New("download failed")
	}
	if len(s.urls) == 1 {
		return last
	}
	var others []string
	for i, err := range s.lastErr {
		if err != nil && i != s.lastURL {
			others = append(others, fmt.Sprintf("%s: %v", s.urls[i], err))
		}
	}
	also := ""
	if len(others) > 0 {
		also = " (before: " + strings.Join(others, "; ") + ")"
	}
	return fmt.Errorf("all %d URLs failed, last %s: %w%s", len(s.urls), s.urls[s.lastURL], last, also)
}

// try makes one request for the rest of the object.
func (s *Stream) try() error {
	u := s.urls[s.cur]
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
	dog := startWatchdog(s.f, cancel)
	s.mu.Lock()
	s.cancel, s.dog = cancel, dog
	s.mu.Unlock()
	resp, err := s.f.client().Do(req)
	if err != nil {
		if stall, _ := s.endAttempt(); stall != nil {
			return stall
		}
		return err
	}
	s.mu.Lock()
	s.body = resp.Body
	closed := s.closed // then Close did not see the body: it is closed here
	s.mu.Unlock()
	if closed {
		s.endAttempt()
		return errClosed
	}
	if err := s.accept206(resp); err != nil {
		// The watchdog may have ended it (skipping what a server ignoring Range sends again):
		// then it stalled, whatever the read said.
		if stall, _ := s.endAttempt(); stall != nil {
			return stall
		}
		return err
	}
	return nil
}

func (s *Stream) accept206(resp *http.Response) error {
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	switch resp.StatusCode {
	case http.StatusOK:
		if s.off == 0 {
			s.setTotal(resp.ContentLength)
			s.etag, s.lastMod, s.valURL = etag, lastMod, s.cur
			return nil
		}
		// Either the server ignores Range, or If-Range failed because the object changed.
		if s.changed(etag, lastMod, resp.ContentLength) {
			return errChanged
		}
		s.f.logf("%s ignores Range: re-reading the first %d bytes", s.urls[s.cur], s.off)
		// The bytes skipped count for the watchdog: they show the connection is alive.
		if _, err := io.CopyN(io.Discard, &watchedReader{resp.Body, s.dog}, s.off); err != nil {
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
			s.setTotal(total)
		}
		s.f.logf("%s: resumed at byte %d", s.urls[s.cur], s.off)
		return nil
	case http.StatusRequestedRangeNotSatisfiable:
		// nginx answers a range past the end with "bytes */SIZE": the object has SIZE bytes.
		size := int64(-1)
		if v, ok := strings.CutPrefix(resp.Header.Get("Content-Range"), "bytes */"); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				size = n
			}
		}
		if s.total > s.off && (size < 0 || size == s.off) {
			// Not a new object: the server announced more than it has (a Content-Length
			// larger than the body, a file truncated while served). Starting over would end
			// in the same place.
			return &permanentError{fmt.Errorf("%w: the server sent %d of the %d bytes it announced, then refused the range (%s)",
				ErrTruncated, s.off, s.total, resp.Status)}
		}
		// The object is now shorter than what was already read.
		return fmt.Errorf("%w: it now has %d bytes, %d were read (%s)", errChanged, size, s.off, resp.Status)
	default:
		he := &HTTPError{URL: s.urls[s.cur], Status: resp.Status, Code: resp.StatusCode}
		if he.Code == http.StatusTooManyRequests || he.Code == http.StatusServiceUnavailable {
			he.RetryAfter, _ = parseRetryAfter(resp.Header.Get("Retry-After"), s.f.now())
		}
		return he
	}
}

func (s *Stream) setTotal(n int64) {
	s.mu.Lock()
	s.total = n
	s.mu.Unlock()
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

// ReadAt reads len(p) bytes at off with a Range request on the current URL, independent of the
// stream's own connection (used to read an xz index at the end of the object), or with pread on
// a local file. It works only on servers that honour Range. It may be called while another
// goroutine reads the stream.
func (s *Stream) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if s.file != nil {
		return s.file.ReadAt(p, off)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.f.idle())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL(), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "ramboot")
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
