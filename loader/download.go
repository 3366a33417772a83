package loader

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Download fetches one file (a kernel, an initrd) to dst with the same resume, mirror and
// verification rules as Load (Options.SHA256, else URL.sha256 when the server has one). On
// failure dst is removed: a partial or unverified file is never left behind.
func Download(ctx context.Context, dst string, urls []string, opts Options) (*Result, error) {
	if len(urls) == 0 {
		return nil, errors.New("no URL given")
	}
	start := time.Now()
	res, err := protect(func() (*Result, error) { return download(ctx, dst, urls, &opts) })
	if err != nil {
		os.Remove(dst)
		return nil, fmt.Errorf("%s: %w", urls[0], err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

func download(ctx context.Context, dst string, urls []string, opts *Options) (*Result, error) {
	f, want, logf, err := opts.setup(urls)
	if err != nil {
		return nil, err
	}
	// The meter follows the checksum file, then the file, until Download returns.
	m := newMeter(opts.Progress)
	defer m.close()
	if want, err = opts.expectedSum(ctx, f, urls, want, m, logf); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		res, err := downloadOnce(ctx, dst, urls, want, f, m, opts)
		if err == nil || !errors.Is(err, errChanged) {
			return res, err
		}
		if attempt >= max(opts.Restarts, 2) {
			return nil, fmt.Errorf("%w: it changed %d times during the download, last: %w", ErrChanged, attempt+1, err)
		}
		logf("%v: starting over", err)
	}
}

func downloadOnce(ctx context.Context, dst string, urls []string, want string, f *Fetcher, m *meter, opts *Options) (*Result, error) {
	s, err := f.Open(ctx, urls...)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	m.begin(s)
	h := opts.newHash()
	buf := make([]byte, 1<<20)
	for {
		n, err := s.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, werr := out.Write(buf[:n]); werr != nil {
				return nil, fmt.Errorf("writing %s: %w", dst, werr)
			}
			m.arrived(n)
			m.extracted(n)
		}
		if err := m.failure(); err != nil {
			return nil, err
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if err := out.Close(); err != nil {
		return nil, err
	}
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return nil, &ChecksumError{Want: want, Got: got}
	}
	if err := opts.verify(); err != nil {
		return nil, err
	}
	m.setStage(StageDone, s.URL())
	return &Result{URL: s.URL(), Size: s.Offset(), SHA256: got, Verified: want != ""}, nil
}
