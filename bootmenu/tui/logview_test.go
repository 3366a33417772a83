package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// longLine is one log line of 200 columns: at 80 columns it takes 3 rows.
var longLine = "[12.5] ramboot: fetching http://boot.example/images/rescue.tar.zst failed: " +
	strings.Repeat("x", 60) + " connection reset by peer after 52428800 of 209715200 bytes; " + "retrying from mirror http://m/r"

// testLog is 40 lines, the 20th of them long.
func testLog() []string {
	var l []string
	for i := 1; i <= 40; i++ {
		if i == 20 {
			l = append(l, longLine)
			continue
		}
		l = append(l, fmt.Sprintf("[%d.0] ramboot: line %02d", i, i))
	}
	return l
}

// openLogView opens the log view and delivers the fetched lines.
func openLogView(t *testing.T, m Model) Model {
	t.Helper()
	m, cmd := typeKeys(m, "l")
	if m.state != stateLog {
		t.Fatalf("state %d, want log", m.state)
	}
	m, _ = send(m, mustMsg(t, cmd))
	return m
}

// logScreen is the view's log rows (below "Log:", above the footer) and its hints line.
func logScreen(t *testing.T, m Model) (rows []string, hints string) {
	t.Helper()
	lines := strings.Split(screen(m), "\n")
	if len(lines) != 24 {
		t.Fatalf("%d lines, want 24", len(lines))
	}
	for _, l := range lines {
		if w := ansi.StringWidth(l); w > 80 {
			t.Errorf("line of %d columns: %q", w, l)
		}
		if strings.ContainsAny(l, "…—↑↓") && l != lines[0] {
			t.Errorf("glyph outside ASCII in %q", l)
		}
	}
	if lines[2] != "Log:" {
		t.Fatalf("line 3 is %q, want Log:", lines[2])
	}
	return lines[3:22], lines[22]
}

func TestLogViewScrollsAndWraps(t *testing.T) {
	fb := &fakeBackend{logs: testLog()}
	m := openLogView(t, New(testMenu(10*time.Second), fb, Options{}))

	// 39 short lines and one of 3 rows: 42 rows, 19 on screen, opened at the newest.
	golden(t, "log-end", screen(m))
	rows, hints := logScreen(t, m)
	if rows[0] != "[22.0] ramboot: line 22" || rows[18] != "[40.0] ramboot: line 40" {
		t.Errorf("opened on rows %q .. %q, want lines 22 to 40", rows[0], rows[18])
	}
	if !strings.HasPrefix(hints, "lines 24-42 of 42") || !strings.Contains(hints, "esc: back") {
		t.Errorf("hints %q", hints)
	}

	// Up scrolls by a row; page up by a page less one row.
	m, _ = typeKeys(m, "up", "k", "pgup")
	if rows, hints := logScreen(t, m); !strings.HasPrefix(hints, "lines 4-22 of 42") || rows[0] != "[4.0] ramboot: line 04" {
		t.Errorf("after up, k, pgup: first row %q, hints %q", rows[0], hints)
	}
	// The long line shows whole, wrapped over 3 rows.
	m, _ = typeKeys(m, "home", "pgdown")
	rows, hints = logScreen(t, m)
	if !strings.HasPrefix(hints, "lines 19-37 of 42") {
		t.Errorf("after home, pgdown: hints %q", hints)
	}
	golden(t, "log-wrapped", screen(m))
	joined := ""
	for i, r := range rows[:len(rows)-3] {
		if strings.HasPrefix(r, "[12.5]") {
			for _, w := range rows[i : i+3] {
				if ansi.StringWidth(w) > 80 {
					t.Errorf("wrapped row too wide: %q", w)
				}
			}
			joined = rows[i] + rows[i+1] + rows[i+2]
			if !strings.HasPrefix(rows[i+3], "[21.0]") {
				t.Errorf("row after the long line: %q", rows[i+3])
			}
		}
	}
	if strings.ReplaceAll(joined, " ", "") != strings.ReplaceAll(longLine, " ", "") {
		t.Errorf("long line not shown whole:\n got %q\nwant %q", joined, longLine)
	}

	// Home and g go to the oldest line, end and G to the newest, and never past the ends.
	for _, k := range []string{"home", "g"} {
		mm, _ := typeKeys(m, k, "up", "pgup")
		if rows, hints := logScreen(t, mm); rows[0] != "[1.0] ramboot: line 01" || !strings.HasPrefix(hints, "lines 1-19 of 42") {
			t.Errorf("%s: first row %q, hints %q", k, rows[0], hints)
		}
	}
	golden(t, "log-top", screen(func() Model { mm, _ := typeKeys(m, "home"); return mm }()))
	for _, k := range []string{"end", "G"} {
		mm, _ := typeKeys(m, "home", k, "down", "j", "pgdown")
		if rows, hints := logScreen(t, mm); rows[18] != "[40.0] ramboot: line 40" || !strings.HasPrefix(hints, "lines 24-42 of 42") {
			t.Errorf("%s: last row %q, hints %q", k, rows[18], hints)
		}
	}

	// Esc leaves for the menu.
	if mm, _ := typeKeys(m, "esc"); mm.state != stateMenu {
		t.Errorf("esc: state %d", mm.state)
	}
}

// TestLogViewFollows: at the end the view follows new lines; scrolled back it stays put.
func TestLogViewFollows(t *testing.T) {
	fb := &fakeBackend{logs: testLog()}
	m := openLogView(t, New(testMenu(-1), fb, Options{}))
	grown := append(testLog(), "[41.0] ramboot: line 41", "[42.0] ramboot: line 42")
	m2, _ := send(m, logMsg(grown))
	if rows, hints := logScreen(t, m2); rows[18] != "[42.0] ramboot: line 42" || !strings.HasPrefix(hints, "lines 26-44 of 44") {
		t.Errorf("at the end: last row %q, hints %q", rows[18], hints)
	}
	m3, _ := typeKeys(m, "home")
	m3, _ = send(m3, logMsg(grown))
	if rows, _ := logScreen(t, m3); rows[0] != "[1.0] ramboot: line 01" {
		t.Errorf("scrolled back: first row %q", rows[0])
	}
	// A tick while the log is open fetches it again.
	if _, cmd := send(m, tickMsg{m.gen}); cmd == nil {
		t.Error("tick in the log view: no command")
	}
}

func TestLogViewResize(t *testing.T) {
	fb := &fakeBackend{logs: []string{longLine}}
	m := openLogView(t, New(testMenu(-1), fb, Options{}))
	if _, hints := logScreen(t, m); !strings.HasPrefix(hints, "lines 1-3 of 3") {
		t.Errorf("80 columns: hints %q", hints)
	}
	m, _ = send(m, tea.WindowSizeMsg{Width: 40, Height: 24})
	if len(m.logRows) < 6 {
		t.Errorf("40 columns: %d rows, want at least 6: %q", len(m.logRows), m.logRows)
	}
	for _, r := range m.logRows {
		if ansi.StringWidth(r) > 40 {
			t.Errorf("row wider than 40: %q", r)
		}
	}
	if got := strings.Join(m.logRows, ""); strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(longLine, " ", "") {
		t.Errorf("40 columns: rows %q do not hold the line", m.logRows)
	}
}

func TestLogViewEmpty(t *testing.T) {
	m := openLogView(t, New(testMenu(-1), &fakeBackend{logs: []string{}}, Options{}))
	m, _ = typeKeys(m, "up", "pgdown", "end")
	if s := screen(m); !strings.Contains(s, "(empty)") || !strings.Contains(s, "no log lines") {
		t.Errorf("empty log:\n%s", s)
	}
}
