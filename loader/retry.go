package loader

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The retry policy of a Stream: how long it waits before the next attempt, and when it gives
// up. It is sized for the failure that matters most to a fleet booting from one server: the
// server restarting, or a switch dropping every connection at once. Every client is then cut at
// the same moment, so the delays are random ("full jitter": uniform between zero and an
// exponentially growing ceiling), lest all clients come back in the same millisecond and knock
// the server over again; and the clients keep trying for minutes, not seconds.
//
// The random numbers come from math/rand/v2, whose generator the Go runtime seeds from the
// kernel's AT_RANDOM auxiliary vector at start-up: it never waits for the kernel's entropy pool,
// which /init runs before (crypto/rand would block there).

// The defaults of the Fetcher's retry fields.
const (
	// DefaultRetryFor is how long a stream keeps retrying without receiving a byte: long
	// enough for a boot server to restart or a switch to reconverge.
	DefaultRetryFor = 5 * time.Minute
	// DefaultBackoff and DefaultMaxBackoff bound the random delay before a retry: at most
	// DefaultBackoff before the first, doubling up to DefaultMaxBackoff.
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 16 * time.Second
	// MaxRetryAfter caps how long a server's Retry-After makes a stream wait at a time.
	MaxRetryAfter = 2 * time.Minute
)

// retryFor is the retry budget; 0 when retries end after one round of the URLs.
func (f *Fetcher) retryFor() time.Duration {
	switch {
	case f.RetryFor > 0:
		return f.RetryFor
	case f.RetryFor < 0:
		return 0
	}
	return DefaultRetryFor
}

func (f *Fetcher) baseBackoff() time.Duration {
	if f.Backoff > 0 {
		return f.Backoff
	}
	return DefaultBackoff
}

// backoffCap is the ceiling of the delay before retry n (1-based) since the last progress:
// Backoff doubled n-1 times, at most MaxBackoff.
func (f *Fetcher) backoffCap(n int) time.Duration {
	d, ceiling := f.baseBackoff(), f.MaxBackoff
	if ceiling <= 0 {
		ceiling = DefaultMaxBackoff
	}
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// backoff draws the delay before retry n: uniform in [0, backoffCap(n)].
func (f *Fetcher) backoff(n int) time.Duration {
	return rand.N(f.backoffCap(n) + 1)
}

// retryAfterDelay is the wait a server asked for, capped at MaxRetryAfter, plus a random part
// of up to Backoff, so that clients told the same date do not all come back at once.
func (f *Fetcher) retryAfterDelay(d time.Duration) time.Duration {
	return min(d, MaxRetryAfter) + rand.N(f.baseBackoff()+1)
}

// now and sleep are the stream's clock, replaced in tests so that a budget of minutes can be
// spent in microseconds.
func (f *Fetcher) now() time.Time {
	if f.clock != nil {
		return f.clock.Now()
	}
	return time.Now()
}

func (f *Fetcher) sleep(ctx context.Context, d time.Duration) error {
	if f.clock != nil {
		return f.clock.Sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// clock is what a stream's retries read the time from and wait with.
type clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date (RFC 9110 10.2.3),
// relative to now. A date in the past is a zero delay; ok is false for anything else.
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return MaxRetryAfter, true // all digits, only too large: as long as allowed
			}
			return 0, false
		}
		if n > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(0, min(t.Sub(now), MaxRetryAfter)), true
}

// permanentError marks a failure that retrying the same URL cannot mend.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// permanent reports whether retrying the same URL cannot help: a client error (404, 403, ...),
// an untrusted certificate, or a failure marked so. Everything else (refused and reset
// connections, timeouts, server errors, throttling, name lookups) may be a server restarting.
func permanent(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return !he.temporary()
	}
	var pe *permanentError
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &pe) || errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}
