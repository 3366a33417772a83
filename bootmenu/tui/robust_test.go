package tui

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ramboot/ramboot/bootmenu"
)

// logRecorder is an Options.Logf that keeps what it was given.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func (r *logRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// quits reports whether cmd, run, asks the program to quit (looking into batches). A command
// that does not return within a second (a timer) is not a quit.
func quits(t *testing.T, cmd tea.Cmd) bool {
	t.Helper()
	if cmd == nil {
		return false
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	select {
	case msg := <-done:
		switch msg := msg.(type) {
		case tea.QuitMsg, tea.InterruptMsg:
			return true
		case tea.BatchMsg:
			for _, c := range msg {
				if quits(t, c) {
					return true
				}
			}
		}
	case <-time.After(time.Second):
	}
	return false
}

func TestCtrlCCancelsDownload(t *testing.T) {
	fb := &fakeBackend{block: make(chan struct{})}
	var log logRecorder
	m, cmd := typeKeys(New(testMenu(-1), fb, Options{Logf: log.logf}), "enter")
	m, _ = send(m, mustMsg(t, cmd)) // progress
	if m.state != stateBooting {
		t.Fatalf("state %d, want booting", m.state)
	}
	m, cmd = typeKeys(m, "ctrl+c")
	if quits(t, cmd) {
		t.Fatal("ctrl+c during a download quit the program")
	}
	m = drain(t, m, waitFor(m.progCh))
	if m.state != stateMenu || m.Result().Action != ActionNone || !strings.Contains(screen(m), "boot cancelled") {
		t.Fatalf("ctrl+c during boot: state %d result %+v\n%s", m.state, m.Result(), screen(m))
	}
	fb.mu.Lock()
	ctxErr := fb.ctxErr
	fb.mu.Unlock()
	if ctxErr != context.Canceled {
		t.Errorf("Prepare's context: %v, want it cancelled", ctxErr)
	}
	if !strings.Contains(log.String(), "boot of rescue cancelled") {
		t.Errorf("cancel not logged: %q", log.String())
	}
}

// TestCtrlCNeverQuits: in every state ^C acts like Esc (back, clear, cancel) and the program
// goes on.
func TestCtrlCNeverQuits(t *testing.T) {
	sub := &bootmenu.Menu{Title: "More", Timeout: -1, Entries: []bootmenu.Entry{{Name: "memtest", Kind: bootmenu.KindPoweroff}}}
	failed := func(t *testing.T) Model {
		fb := &fakeBackend{fail: fmt.Errorf("no route to host")}
		m, cmd := typeKeys(New(testMenu(-1), fb, Options{}), "enter")
		return drain(t, m, cmd)
	}
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T) Model
		check func(t *testing.T, m Model)
	}{
		{"countdown", func(t *testing.T) Model { return New(testMenu(10*time.Second), &fakeBackend{}, Options{}) }, func(t *testing.T, m Model) {
			if m.state != stateMenu || m.counting {
				t.Errorf("state %d counting %v, want the menu with the countdown stopped", m.state, m.counting)
			}
		}},
		{"menu", func(t *testing.T) Model {
			m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "down")
			return m
		}, func(t *testing.T, m Model) {
			if e, _ := m.selected(); m.state != stateMenu || e.Name != "maint" {
				t.Errorf("state %d selected %s, want the menu unchanged", m.state, e.Name)
			}
		}},
		{"sub-menu", func(t *testing.T) Model {
			m, cmd := typeKeys(New(testMenu(-1), &fakeBackend{sub: sub}, Options{}), "down", "down", "enter")
			m, _ = send(m, mustMsg(t, cmd))
			return m
		}, func(t *testing.T, m Model) {
			if m.menu() == sub {
				t.Error("still in the sub-menu, want the parent")
			}
		}},
		{"filtering", func(t *testing.T) Model {
			m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "/", "m", "a")
			return m
		}, func(t *testing.T, m Model) {
			if m.state != stateMenu || len(m.visible) != 5 {
				t.Errorf("state %d, %d entries: want the filter cleared", m.state, len(m.visible))
			}
		}},
		{"filter kept", func(t *testing.T) Model {
			m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "/", "m", "a", "i", "enter")
			return m
		}, func(t *testing.T, m Model) {
			if m.state != stateMenu || len(m.visible) != 5 {
				t.Errorf("state %d, %d entries: want the filter cleared", m.state, len(m.visible))
			}
		}},
		{"edit", func(t *testing.T) Model {
			m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "j", "e", "x")
			return m
		}, func(t *testing.T, m Model) {
			if m.state != stateMenu {
				t.Errorf("state %d, want the edit cancelled", m.state)
			}
		}},
		{"help", func(t *testing.T) Model {
			m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "?")
			return m
		}, func(t *testing.T, m Model) {
			if m.state != stateMenu {
				t.Errorf("state %d, want the menu", m.state)
			}
		}},
		{"network", func(t *testing.T) Model {
			m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "n")
			return m
		}, func(t *testing.T, m Model) {
			if m.state != stateMenu {
				t.Errorf("state %d, want the menu", m.state)
			}
		}},
		{"log", func(t *testing.T) Model {
			m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "l")
			return m
		}, func(t *testing.T, m Model) {
			if m.state != stateMenu {
				t.Errorf("state %d, want the menu", m.state)
			}
		}},
		{"failed", failed, func(t *testing.T, m Model) {
			if m.state != stateMenu {
				t.Errorf("state %d, want the menu", m.state)
			}
		}},
		{"log from failed", func(t *testing.T) Model {
			m, _ := typeKeys(failed(t), "l")
			return m
		}, func(t *testing.T, m Model) {
			if m.state != stateFailed {
				t.Errorf("state %d, want back on the failure screen", m.state)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := tt.setup(t)
			m, cmd := typeKeys(m, "ctrl+c")
			if quits(t, cmd) {
				t.Fatal("ctrl+c quit the program")
			}
			if m.Result().Action != ActionNone {
				t.Fatalf("ctrl+c chose %+v", m.Result())
			}
			tt.check(t, m)
			// A second ^C, wherever that led, does not quit either.
			if m, cmd = typeKeys(m, "ctrl+c"); quits(t, cmd) || m.Result().Action != ActionNone {
				t.Fatal("second ctrl+c quit the program")
			}
		})
	}
}

func TestPanickingPrepare(t *testing.T) {
	fb := &fakeBackend{panicWith: "nil map write"}
	var log logRecorder
	m, cmd := typeKeys(New(testMenu(-1), fb, Options{Logf: log.logf}), "enter")
	m = drain(t, m, cmd)
	if m.state != stateFailed || !strings.Contains(screen(m), "internal error: nil map write") {
		t.Fatalf("panic not shown as this boot's error: state %d\n%s", m.state, screen(m))
	}
	got := log.String()
	for _, want := range []string{"boot of rescue: panic: nil map write", "goroutine ", "(*fakeBackend).Prepare", "boot of rescue failed: internal error: nil map write"} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q:\n%s", want, got)
		}
	}
	// The menu still works: retry runs Prepare again.
	m, cmd = typeKeys(m, "r")
	if m = drain(t, m, cmd); m.state != stateFailed || len(fb.prepared) != 2 {
		t.Errorf("retry after a panic: state %d, %d prepares", m.state, len(fb.prepared))
	}
}

func TestPanickingLoadMenu(t *testing.T) {
	var log logRecorder
	m, cmd := typeKeys(New(testMenu(-1), &fakeBackend{panicWith: "boom"}, Options{Logf: log.logf}), "down", "down", "enter")
	m, _ = send(m, mustMsg(t, cmd))
	if !strings.Contains(screen(m), "sub-menu http://boot/more.yaml: internal error: boom") || !strings.Contains(log.String(), "goroutine ") {
		t.Errorf("panic in LoadMenu:\n%s\nlog: %s", screen(m), log.String())
	}
}

func TestFailedPrepareLogged(t *testing.T) {
	var log logRecorder
	fb := &fakeBackend{fail: fmt.Errorf("fetching image: 404 Not Found")}
	m, cmd := typeKeys(New(testMenu(-1), fb, Options{Logf: log.logf}), "down", "enter")
	drain(t, m, cmd)
	if want := "boot of maint failed: fetching image: 404 Not Found"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q lacks %q", log.String(), want)
	}
}

func TestWarnings(t *testing.T) {
	warnings := []string{
		`ramboot.timeout="abc": want seconds, e.g. 10 or 10s`,
		`ip="eth0:dhcp6": autoconf "dhcp6" is not dhcp, on, any, off or none`,
		"kernel command line: unterminated quote in ramroot: it runs to the end of the line",
	}
	m := New(testMenu(10*time.Second), &fakeBackend{}, Options{Warnings: warnings})
	golden(t, "menu-warnings", screen(m))
	lines := strings.Split(screen(m), "\n")
	want := `ramboot.timeout="abc": want seconds, e.g. 10 or 10s (+2 more, l for the log)`
	if got := lines[len(lines)-1]; got != want {
		t.Errorf("status line %q, want %q", got, want)
	}
	// Ticks do not clear it; a key does, and the network status comes back.
	m, _ = send(m, tickMsg{m.gen})
	if !strings.Contains(screen(m), "(+2 more") {
		t.Error("a tick cleared the warnings")
	}
	m, _ = typeKeys(m, "down")
	if s := screen(m); strings.Contains(s, "want seconds") || !strings.HasSuffix(s, "server 10.0.2.2") {
		t.Errorf("warnings still shown after a key:\n%s", s)
	}

	// One long warning is cut, keeping the way to the log, in ASCII.
	long := "ramroot.sha256=\"" + strings.Repeat("ab", 60) + "\x1b[2J\": want 64 hex digits"
	m = New(testMenu(-1), &fakeBackend{}, Options{Warnings: []string{long}})
	lines = strings.Split(screen(m), "\n")
	last := lines[len(lines)-1]
	if ansi.StringWidth(last) != 80 || !strings.HasSuffix(last, "... (l for the log)") || strings.ContainsRune(last, 0x1b) {
		t.Errorf("long warning: %q", last)
	}
}
