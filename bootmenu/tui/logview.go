package tui

import (
	"fmt"
	"strings"
	"unicode"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
)

// The log view: the backend's recent log lines, wrapped to the screen's width (a cut line
// hides the end of an error, which is the part that matters), opened at the newest line and
// scrolled by row.

// openLog shows the log, newest rows in view, and fetches it (through a tea.Cmd: the backend is
// not called from Update). Esc comes back to the current state.
func (m Model) openLog() (tea.Model, tea.Cmd) {
	m.logFrom, m.state, m.logFollow = m.state, stateLog, true
	m.wrapLog()
	return m, m.fetchLog()
}

func (m Model) fetchLog() tea.Cmd {
	b := m.backend
	return func() tea.Msg { return logMsg(b.Log()) }
}

// logRoom is how many rows of log fit: the screen less title (2), "Log:" (1) and footer (2).
func (m Model) logRoom() int { return max(1, m.opts.Height-5) }

func (m Model) logMaxTop() int { return max(0, len(m.logRows)-m.logRoom()) }

// wrapLog rewraps the log to the width and keeps the view in bounds (at the end when following).
func (m *Model) wrapLog() {
	// A new slice, not logRows[:0]: copies of the Model share the old one.
	var rows []string
	for _, l := range m.logLines {
		rows = append(rows, wrapRow(l, m.opts.Width)...)
	}
	m.logRows = rows
	if m.logFollow {
		m.logTop = m.logMaxTop()
	}
	m.logTop = min(max(0, m.logTop), m.logMaxTop())
}

// wrapRow splits one log line into rows of at most width cells, at spaces where it can. Escape
// sequences and control characters are dropped (a log line must not drive the terminal), a
// tab becomes spaces and punctuation outside the console font ASCII.
func wrapRow(l string, width int) []string {
	l = strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case unicode.IsControl(r):
			return -1
		}
		return r
	}, plain(ansi.Strip(l)))
	return strings.Split(ansi.Wrap(l, max(1, width), ""), "\n")
}

func (m Model) onLogKey(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	top, page := m.logTop, max(1, m.logRoom()-1) // a page keeps one row of context
	switch {
	case key.Matches(msg, keys.LogBack):
		m.state = m.logFrom
		return m, nil
	case key.Matches(msg, keys.Up):
		top--
	case key.Matches(msg, keys.Down):
		top++
	case key.Matches(msg, keys.PageUp):
		top -= page
	case key.Matches(msg, keys.PageDown):
		top += page
	case key.Matches(msg, keys.Top):
		top = 0
	case key.Matches(msg, keys.Bottom):
		top = m.logMaxTop()
	default:
		return m, nil
	}
	m.logTop = min(max(0, top), m.logMaxTop())
	m.logFollow = m.logTop == m.logMaxTop() // at the end, new lines keep coming into view
	return m, nil
}

func (m Model) logView() []string {
	if len(m.logRows) == 0 {
		return []string{"Log:", "  (empty)"}
	}
	end := min(len(m.logRows), m.logTop+m.logRoom())
	return append([]string{"Log:"}, m.logRows[m.logTop:end]...)
}

// logHints says where the view is and how to move and leave, in ASCII: the VGA console's font
// has no arrows to spare.
func (m Model) logHints() string {
	const how = "scroll: up/down j/k pgup/pgdn home/end   esc: back"
	if len(m.logRows) == 0 {
		return "no log lines   esc: back"
	}
	end := min(len(m.logRows), m.logTop+m.logRoom())
	return fmt.Sprintf("lines %d-%d of %d   %s", m.logTop+1, end, len(m.logRows), how)
}
