package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/ramboot/ramboot/loader"
)

// fetchOptions are fetch's flags.
type fetchOptions struct {
	sha256, ca  string
	mirrors     multiFlag
	insecure    multiFlag
	auth        string
	idle, retry time.Duration
	attempts    int
	quiet       bool
}

func fetchFlags(o *fetchOptions) *cmdFlags {
	fs := newFlags("fetch", "URL DIR", 2, "Streams URL into DIR (created if missing, must be empty), verifying, decompressing and",
		"extracting in one pass; on failure DIR is left empty.")
	fs.StringVar(&o.sha256, "sha256", "", "expected SHA-256 of the image, 64 `HEX` digits (default: URL.sha256 when the server has it)")
	fs.Var(&o.mirrors, "mirror", "a mirror's `URL` of the image, tried in order when URL fails (repeatable); for docker:// a registry mirror, tried first")
	fs.Var(&o.insecure, "insecure-registry", "speak plain HTTP to this registry `HOST:PORT` (repeatable)")
	fs.StringVar(&o.auth, "registry-auth", "", "registry credentials: a docker config.json `FILE`")
	fs.StringVar(&o.ca, "ca", "", "PEM `FILE` of CA certificates to trust besides the system's")
	fs.DurationVar(&o.idle, "idle-timeout", 30*time.Second, "resume a connection that delivers nothing for this long")
	fs.IntVar(&o.attempts, "attempts", 4, "failed attempts in a row on one URL before the next mirror (a stall or a 5xx moves on at once)")
	fs.DurationVar(&o.retry, "retry", loader.DefaultRetryFor, "keep retrying (with random backoff, resuming) for this long without receiving a byte; 0: give up once every URL failed --attempts times")
	fs.BoolVar(&o.quiet, "q", false, "no progress output")
	return fs
}

func runFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o fetchOptions
	pos, err := fetchFlags(&o).parse(args, stdout, stderr)
	if err != nil {
		return err
	}
	client, err := loader.NewClient(o.ca, 0)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {}
	bar := newBar(stderr, filepath.Base(pos[0]))
	if !o.quiet {
		logf = bar.logf
	}
	if o.retry < 0 {
		return fmt.Errorf("%w: --retry %v: want a duration of 0 or more", errUsage, o.retry)
	}
	f := &loader.Fetcher{Client: client, IdleTimeout: o.idle, Attempts: o.attempts, RetryFor: retryFor(o.retry), Logf: logf}
	opts := loader.Options{SHA256: o.sha256, Fetcher: f, Logf: logf,
		Registry: loader.Registry{Insecure: o.insecure, AuthFile: o.auth}}
	if !o.quiet {
		opts.Progress = bar.update
	}
	res, err := loader.Load(ctx, pos[1], append([]string{pos[0]}, o.mirrors...), opts)
	bar.finish()
	if err != nil {
		return err
	}
	if !o.quiet {
		v := "no checksum to verify against"
		switch {
		case loader.IsRegistry(pos[0]):
			v = "every blob verified, " + res.URL
		case res.Verified:
			v = "sha256 verified"
		}
		fmt.Fprintf(stderr, "%s: %d entries, %s (%s %s) in %.1fs, %s\n", pos[1], res.Entries,
			loader.HumanBytes(res.Uncompressed), loader.HumanBytes(res.Size), res.Format,
			res.Duration.Seconds(), v)
	}
	return nil
}

// retryFor maps --retry to Fetcher.RetryFor, where 0 means the default and a negative value
// no budget.
func retryFor(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
