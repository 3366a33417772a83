package tui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/internal/ptytest"
	"github.com/ramboot/ramboot/loader"
)

// farTerminal is a terminal at the end of a serial line: a VT emulator, fed through a tty
// that turns LF into CR LF (onlcr) when mapLF is set.
type farTerminal struct {
	name  string
	mapLF bool
	emu   *vt.SafeEmulator
}

func newFarTerminal(t *testing.T, name string, mapLF bool, w, h int) *farTerminal {
	emu := vt.NewSafeEmulator(w, h)
	// The emulator answers bubbletea's queries on its input pipe, which blocks until read.
	go io.Copy(io.Discard, emu)
	// Closing the pipe ends the copy; emu.Close would race with its Read.
	t.Cleanup(func() { emu.InputPipe().(io.Closer).Close() })
	return &farTerminal{name, mapLF, emu}
}

// irm is text written in insert mode (IRM), which the renderer uses on terminals without ICH
// (a VT220) and the emulator lacks.
var irm = regexp.MustCompile(`\x1b\[4h(.*?)\x1b\[4l`)

func (f *farTerminal) Write(p []byte) (int, error) {
	q := irm.ReplaceAllFunc(p, func(b []byte) []byte {
		text := irm.FindSubmatch(b)[1]
		return append([]byte(ansi.InsertCharacter(ansi.StringWidth(string(text)))), text...)
	})
	if f.mapLF {
		q = bytes.ReplaceAll(q, []byte("\n"), []byte("\r\n"))
	}
	if _, err := f.emu.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

// screen is what a person reads on the terminal, trailing blanks dropped.
func (f *farTerminal) screen() string {
	w, h := f.emu.Width(), f.emu.Height()
	lines := make([]string, h)
	for y := range h {
		var b strings.Builder
		for x := 0; x < w; x++ {
			c := f.emu.CellAt(x, y)
			switch {
			case c == nil || c.Content == "":
				if c == nil || c.Width != 0 {
					b.WriteByte(' ')
				}
			default:
				b.WriteString(c.Content)
			}
		}
		lines[y] = strings.TrimRight(b.String(), " ")
	}
	return strings.Join(lines, "\n")
}

// plainScreen is a view as the terminal should show it.
func plainScreen(m Model) string {
	lines := strings.Split(ansi.Strip(m.View().Content), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// framesBackend's Prepare reports each snapshot sent on frames, and succeeds once frames is
// closed.
type framesBackend struct {
	fakeBackend
	frames chan loader.Progress
}

func (f *framesBackend) Prepare(ctx context.Context, e bootmenu.Entry, cmdline string, progress func(loader.Progress)) error {
	for {
		select {
		case p, ok := <-f.frames:
			if !ok {
				return nil
			}
			progress(p)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// idleBackend's Prepare waits for its context: the model it serves is only rendered.
type idleBackend struct{ fakeBackend }

func (*idleBackend) Prepare(ctx context.Context, e bootmenu.Entry, cmdline string, progress func(loader.Progress)) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestProgressOnEveryTerminal runs the menu as /init does (keys from a tty, the screen through
// Output) and boots through several progress frames. Every frame must read the same on a
// terminal that keeps the column on LF and on one that returns to column 0 (QEMU -nographic
// on a host tty with onlcr showed "8 MiB/s, 7s l6s left": the renderer moved down with LF and
// then sideways from where it thought it was).
func TestProgressOnEveryTerminal(t *testing.T) {
	for _, term := range []string{"vt220", "linux"} {
		t.Run(term, func(t *testing.T) { testProgress(t, term) })
	}
}

func testProgress(t *testing.T, termName string) {
	const w, h = 80, 24
	term, tty := ptytest.Open(t)
	terms := []*farTerminal{
		newFarTerminal(t, "LF keeps the column", false, w, h),
		newFarTerminal(t, "LF is CR LF", true, w, h),
	}
	var mu sync.Mutex // the renderer writes from its own goroutine
	fan := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range terms {
			f.Write(p)
		}
		return len(p), nil
	})
	fb := &framesBackend{frames: make(chan loader.Progress)}
	menu := testMenu(-1)
	p := tea.NewProgram(New(menu, fb, Options{Width: w, Height: h}),
		tea.WithInput(tty), tea.WithOutput(Output(fan)), tea.WithoutSignalHandler(),
		tea.WithEnvironment([]string{"TERM=" + termName}), tea.WithWindowSize(w, h))
	done := make(chan tea.Model, 1)
	go func() {
		m, err := p.Run()
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- m
	}()
	t.Cleanup(func() {
		p.Quit() // not Kill: see TestOutputKeepsTheTerminal
		<-done
	})

	// The same boot, rendered by a model that is only told about it.
	want := New(menu, &idleBackend{}, Options{Width: w, Height: h})
	check := func(what string) {
		t.Helper()
		expect := plainScreen(want)
		deadline := time.Now().Add(3 * time.Second)
		for _, f := range terms {
			for {
				mu.Lock()
				got := f.screen()
				mu.Unlock()
				if got == expect {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s, terminal where %s: screen differs from the view (-view +screen):\n%s", what, f.name, cmp.Diff(expect, got))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	check("menu")
	term.WriteString("\r") // enter: boot the default entry
	want = step(want, press("enter"))
	defer want.cancel()
	// Snapshots as a download sends them: most rows change only in a few cells, and a row's
	// first change is right of where the row above was left (what showed the bug).
	const total, mib = 100 << 20, 1 << 20
	read := int64(20 << 20)
	for i, rate := range []float64{8.0 * mib, 8.5 * mib, 8.2 * mib, 8.7 * mib, 4.4 * mib, 8.9 * mib, 8.1 * mib} {
		read += 1 << 20
		pr := loader.Progress{Stage: loader.StageFetching, URL: menu.Entries[0].Ramroot.URL, Read: read, Total: total,
			Extracted: read * 3, Rate: rate, Elapsed: time.Duration(i+1) * time.Second}
		fb.frames <- pr
		want = step(want, progressMsg(pr))
		check(fmt.Sprintf("frame %d", i))
		time.Sleep(250 * time.Millisecond) // the model shows a fetching snapshot every 200ms
	}
	close(fb.frames)
	select {
	case m := <-done:
		done <- m
		if r := m.(Model).Result(); r.Action != ActionBoot {
			t.Errorf("result %+v, want a boot", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the program did not end after Prepare succeeded")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// step feeds one message to a model and drops the command.
func step(m Model, msg tea.Msg) Model {
	tm, _ := m.Update(msg)
	return tm.(Model)
}

func TestOutputReplacesLineFeeds(t *testing.T) {
	var b bytes.Buffer
	n, err := Output(&b).Write([]byte("a\nb\n\x1b[2Kc"))
	if err != nil || n != 9 {
		t.Fatalf("Write: %d, %v; want 9, nil", n, err)
	}
	if got, want := b.String(), "a\x1bDb\x1bD\x1b[2Kc"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
}

// TestOutputKeepsTheTerminal: through Output the console is still a terminal to bubbletea,
// which otherwise drops every style (the selected entry would not show).
func TestOutputKeepsTheTerminal(t *testing.T) {
	term, tty := ptytest.Open(t)
	p := tea.NewProgram(New(testMenu(-1), &fakeBackend{}, Options{}),
		tea.WithInput(tty), tea.WithOutput(Output(tty)), tea.WithoutSignalHandler(),
		tea.WithEnvironment([]string{"TERM=vt220"}), tea.WithWindowSize(80, 24))
	done := make(chan error, 1)
	go func() {
		_, err := p.Run()
		done <- err
	}()
	// Quit, not Kill: Kill closes the input under bubbletea's reader (a race inside the
	// library that /init never triggers: it quits its programs).
	defer func() {
		p.Quit()
		<-done
	}()
	seen := make(chan string, 1)
	go func() {
		var got []byte
		buf := make([]byte, 4096)
		for !bytes.Contains(got, []byte("Reboot")) {
			n, err := term.Read(buf)
			if err != nil {
				break
			}
			got = append(got, buf[:n]...)
		}
		seen <- string(got)
	}()
	select {
	case got := <-seen:
		if !strings.Contains(got, "\x1b[7m") {
			t.Errorf("no reverse video for the selected entry: %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no menu on the terminal")
	}
}

// TestLogScrollOnEveryTerminal scrolls the log view a line and a page at a time: the renderer
// then scrolls a region of the screen with line feeds. Through Output, a terminal that maps LF
// to CR LF and one that does not must both show what the renderer meant (the screen of a
// terminal fed its raw output).
func TestLogScrollOnEveryTerminal(t *testing.T) {
	const w, h = 80, 24
	term, tty := ptytest.Open(t)
	ref := newFarTerminal(t, "the renderer's own output", false, w, h)
	terms := []*farTerminal{
		newFarTerminal(t, "LF keeps the column", false, w, h),
		newFarTerminal(t, "LF is CR LF", true, w, h),
	}
	var mu sync.Mutex
	fan := Output(writerFunc(func(p []byte) (int, error) {
		for _, f := range terms {
			f.Write(p)
		}
		return len(p), nil
	}))
	out := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		ref.Write(p)
		return fan.Write(p)
	})
	var logs []string
	for i := range 120 {
		logs = append(logs, fmt.Sprintf("[%5d.%03d] ramboot: line %d %s", i, i, i, strings.Repeat("x", i%70)))
	}
	p := tea.NewProgram(New(testMenu(-1), &fakeBackend{logs: logs}, Options{Width: w, Height: h}),
		tea.WithInput(tty), tea.WithOutput(out), tea.WithoutSignalHandler(),
		tea.WithEnvironment([]string{"TERM=vt220"}), tea.WithWindowSize(w, h))
	done := make(chan struct{})
	go func() {
		p.Run()
		close(done)
	}()
	t.Cleanup(func() {
		p.Quit()
		<-done
	})
	check := func(what string) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			time.Sleep(100 * time.Millisecond)
			mu.Lock()
			want := ref.screen()
			diffs := ""
			for _, f := range terms {
				if got := f.screen(); got != want {
					diffs += fmt.Sprintf("terminal where %s (-renderer +screen):\n%s", f.name, cmp.Diff(want, got))
				}
			}
			mu.Unlock()
			if diffs == "" && strings.Contains(want, "ramboot: line") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s", what, diffs)
			}
		}
	}
	term.WriteString("l")
	check("log view")
	for i, k := range []string{"k", "k", "k", "\x1b[5~", "j", "j", "\x1b[6~", "\x1b[H", "j", "\x1b[F"} {
		term.WriteString(k)
		check(fmt.Sprintf("key %d %q", i, k))
	}
}
