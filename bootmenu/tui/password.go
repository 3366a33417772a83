package tui

import (
	"fmt"
	"runtime/debug"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/ramboot/ramboot/bootmenu"
)

// Locker is the password that guards what changes a boot (internal/trust.Lock).
type Locker interface {
	// Set reports whether a password is set: without one nothing is locked.
	Set() bool
	// Check tells whether the password unlocks. It may take seconds (a slow hash, the delay
	// after wrong attempts): the model calls it from a tea.Cmd.
	Check(password string) error
}

// pending is what the password prompt unlocks.
type pending struct {
	what  string // for the prompt: "edit the command line", "boot NAME", "start a shell"
	edit  bool
	shell bool
	entry bootmenu.Entry
}

// unlockMsg is the answer to attempt number attempt; an answer to an attempt the operator
// walked away from (Esc while it was being checked) is dropped.
type unlockMsg struct {
	err     error
	attempt int
}

// locked reports whether a password must be given first (it is asked once per menu session).
func (m Model) locked() bool {
	return m.opts.Lock != nil && !m.unlocked && m.opts.Lock.Set()
}

// entryLocked reports whether choosing e needs the password: entries marked locked, and shells.
func (m Model) entryLocked(e bootmenu.Entry) bool {
	return m.locked() && (e.Locked || e.Kind == bootmenu.KindShell)
}

// ask shows the password prompt for p.
func (m Model) ask(p pending) (tea.Model, tea.Cmd) {
	m.pending, m.from = p, m.state
	m.state, m.checking = statePassword, false
	m.pw = newPasswordInput()
	return m, m.pw.Focus()
}

func newPasswordInput() textinput.Model {
	pw := textinput.New()
	pw.Prompt = "password: "
	pw.EchoMode = textinput.EchoNone // nothing shows, not even how many characters
	pw.SetStyles(inputStyles)
	return pw
}

func (m Model) onPasswordKey(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	if m.checking && msg.String() != "esc" {
		return m, nil // one attempt at a time: the delay after a wrong one holds
	}
	switch msg.String() {
	case "enter":
		pw, lock, logf := m.pw.Value(), m.opts.Lock, m.opts.Logf
		m.pw.SetValue("")
		m.checking = true
		m.pwAttempt++
		n := m.pwAttempt
		return m, func() (msg tea.Msg) {
			defer func() {
				if r := recover(); r != nil {
					logf("menu: checking the password: panic: %v\n%s", r, debug.Stack())
					msg = unlockMsg{fmt.Errorf("internal error: %v", r), n}
				}
			}()
			return unlockMsg{lock.Check(pw), n}
		}
	case "esc":
		// Leaving is always possible, also while an attempt waits out the delay after wrong
		// ones: its answer is dropped, and the lock still holds the next attempt back.
		m.checking = false
		m.pw.Blur()
		m.state = stateMenu
		if m.from == stateFailed {
			m.state = stateFailed
		}
		return m, nil
	}
	var cmd tea.Cmd
	m.pw, cmd = m.pw.Update(msg)
	return m, cmd
}

func (m Model) onUnlock(msg unlockMsg) (tea.Model, tea.Cmd) {
	if m.state != statePassword || msg.attempt != m.pwAttempt {
		return m, nil
	}
	m.checking = false
	if msg.err != nil {
		m.notice = msg.err.Error()
		m.opts.Logf("menu: password refused to %s", m.pending.what)
		return m, nil
	}
	m.unlocked = true
	m.pw.Blur()
	m.opts.Logf("menu: password accepted to %s", m.pending.what)
	p := m.pending
	switch {
	case p.shell:
		m.result = Result{Action: ActionShell, Entry: p.entry}
		return m, tea.Quit
	case p.edit:
		m.state = stateMenu
		return m.startEdit()
	}
	m.state = stateMenu
	return m.choose(p.entry, "")
}

func (m Model) passwordView() []string {
	out := []string{fmt.Sprintf("A password is needed to %s.", m.pending.what), "", "  " + m.pw.View(), ""}
	switch {
	case m.checking:
		out = append(out, "  checking... (after wrong ones, each attempt waits longer; esc cancels)")
	case m.notice != "":
		out = append(out, "  "+errorStyle.Render(m.notice))
	}
	return out
}
