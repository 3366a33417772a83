package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/ramboot/ramboot/loader"
)

// logEvery is how often progress is written as a line of its own when stderr is not a
// terminal (a log file, CI, a pipe): often enough to show a download is alive, rarely enough
// not to flood the log.
const logEvery = 5 * time.Second

// maxBar is the widest progress bar drawn, between brackets.
const maxBar = 30

// terminalWidth returns a function reporting w's width in columns when w is a terminal, nil
// otherwise. The width is asked at every redraw: the terminal may be resized meanwhile.
func terminalWidth(w io.Writer) func() int {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func() int {
		cols, _, err := term.GetSize(int(f.Fd()))
		if err != nil || cols <= 0 {
			return 80
		}
		return cols
	}
}

// fitLine lays out "name [=====>    ] must opt... stage" in fewer than cols columns (text
// reaching the last column makes some terminals wrap, and then every redraw scrolls). To fit
// it shrinks the bar, then drops it, then drops opt from the end, then shortens the name; frac
// < 0 means no bar. must, opt and stage start with a space.
func fitLine(name string, frac float64, must string, opt []string, stage string, cols int) string {
	room := cols - 1
	for n := len(opt); n >= 0; n-- {
		tail := must + strings.Join(opt[:n], "") + stage
		free := room - width(name) - width(tail)
		if frac >= 0 && n == len(opt) && free >= len(" []")+10 {
			return name + " " + barGlyphs(frac, min(maxBar, free-len(" []"))) + tail
		}
		if free >= 0 {
			return name + tail
		}
	}
	tail := must + stage
	if keep := room - width(tail); keep >= 4 {
		return truncate(name, keep) + tail
	}
	return truncate(name+tail, room)
}

func width(s string) int { return utf8.RuneCountInString(s) }

// truncate shortens s to n columns, marking the cut with "…".
func truncate(s string, n int) string {
	if width(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// barGlyphs renders "[=====>    ]" for frac of width cells.
func barGlyphs(frac float64, width int) string {
	frac = max(0, min(1, frac))
	n := int(frac * float64(width))
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return "[" + bar + "]"
}

// counts renders " 45% 12.0 MiB/26.7 MiB", or " 12.0 MiB" when the total is not known, and
// the fraction done (-1: unknown).
func counts(done, total int64) (string, float64) {
	if total <= 0 {
		return " " + loader.HumanBytes(done), -1
	}
	frac := min(1, float64(done)/float64(total))
	return fmt.Sprintf(" %3.0f%% %s/%s", frac*100, loader.HumanBytes(done), loader.HumanBytes(total)), frac
}

// progressParts are the pieces of a fetch's progress line: the counts and fraction, the
// optional rate and ETA, and the stage.
func progressParts(p loader.Progress) (must string, frac float64, opt []string, stage string) {
	must, frac = counts(p.Read, p.Total)
	opt = []string{fmt.Sprintf(" %s/s", loader.HumanBytes(int64(p.Rate)))}
	if eta := p.ETA(); eta >= 0 {
		s := int(eta.Round(time.Second).Seconds())
		opt = append(opt, fmt.Sprintf(" ETA %d:%02d", s/60, s%60))
	}
	return must, frac, opt, " " + p.Stage.String()
}

// progressLine renders "name [=====>    ]  45% 12.0 MiB/26.7 MiB 5.1 MiB/s ETA 0:03 fetching"
// with a bar of width cells; width <= 0: no bar (for a log).
func progressLine(name string, p loader.Progress, width int) string {
	must, frac, opt, stage := progressParts(p)
	return withBar(name, frac, width) + must + strings.Join(opt, "") + stage
}

// fitProgress is progressLine fitted in fewer than cols columns (see fitLine).
func fitProgress(name string, p loader.Progress, cols int) string {
	must, frac, opt, stage := progressParts(p)
	return fitLine(name, frac, must, opt, stage, cols)
}

// withBar is name followed by a bar of width cells, when width > 0 and frac >= 0.
func withBar(name string, frac float64, width int) string {
	if width <= 0 || frac < 0 {
		return name
	}
	return name + " " + barGlyphs(frac, width)
}

// bar draws a fetch's progress on stderr: on a terminal one line redrawn in place, fitted to
// the terminal's width; elsewhere a line when the stage changes and one every logEvery.
type bar struct {
	w     io.Writer
	name  string
	cols  func() int // the terminal's width; nil: not a terminal
	now   func() time.Time
	stage loader.Stage
	drawn bool      // a redrawn line is on the terminal
	last  time.Time // when the last line was logged, not on a terminal
}

func newBar(w io.Writer, name string) *bar {
	return &bar{w: w, name: name, stage: -1, cols: terminalWidth(w), now: time.Now}
}

func (b *bar) update(p loader.Progress) {
	if b.cols == nil {
		now := b.now()
		switch {
		case p.Stage != b.stage:
			b.stage, b.last = p.Stage, now
			fmt.Fprintf(b.w, "%s: %s %s\n", b.name, p.Stage, p.URL)
		case p.Stage != loader.StageConnecting && now.Sub(b.last) >= logEvery:
			b.last = now
			fmt.Fprintln(b.w, progressLine(b.name, p, 0))
		}
		return
	}
	b.stage = p.Stage
	b.drawn = true
	fmt.Fprintf(b.w, "\r\033[K%s", fitProgress(b.name, p, b.cols()))
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
