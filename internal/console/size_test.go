package console

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/ptytest"
)

// TestSizeAsksTheTerminal: a serial line has no size of its own; /init asks the terminal at the
// far end where a far-away cursor ends up, and sets the answer on the tty.
func TestSizeAsksTheTerminal(t *testing.T) {
	term, tty := ptytest.Open(t)
	asked := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		var got strings.Builder
		for !strings.Contains(got.String(), "\x1b[6n") {
			n, err := term.Read(buf)
			if err != nil {
				return
			}
			got.Write(buf[:n])
		}
		asked <- got.String()
		term.WriteString("\x1b[40;100R")
	}()
	w, h := Size(tty)
	if w != 100 || h != 40 {
		t.Errorf("size %dx%d, want 100x40", w, h)
	}
	select {
	case q := <-asked:
		if !strings.Contains(q, "\x1b[999;999H") {
			t.Errorf("query %q does not move the cursor far away first", q)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the terminal was not asked")
	}
	ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col != 100 || ws.Row != 40 {
		t.Errorf("tty size %+v (%v), want 100x40 set", ws, err)
	}
}

// TestSizeSilentTerminal: a terminal that does not answer (a plain serial logger) gets 80x24.
func TestSizeSilentTerminal(t *testing.T) {
	term, tty := ptytest.Open(t)
	go func() { // read and drop the query
		buf := make([]byte, 64)
		for {
			if _, err := term.Read(buf); err != nil {
				return
			}
		}
	}()
	if w, h := Size(tty); w != 80 || h != 24 {
		t.Errorf("size %dx%d, want 80x24", w, h)
	}
}
