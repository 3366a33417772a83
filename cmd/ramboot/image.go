package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/ramboot/ramboot/internal/imageconv"
	"github.com/ramboot/ramboot/loader"
)

const imageArgs = "[--force] [--platform OS/ARCH] [--mtime-clamp EPOCH] [--drop-modules] [--root-password-empty] [--ssh-key FILE]... SOURCE OUT"

func runImage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ramboot image", flag.ContinueOnError)
	var keys multiFlag
	force := fs.Bool("force", false, "replace OUT if it exists")
	platform := fs.String("platform", "linux/amd64", "platform to pick from a multi-platform image")
	clamp := fs.String("mtime-clamp", os.Getenv("SOURCE_DATE_EPOCH"), "cap every mtime at this Unix time (default: $SOURCE_DATE_EPOCH)")
	drop := fs.Bool("drop-modules", false, "leave /lib/modules empty (the initramfs brings the running kernel's)")
	emptyPW := fs.Bool("root-password-empty", false, "empty root's password (rescue images)")
	fs.Var(&keys, "ssh-key", "add this authorized_keys file's keys for root (repeatable)")
	quiet := fs.Bool("q", false, "no progress output")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ramboot image "+imageArgs)
		fmt.Fprintln(stderr, "SOURCE: dir:PATH, tar:PATH, docker-archive:PATH[:TAG], oci:DIR[:TAG] or docker://REF")
		fmt.Fprintln(stderr, "OUT: .tar.zst (recommended), .tar.xz, .tar.gz or .tar; OUT.sha256 is written beside it")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 2, "SOURCE OUT"); err != nil {
		fs.Usage()
		return err
	}
	src, err := imageconv.ParseSource(pos[0])
	if err != nil {
		return err
	}
	opts := imageconv.Options{
		Force: *force, Platform: *platform, DropModules: *drop, RootPasswordEmpty: *emptyPW,
	}
	if *clamp != "" {
		sec, err := strconv.ParseInt(strings.TrimSpace(*clamp), 10, 64)
		if err != nil || sec < 0 {
			return fmt.Errorf("%w: --mtime-clamp %q: want seconds since 1970", errUsage, *clamp)
		}
		opts.MtimeClamp = time.Unix(sec, 0)
	}
	for _, k := range keys {
		b, err := os.ReadFile(k)
		if err != nil {
			return fmt.Errorf("ssh key: %w", err)
		}
		opts.SSHKeys = append(append(opts.SSHKeys, b...), '\n')
	}
	bar := newImageBar(stderr, pos[1])
	if !*quiet {
		opts.Progress = bar.update
		opts.Logf = bar.logf
	}
	res, err := imageconv.Convert(ctx, src, pos[1], opts)
	bar.finish()
	if err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintf(stderr, "%s: %d entries, %s of tar → %s %s (%.1f%%) in %.1fs\n", res.Out, res.Entries,
			loader.HumanBytes(res.TarSize), loader.HumanBytes(res.Size), res.Compression,
			100*float64(res.Size)/float64(max(res.TarSize, 1)), res.Duration.Seconds())
	}
	fmt.Fprintf(stdout, "%s  %s\n", res.SHA256, res.Out)
	return nil
}

// imageBar draws a conversion's progress: a redrawn line on a terminal, a line per stage
// elsewhere.
type imageBar struct {
	w     io.Writer
	name  string
	tty   bool
	stage imageconv.Stage
	drawn bool
	start time.Time
}

func newImageBar(w io.Writer, name string) *imageBar {
	b := &imageBar{w: w, name: name, stage: -1, start: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b.tty = true
	}
	return b
}

func (b *imageBar) update(p imageconv.Progress) {
	if p.Stage != b.stage {
		b.stage, b.start = p.Stage, time.Now()
		if !b.tty && p.Stage != imageconv.StageDone {
			fmt.Fprintf(b.w, "%s: %s\n", b.name, p.Stage)
		}
	}
	if !b.tty || p.Stage == imageconv.StageDone {
		return
	}
	b.drawn = true
	fmt.Fprintf(b.w, "\r\033[K%s", imageLine(b.name, p, time.Since(b.start), 30))
}

func (b *imageBar) logf(format string, a ...any) {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
	}
	fmt.Fprintf(b.w, format+"\n", a...)
}

func (b *imageBar) finish() {
	if b.drawn {
		fmt.Fprint(b.w, "\r\033[K")
		b.drawn = false
	}
}

// imageLine renders "out.tar.zst [=====>    ]  45% 120.0 MiB/266.7 MiB 51.0 MiB/s writing".
func imageLine(name string, p imageconv.Progress, elapsed time.Duration, width int) string {
	var sb strings.Builder
	sb.WriteString(name)
	sb.WriteString(barText(p.Done, p.Total, width))
	if s := elapsed.Seconds(); s > 0.5 {
		fmt.Fprintf(&sb, " %s/s", loader.HumanBytes(int64(float64(p.Done)/s)))
	}
	sb.WriteString(" " + p.Stage.String())
	return sb.String()
}
