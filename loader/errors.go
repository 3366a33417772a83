package loader

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"
)

// Sentinel errors, for callers (/init) that branch on the kind of failure. Errors returned by
// Load wrap one of these where one applies; test with errors.Is.
var (
	// ErrChecksum: the image's SHA-256 differs from the expected one.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrInsecurePath: an archive entry would land outside the target directory (an absolute
	// name, a ".." component, or a path through a symlink that leaves the tree).
	ErrInsecurePath = errors.New("insecure path in archive")
	// ErrFormat: the data is not a supported compressed or plain tar archive, or is corrupt.
	ErrFormat = errors.New("unsupported or corrupt image format")
	// ErrNoSpace: the image does not fit into the target directory's file system.
	ErrNoSpace = errors.New("not enough space")
	// ErrTruncated: the stream ended before the size the server announced, and could not be
	// resumed.
	ErrTruncated = errors.New("truncated download")
	// ErrChanged: the object on the server changed during the download and the restart limit
	// was reached.
	ErrChanged = errors.New("image changed on server")
	// ErrNotEmpty: the target directory has content that Load did not put there.
	ErrNotEmpty = errors.New("target directory is not empty")
	// ErrStalled: a connection delivered nothing for Fetcher.IdleTimeout, or less than
	// Fetcher.MinRate over Fetcher.MinRateWindow, on every attempt and mirror.
	ErrStalled = errors.New("transfer stalled")
	// ErrRetriesExhausted: a stream kept failing for Fetcher.RetryFor without receiving a
	// byte, on every URL. The error wraps the last failure's cause too (an *HTTPError, a
	// connection error, ErrTruncated, ErrStalled).
	ErrRetriesExhausted = errors.New("gave up retrying")
	// ErrChecksumFile: the checksum file (URL.sha256, looked for when no checksum was given)
	// exists or may exist but could not be read: the server refused it (401, 403, any answer
	// but 404 or 410), or did not answer within the retry budget. The load fails rather than
	// boot unverified; only a 404 or 410 means there is no checksum file.
	ErrChecksumFile = errors.New("cannot read the checksum file")
	// ErrPanic: a bug. Code of the load, or a callback it ran (Options.Progress), panicked;
	// the panic was turned into this error, whose message holds the panic value and the stack
	// of the goroutine that panicked, so that /init fails the load rather than the kernel.
	ErrPanic = errors.New("internal error")
)

// panicError turns a recovered panic value into an error wrapping ErrPanic. Call it in the
// deferred function that recovered, so that the stack is the panicking goroutine's.
func panicError(p any) error {
	return fmt.Errorf("%w: panic: %v\n%s", ErrPanic, p, debug.Stack())
}

// catch runs fn and returns a panic in it as an error wrapping ErrPanic.
func catch(fn func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError(p)
		}
	}()
	fn()
	return nil
}

// protect runs fn and turns a panic in it into an error wrapping ErrPanic.
func protect[T any](fn func() (T, error)) (v T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError(p)
		}
	}()
	return fn()
}

// HTTPError is a response status that ends an attempt on one URL.
type HTTPError struct {
	URL    string
	Status string // e.g. "404 Not Found"
	Code   int
	// RetryAfter is the delay a 429 or 503 asked for with Retry-After (capped at
	// MaxRetryAfter), 0 when it asked for none.
	RetryAfter time.Duration
}

func (e *HTTPError) Error() string { return fmt.Sprintf("HTTP %s", e.Status) }

// temporary reports whether retrying the same URL may help: server errors and throttling do;
// client errors (404, 403, ...) do not.
func (e *HTTPError) temporary() bool {
	return e.Code >= 500 || e.Code == 429 || e.Code == 408
}

// ChecksumError names both sums; it wraps ErrChecksum.
type ChecksumError struct {
	Want, Got string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("checksum mismatch: expected sha256 %s, got %s", e.Want, e.Got)
}

func (e *ChecksumError) Unwrap() error { return ErrChecksum }
