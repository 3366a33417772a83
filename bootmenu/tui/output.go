package tui

import (
	"bytes"
	"io"
)

// Output wraps a console for the menu's tea.Program (tea.WithOutput), so that the screen is
// right whatever the far terminal does with a line feed.
//
// bubbletea's renderer moves the cursor down one or two rows with bare line feeds and then
// moves sideways relative to the column it was in. A terminal (or a tty on the way: QEMU
// -nographic on a host tty with onlcr, serial-over-LAN clients, screen, minicom) that turns LF
// into CR LF returns to column 0 instead, and every later update of that row lands in the
// wrong place. The renderer has a setting for terminals that map LF (ultraviolet's
// TerminalRenderer.SetMapNewline), but bubbletea v2 sets it only when the input is not a
// terminal and offers no option for it.
//
// Output writes IND (ESC D, index) for each LF instead: down one row in the same column, and a
// scroll at the bottom margin, exactly what the renderer assumes of LF when its input is a
// terminal (as the console's is) — its scroll optimisation sets a scroll region and relies on
// that scroll. IND is a control sequence, not a character, so no tty on the way maps it. The
// renderer writes text and escape sequences only, so a byte 0x0A is always a cursor movement.
//
// When w is a terminal's file, so is the result (it has w's Fd): bubbletea reads the size from
// it, and keeps bold and reverse video only on a terminal.
func Output(w io.Writer) io.Writer {
	if f, ok := w.(file); ok {
		return lfFile{f, lfWriter{w}}
	}
	return lfWriter{w}
}

// file is what bubbletea (and colorprofile) take for a terminal: x/term's File.
type file interface {
	io.ReadWriteCloser
	Fd() uintptr
}

// lfFile is a file whose writes go through an lfWriter.
type lfFile struct {
	file
	lf lfWriter
}

func (f lfFile) Write(p []byte) (int, error) { return f.lf.Write(p) }

type lfWriter struct{ w io.Writer }

var index = []byte("\x1bD")

func (l lfWriter) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\n') < 0 {
		return l.w.Write(p)
	}
	// One write, as the renderer made it: a frame reaches the terminal in one piece.
	out := bytes.ReplaceAll(p, []byte{'\n'}, index)
	if _, err := l.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
