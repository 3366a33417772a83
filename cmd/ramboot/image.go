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

	"github.com/ramboot/ramboot/internal/imageconv"
	"github.com/ramboot/ramboot/loader"
)

// imageOptions are image's flags.
type imageOptions struct {
	force, drop, emptyPW, quiet bool
	platform, clamp, format     string
	keys                        multiFlag
}

func imageFlags(o *imageOptions) *cmdFlags {
	fs := newFlags("image", "SOURCE OUT", 2,
		"SOURCE: dir:PATH, tar:PATH, docker-archive:PATH[:TAG], oci:DIR[:TAG] or docker://REF",
		"OUT: .tar.zst (recommended), .tar.xz, .tar.gz or .tar; OUT.sha256 is written beside it;",
		"or docker://HOST[:PORT]/REPO:TAG: pushed as a one-layer image (ramroot=docker://...)")
	fs.BoolVar(&o.force, "force", false, "replace OUT if it exists")
	fs.StringVar(&o.format, "format", "zstd", "compress the layer with `FORMAT` (zstd or gzip) when OUT is docker://")
	fs.StringVar(&o.platform, "platform", "linux/amd64", "`OS/ARCH` to pick from a multi-platform image")
	fs.StringVar(&o.clamp, "mtime-clamp", os.Getenv("SOURCE_DATE_EPOCH"), "cap every mtime at this Unix time, in `SECONDS` (default: $SOURCE_DATE_EPOCH)")
	fs.BoolVar(&o.drop, "drop-modules", false, "leave /lib/modules empty (the initramfs brings the running kernel's)")
	fs.BoolVar(&o.emptyPW, "root-password-empty", false, "empty root's password (rescue images)")
	fs.Var(&o.keys, "ssh-key", "add the keys of this authorized_keys `FILE` for root (repeatable)")
	fs.BoolVar(&o.quiet, "q", false, "no progress output")
	return fs
}

func runImage(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o imageOptions
	fs := imageFlags(&o)
	pos, err := fs.parse(args, stdout, stderr)
	if err != nil {
		return err
	}
	// A file OUT's extension picks its compression: --format would be ignored, and the
	// operator who asked for gzip would get zstd without a word.
	formatSet := false
	fs.Visit(func(fl *flag.Flag) { formatSet = formatSet || fl.Name == "format" })
	if formatSet && !loader.IsRegistry(pos[1]) {
		return fmt.Errorf("%w: --format %s is for a docker:// OUT, and %s is a file: its extension picks the compression", errUsage, o.format, pos[1])
	}
	src, err := imageconv.ParseSource(pos[0])
	if err != nil {
		return err
	}
	opts := imageconv.Options{
		Force: o.force, Platform: o.platform, DropModules: o.drop, RootPasswordEmpty: o.emptyPW,
	}
	if o.clamp != "" {
		sec, err := strconv.ParseInt(strings.TrimSpace(o.clamp), 10, 64)
		if err != nil || sec < 0 {
			return fmt.Errorf("%w: --mtime-clamp %q: want seconds since 1970", errUsage, o.clamp)
		}
		opts.MtimeClamp = time.Unix(sec, 0)
	}
	for _, k := range o.keys {
		b, err := os.ReadFile(k)
		if err != nil {
			return fmt.Errorf("ssh key: %w", err)
		}
		opts.SSHKeys = append(append(opts.SSHKeys, b...), '\n')
	}
	bar := newImageBar(stderr, pos[1])
	if !o.quiet {
		opts.Progress = bar.update
		opts.Logf = bar.logf
	}
	if loader.IsRegistry(pos[1]) {
		return pushImage(ctx, src, pos[1], o.format, opts, bar, stdout, stderr, o.quiet)
	}
	res, err := imageconv.Convert(ctx, src, pos[1], opts)
	bar.finish()
	if err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintf(stderr, "%s: %d entries, %s of tar → %s %s (%.1f%%) in %.1fs\n", res.Out, res.Entries,
			loader.HumanBytes(res.TarSize), loader.HumanBytes(res.Size), res.Compression,
			100*float64(res.Size)/float64(max(res.TarSize, 1)), res.Duration.Seconds())
	}
	fmt.Fprintf(stdout, "%s  %s\n", res.SHA256, res.Out)
	return nil
}

// imageBar draws a conversion's progress: a redrawn line fitted to the terminal's width, or,
// when stderr is not a terminal, a line per stage and one every logEvery.
type imageBar struct {
	w     io.Writer
	name  string
	cols  func() int // the terminal's width; nil: not a terminal
	now   func() time.Time
	stage imageconv.Stage
	drawn bool
	start time.Time // of the stage
	last  time.Time // when the last line was logged, not on a terminal
}

func newImageBar(w io.Writer, name string) *imageBar {
	return &imageBar{w: w, name: name, stage: -1, cols: terminalWidth(w), now: time.Now}
}

func (b *imageBar) update(p imageconv.Progress) {
	now := b.now()
	if p.Stage != b.stage {
		b.stage, b.start, b.last = p.Stage, now, now
		if b.cols == nil && p.Stage != imageconv.StageDone {
			fmt.Fprintf(b.w, "%s: %s\n", b.name, p.Stage)
		}
	}
	switch {
	case p.Stage == imageconv.StageDone:
	case b.cols == nil:
		if now.Sub(b.last) >= logEvery {
			b.last = now
			fmt.Fprintln(b.w, imageLine(b.name, p, now.Sub(b.start), 0))
		}
	default:
		b.drawn = true
		fmt.Fprintf(b.w, "\r\033[K%s", fitImageLine(b.name, p, now.Sub(b.start), b.cols()))
	}
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

// imageParts are the pieces of a conversion's progress line (see progressParts).
func imageParts(p imageconv.Progress, elapsed time.Duration) (must string, frac float64, opt []string, stage string) {
	must, frac = counts(p.Done, p.Total)
	if s := elapsed.Seconds(); s > 0.5 {
		opt = append(opt, fmt.Sprintf(" %s/s", loader.HumanBytes(int64(float64(p.Done)/s))))
	}
	return must, frac, opt, " " + p.Stage.String()
}

// imageLine renders "out.tar.zst [=====>    ]  45% 120.0 MiB/266.7 MiB 51.0 MiB/s writing"
// with a bar of width cells; width <= 0: no bar (for a log).
func imageLine(name string, p imageconv.Progress, elapsed time.Duration, width int) string {
	must, frac, opt, stage := imageParts(p, elapsed)
	return withBar(name, frac, width) + must + strings.Join(opt, "") + stage
}

// fitImageLine is imageLine fitted in fewer than cols columns (see fitLine).
func fitImageLine(name string, p imageconv.Progress, elapsed time.Duration, cols int) string {
	must, frac, opt, stage := imageParts(p, elapsed)
	return fitLine(name, frac, must, opt, stage, cols)
}

// pushImage is image with a docker:// OUT: the converted tree pushed as a one-layer image.
func pushImage(ctx context.Context, src imageconv.Source, ref, format string, opts imageconv.Options, bar *imageBar, stdout, stderr io.Writer, quiet bool) error {
	comp := map[string]imageconv.Compression{"zstd": imageconv.Zstd, "gzip": imageconv.Gzip}
	c, ok := comp[format]
	if !ok {
		return fmt.Errorf("%w: --format %q: want zstd or gzip", errUsage, format)
	}
	res, err := imageconv.Push(ctx, src, ref, c, opts)
	bar.finish()
	if err != nil {
		return err
	}
	if !quiet {
		fmt.Fprintf(stderr, "%s: %d entries, %s of tar → one %s layer of %s in %.1fs\n", res.Ref, res.Entries,
			loader.HumanBytes(res.TarSize), res.Compression, loader.HumanBytes(res.Size), res.Duration.Seconds())
	}
	fmt.Fprintf(stdout, "%s  %s\n", res.Digest, res.Ref)
	return nil
}
