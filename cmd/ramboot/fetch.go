package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ramboot/ramboot/loader"
)

func runFetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ramboot fetch", flag.ContinueOnError)
	var mirrors multiFlag
	sum := fs.String("sha256", "", "expected SHA-256 of the image (default: URL.sha256 when the server has it)")
	fs.Var(&mirrors, "mirror", "a mirror of URL, tried in order when it fails (repeatable)")
	ca := fs.String("ca", "", "PEM file of CA certificates to trust besides the system's")
	idle := fs.Duration("idle-timeout", 30*time.Second, "resume a connection that delivers nothing for this long")
	attempts := fs.Int("attempts", 4, "failed attempts in a row on one URL before the next mirror")
	retry := fs.Duration("retry", loader.DefaultRetryFor, "keep retrying (with random backoff, resuming) for this long without receiving a byte; 0: give up once every URL failed --attempts times")
	quiet := fs.Bool("q", false, "no progress output")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ramboot fetch [--sha256 HEX] [--mirror URL]... [--retry DURATION] URL DIR")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 2, "URL DIR"); err != nil {
		fs.Usage()
		return err
	}
	client, err := loader.NewClient(*ca, 0)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) {}
	bar := newBar(stderr, filepath.Base(pos[0]))
	if !*quiet {
		logf = bar.logf
	}
	if *retry < 0 {
		return fmt.Errorf("%w: --retry %v: want a duration of 0 or more", errUsage, *retry)
	}
	f := &loader.Fetcher{Client: client, IdleTimeout: *idle, Attempts: *attempts, RetryFor: retryFor(*retry), Logf: logf}
	opts := loader.Options{SHA256: *sum, Fetcher: f, Logf: logf}
	if !*quiet {
		opts.Progress = bar.update
	}
	res, err := loader.Load(ctx, pos[1], append([]string{pos[0]}, mirrors...), opts)
	bar.finish()
	if err != nil {
		return err
	}
	if !*quiet {
		v := "no checksum to verify against"
		if res.Verified {
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

// bar draws progress on a terminal (one redrawn line) or, elsewhere, a line per stage.
type bar struct {
	w     io.Writer
	name  string
	tty   bool
	stage loader.Stage
	drawn bool
}

func newBar(w io.Writer, name string) *bar {
	b := &bar{w: w, name: name, stage: -1}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.tty = true
	}
	return b
}

func (b *bar) update(p loader.Progress) {
	if !b.tty {
		if p.Stage != b.stage {
			b.stage = p.Stage
			fmt.Fprintf(b.w, "%s: %s %s\n", b.name, p.Stage, p.URL)
		}
		return
	}
	b.stage = p.Stage
	b.drawn = true
	fmt.Fprintf(b.w, "\r\033[K%s", progressLine(b.name, p, 30))
}

func (b *bar) logf(format string, a ...any) {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
	fmt.Fprintf(b.w, format+"\n", a...)
}

func (b *bar) finish() {
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

// progressLine renders "name [=====>    ]  45% 12.0 MiB/26.7 MiB 5.1 MiB/s ETA 0:03 fetching".
func progressLine(name string, p loader.Progress, width int) string {
	var sb strings.Builder
	sb.WriteString(name)
	sb.WriteString(barText(p.Read, p.Total, width))
	fmt.Fprintf(&sb, " %s/s", loader.HumanBytes(int64(p.Rate)))
	if eta := p.ETA(); eta >= 0 {
		s := int(eta.Round(time.Second).Seconds())
		fmt.Fprintf(&sb, " ETA %d:%02d", s/60, s%60)
	}
	sb.WriteString(" " + p.Stage.String())
	return sb.String()
}

// barText renders " [=====>    ]  45% 12.0 MiB/26.7 MiB", or " 12.0 MiB" when the total is
// not known: the progress bar of fetch and image.
func barText(done, total int64, width int) string {
	if total <= 0 {
		return " " + loader.HumanBytes(done)
	}
	frac := min(1, float64(done)/float64(total))
	n := int(frac * float64(width))
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf(" [%s] %3.0f%% %s/%s", bar, frac*100, loader.HumanBytes(done), loader.HumanBytes(total))
}
