package loader

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fetcher opens URLs as resumable byte streams. The zero value is usable; fields left zero get
// the defaults documented on each.
//
// Retries: a failed attempt (a refused, reset or cut connection, a stall, a 5xx, 408 or 429)
// is retried after a random delay, resuming with Range at the byte reached. Failures count
// against a budget of time, not of attempts: a stream gives up once RetryFor has passed without
// a byte arriving. A URL that fails Attempts times in a row hands over to the next mirror; a
// stall or a server error (5xx) hands over at once. After the last mirror the first is tried
// again, as long as the budget lasts (and until every URL has failed Attempts times). Without
// mirrors a URL is retried. A URL that answers for good (404, 403, an untrusted certificate)
// is not tried again.
type Fetcher struct {
	// Client does the requests. Default: NewClient("", 0).
	Client *http.Client
	// RetryFor is how long a stream keeps retrying while no byte arrives (a byte arriving
	// starts the budget afresh): after RetryFor without progress the stream fails with an
	// error wrapping ErrRetriesExhausted and the last failure's cause. Zero means
	// DefaultRetryFor (5 minutes: a boot server restarting). Negative means no budget: the
	// stream fails once every URL has failed Attempts times in a row. Every URL is tried
	// Attempts times before a stream gives up, however small the budget.
	RetryFor time.Duration
	// Attempts is how many failed attempts in a row on one URL hand over to the next mirror
	// (a stall or a 5xx hands over at once). Default 4.
	Attempts int
	// Backoff and MaxBackoff bound the delay before a retry: a random delay between zero and
	// Backoff before the first retry since the last progress, the bound doubling for each
	// further one up to MaxBackoff ("full jitter"). The first attempt on a mirror is not
	// delayed. A 429 or 503 with Retry-After waits as long as the server asks, up to
	// MaxRetryAfter, plus up to Backoff. Defaults DefaultBackoff (1s) and DefaultMaxBackoff
	// (16s).
	Backoff, MaxBackoff time.Duration
	// IdleTimeout: a connection that delivers no byte for this long is stalled and is resumed
	// on a new one. Default 30s.
	IdleTimeout time.Duration
	// MinRate and MinRateWindow: a connection that delivers fewer than MinRate bytes per
	// second, averaged over the last MinRateWindow, is stalled too, so that a server trickling
	// a byte now and then cannot hold a boot forever. Unlike a connection that dies after
	// delivering data, a slow one does not count as progress: the next mirror takes over at
	// once, and after Attempts slow windows on every URL the download fails with an error
	// wrapping ErrStalled that names the rate seen. Zero means
	// the default, DefaultMinRate over DefaultMinRateWindow; a negative value of either
	// disables the check.
	MinRate       int64
	MinRateWindow time.Duration
	// Logf receives one line for every retry, resume and mirror switch. Default: discard.
	Logf func(format string, args ...any)

	clock clock // tests: a fake clock for the retries; nil: the real one
}

// NewClient returns an HTTP client for image downloads: the system CA pool plus the PEM
// certificates in caFile (if not ""), the proxy from the environment, a connect timeout
// (default 15s), and no transparent gzip (it would hide Content-Length and break Range).
func NewClient(caFile string, connectTimeout time.Duration) (*http.Client, error) {
	if connectTimeout <= 0 {
		connectTimeout = 15 * time.Second
	}
	// Without a CA file, RootCAs stays nil: crypto/tls then loads the system pool at the first
	// TLS handshake, not here. Loading it takes about 10 ms (300 certificates parsed on a
	// Debian host), which a plain-HTTP boot would otherwise wait for before its first request.
	var pool *x509.CertPool
	if caFile != "" {
		var err error
		if pool, err = x509.SystemCertPool(); err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
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

// The defaults of Fetcher.MinRate and Fetcher.MinRateWindow: slow enough for a poor WAN link
// (a 1 KiB/s image download takes days), yet a minute of trickling ends a connection.
const (
	DefaultMinRate       = 1024
	DefaultMinRateWindow = 60 * time.Second
)

// defaultClient is the client of Fetchers without one; made once, not stored in the Fetcher,
// so that a Fetcher is never written to while streams use it.
var defaultClient = sync.OnceValue(func() *http.Client {
	c, _ := NewClient("", 0) // without a CA file it cannot fail
	return c
})

func (f *Fetcher) client() *http.Client {
	if f.Client != nil {
		return f.Client
	}
	return defaultClient()
}

// minRate returns the minimum rate in bytes per second and its window, or ok false when the
// check is off.
func (f *Fetcher) minRate() (rate float64, window time.Duration, ok bool) {
	if f.MinRate < 0 || f.MinRateWindow < 0 {
		return 0, 0, false
	}
	rate, window = float64(f.MinRate), f.MinRateWindow
	if rate == 0 {
		rate = DefaultMinRate
	}
	if window == 0 {
		window = DefaultMinRateWindow
	}
	return rate, window, true
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
// IsLocal reports whether u names a local file (a path, or file://) rather than a server: the
// rule Open follows, for callers that must know whether a fetch needs the network.
func IsLocal(u string) bool {
	_, ok := localPath(u)
	return ok
}

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

// sidecarURL is the URL of raw's checksum file: ".sha256" appended to the path, the query kept
// (a signed URL's token signs the query, not the path: "img.tar.zst?token=abc" has its sum at
// "img.tar.zst.sha256?token=abc", not at "img.tar.zst?token=abc.sha256").
func sidecarURL(raw string) string {
	if _, ok := localPath(raw); ok && !strings.HasPrefix(raw, "file://") {
		return raw + ".sha256"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return raw + ".sha256" // checkURL refuses it before any request
	}
	u.Path += ".sha256"
	if u.RawPath != "" {
		u.RawPath += ".sha256"
	}
	return u.String()
}

// baseName is the file name in a URL's path (what sha256sum lists), without the query.
func baseName(raw string) string {
	if _, ok := localPath(raw); ok && !strings.HasPrefix(raw, "file://") {
		return path.Base(raw)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return path.Base(raw)
	}
	return path.Base(u.Path)
}
