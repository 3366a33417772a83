// Package tui is ramboot's console boot menu: a bubbletea model over a bootmenu.Menu. It works
// on a serial console (80x24 unless the terminal says otherwise, no colours) as on VGA, and
// draws little per keystroke.
//
// The model never boots anything itself: fetching and loading run in tea.Cmds through the
// Backend (they can be abandoned), and the irreversible step (switch_root, kexec) is left to
// the caller after Run returns the final model and the terminal is restored.
package tui

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/loader"
)

// Backend is what the menu needs from /init. Its methods are called from tea.Cmds, never
// from Update.
type Backend interface {
	// Prepare fetches, verifies and loads what entry boots (an image extracted into the new
	// root, a kernel loaded for kexec) with the given command line, reporting progress. It
	// stops early when ctx ends. Nothing it does is irreversible.
	Prepare(ctx context.Context, e bootmenu.Entry, cmdline string, progress func(loader.Progress)) error
	// LoadMenu fetches and parses a sub-menu.
	LoadMenu(ctx context.Context, url string) (*bootmenu.Menu, error)
	// Network describes the boot NIC: a one-line status and detail lines.
	Network() (status string, details []string)
	// Log returns the recent log lines.
	Log() []string
}

// Action is what the caller does after Run returns.
type Action int

// Actions.
const (
	ActionNone  Action = iota // the program was stopped (another console took over)
	ActionBoot                // Prepare succeeded: switch_root or kexec now
	ActionShell               // start a shell, then show the menu again
	ActionReboot
	ActionPoweroff
	ActionFindMenu // look for the menu again (r on a refused menu's screen)
)

// Result is the outcome of a menu session.
type Result struct {
	Action  Action
	Entry   bootmenu.Entry
	Cmdline string
}

type state int

const (
	stateMenu state = iota
	stateFilter
	stateEdit
	stateHelp
	stateNet
	stateLog
	stateBooting
	stateFailed
	statePassword
)

// Options tune a Model.
type Options struct {
	// Idle is how long after the last key a stopped countdown starts again, so that one stray
	// key cannot park a fleet machine forever. 0: 5 minutes; negative: never.
	Idle time.Duration
	// Claim, when set, is called before the model acts on the first key or on the countdown's
	// end; if it returns false another console has taken control and this model quits. It
	// must not block.
	Claim func() bool
	// Width, Height: the console size (default 80x24).
	Width, Height int
	// Logf receives what the operator should find in the system log: each failed or
	// cancelled boot's error, and the stack of a panic in the backend. nil: discard.
	Logf func(format string, args ...any)
	// Warnings are shown on the menu's status line until the first key: the kernel command
	// line's bad parameters, which /init skipped.
	Warnings []string
	// Lock, when it has a password set, guards editing, shells and entries marked locked.
	// The countdown and unlocked entries need none.
	Lock Locker
	// MenuError, when set, is why the menu the operator configured was refused (a bad
	// signature): the model opens on the error screen, over the fallback menu it was given.
	// r there ends the session with ActionFindMenu (the menu may have been re-signed since).
	MenuError error
	// NoShell says the initramfs has no shell: the error screen does not offer one, and a
	// shell entry or key says so instead of asking for a password and doing nothing.
	NoShell bool
	// Chosen, when set, is told of each entry about to boot and how it was chosen: "key" or
	// "countdown" (for the boot report). It must not block.
	Chosen func(e bootmenu.Entry, by string)
}

// noShell is what a shell key or entry says on an initramfs without one.
const noShell = "no shell in this initramfs (build it with --busybox)"

// Model is the menu's state.
type Model struct {
	backend Backend
	opts    Options
	menus   []*bootmenu.Menu // sub-menu stack; the last is shown
	cursor  int
	visible []int // indexes of entries matching the filter
	filter  textinput.Model
	edit    textinput.Model
	state   state

	counting  bool
	remaining time.Duration
	lastKey   time.Time
	now       func() time.Time
	gen       int // tick generation, to drop ticks of an old countdown
	claimed   bool

	booting  bootmenu.Entry
	by       string // how the entry was chosen: "key" or "countdown"
	cmdline  string
	progress loader.Progress
	file     int // which of bootFiles(booting) progress is about
	progCh   chan tea.Msg
	cancel   context.CancelFunc
	err      error
	notice   string
	warned   bool // a key was pressed: the startup warnings are gone

	logLines  []string // the backend's log, as last fetched
	logRows   []string // logLines wrapped to the width
	logTop    int      // first row shown
	logFollow bool     // keep the newest rows in view as the log grows
	logFrom   state    // where the log view returns to

	result Result

	pw        textinput.Model // the password prompt
	pending   pending         // what the password unlocks
	from      state           // where the prompt returns to on esc
	checking  bool            // a password check is running
	pwAttempt int             // the number of the password attempt last sent to be checked
	unlocked  bool            // the password was given in this session
	refused   bool            // the error screen is about a refused menu, not a boot
}

type (
	tickMsg     struct{ gen int }
	progressMsg loader.Progress
	preparedMsg struct {
		err       error
		cancelled bool // the operator cancelled: back to the menu, not an error screen
	}
	logMsg  []string
	menuMsg struct {
		url  string
		menu *bootmenu.Menu
		err  error
	}
)

// New returns the model for m.
func New(m *bootmenu.Menu, b Backend, o Options) Model {
	if o.Width <= 0 || o.Height <= 0 {
		o.Width, o.Height = 80, 24
	}
	if o.Idle == 0 {
		o.Idle = 5 * time.Minute
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	fi := textinput.New()
	fi.Prompt = "filter: "
	fi.SetStyles(inputStyles)
	ed := textinput.New()
	ed.Prompt = "> "
	ed.SetStyles(inputStyles)
	ed.SetWidth(o.Width - 4)
	mod := Model{backend: b, opts: o, menus: []*bootmenu.Menu{m}, filter: fi, edit: ed, now: time.Now}
	mod.lastKey = mod.now()
	mod.refilter()
	if d, ok := m.DefaultEntry(); ok {
		for i, e := range m.Entries {
			if e.Name == d.Name {
				mod.cursor = mod.indexOf(i)
			}
		}
	}
	if _, ok := m.DefaultEntry(); ok && m.Timeout > 0 {
		mod.counting, mod.remaining = true, m.Timeout
	}
	if o.MenuError != nil {
		mod.state, mod.err, mod.refused, mod.counting = stateFailed, o.MenuError, true, false
	}
	return mod
}

// Result is the outcome, once Run has returned this model.
func (m Model) Result() Result { return m.result }

func (m Model) menu() *bootmenu.Menu { return m.menus[len(m.menus)-1] }

// Init starts the clock (countdown and idle tracking).
func (m Model) Init() tea.Cmd {
	return m.tick()
}

func (m Model) tick() tea.Cmd {
	gen := m.gen
	return tea.Tick(time.Second, func(time.Time) tea.Msg { return tickMsg{gen} })
}

// Update handles one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		if msg.Width > 0 && msg.Height > 0 {
			m.opts.Width, m.opts.Height = msg.Width, msg.Height
			m.edit.SetWidth(msg.Width - 4)
			m.wrapLog()
		}
		return m, nil
	case logMsg:
		m.logLines = msg
		m.wrapLog()
		return m, nil
	case tickMsg:
		return m.onTick(msg)
	case progressMsg:
		m.onProgress(loader.Progress(msg))
		return m, waitFor(m.progCh)
	case preparedMsg:
		return m.onPrepared(msg)
	case unlockMsg:
		return m.onUnlock(msg)
	case menuMsg:
		if msg.err != nil {
			m.notice = fmt.Sprintf("sub-menu %s: %v", msg.url, msg.err)
			return m, nil
		}
		m.menus = append(m.menus[:len(m.menus):len(m.menus)], msg.menu) // copies of the Model share the stack
		m.cursor, m.notice = 0, ""
		m.filter.SetValue("")
		m.refilter()
		return m, nil
	case tea.KeyPressMsg:
		return m.onKey(msg)
	}
	return m, nil
}

func (m Model) onTick(msg tickMsg) (tea.Model, tea.Cmd) {
	if msg.gen != m.gen {
		return m, nil
	}
	_, hasDefault := m.menu().DefaultEntry()
	if m.state == stateMenu && !m.counting && hasDefault && m.menu().Timeout > 0 && m.opts.Idle > 0 && m.now().Sub(m.lastKey) >= m.opts.Idle {
		m.counting, m.remaining = true, m.menu().Timeout
		m.notice = "no key for a while: countdown resumed"
	}
	if m.counting {
		m.remaining -= time.Second
		if m.remaining <= 0 {
			m.counting = false
			if e, ok := m.menu().DefaultEntry(); ok {
				if !m.claim() {
					return m, tea.Quit
				}
				m.by = "countdown"
				return m.choose(*e, "")
			}
		}
	}
	if m.state == stateLog {
		return m, tea.Batch(m.tick(), m.fetchLog()) // follow the log as it grows
	}
	return m, m.tick()
}

// restartClock starts a new tick chain, dropping the old one's ticks (there may be none left,
// when a countdown's end started the boot).
func (m *Model) restartClock() tea.Cmd {
	m.gen++
	return m.tick()
}

// claim takes control of the console set; false: another console has it.
func (m *Model) claim() bool {
	if m.claimed || m.opts.Claim == nil {
		m.claimed = true
		return true
	}
	m.claimed = m.opts.Claim()
	return m.claimed
}

func (m Model) onKey(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	m.lastKey = m.now()
	if !m.claim() {
		return m, tea.Quit
	}
	if key.Matches(msg, keys.Interrupt) {
		// ^C means Esc everywhere: cancel the download, clear, go back. Never quit: this is
		// PID 1's console.
		msg = tea.KeyPressMsg{Code: tea.KeyEscape}
	}
	m.warned = true
	m.by = "key"
	m.counting = false // any key stops the countdown
	// A notice is about what was just done: the next key makes it old (a key that fails says
	// so again).
	m.notice = ""

	switch m.state {
	case stateFilter:
		return m.onFilterKey(msg)
	case stateEdit:
		return m.onEditKey(msg)
	case stateHelp, stateNet:
		m.state = stateMenu
		return m, nil
	case stateLog:
		return m.onLogKey(msg)
	case stateBooting:
		if key.Matches(msg, keys.Back) && m.cancel != nil {
			m.cancel() // Prepare returns context.Canceled: back to the menu
		}
		return m, nil
	case stateFailed:
		return m.onFailedKey(msg)
	case statePassword:
		return m.onPasswordKey(msg)
	}
	switch {
	case key.Matches(msg, keys.Up):
		if m.cursor > 0 {
			m.cursor--
		}
	case key.Matches(msg, keys.Down):
		if m.cursor < len(m.visible)-1 {
			m.cursor++
		}
	case key.Matches(msg, keys.Boot):
		if e, ok := m.selected(); ok {
			if e.Kind == bootmenu.KindShell && m.opts.NoShell {
				m.notice = noShell
				return m, nil
			}
			if m.entryLocked(e) {
				what := "boot " + e.Name
				if e.Kind == bootmenu.KindShell {
					what = "start a shell"
				}
				return m.ask(pending{what: what, entry: e, shell: e.Kind == bootmenu.KindShell})
			}
			return m.choose(e, "")
		}
	case key.Matches(msg, keys.Edit):
		if e, ok := m.selected(); ok {
			if _, editable := cmdlineOf(e); editable && m.locked() {
				return m.ask(pending{what: "edit the command line of " + e.Name, edit: true, entry: e})
			}
		}
		return m.startEdit()
	case key.Matches(msg, keys.Filter):
		m.state = stateFilter
		return m, m.filter.Focus()
	case key.Matches(msg, keys.Help):
		m.state = stateHelp
	case key.Matches(msg, keys.Net):
		m.state = stateNet
	case key.Matches(msg, keys.Log):
		return m.openLog()
	case key.Matches(msg, keys.Back):
		if m.filter.Value() != "" {
			m.filter.SetValue("")
			m.refilter()
		} else if len(m.menus) > 1 {
			m.menus = m.menus[:len(m.menus)-1]
			m.cursor = 0
			m.refilter()
		}
	}
	return m, nil
}

// startEdit opens the command line editor on the selected entry.
func (m Model) startEdit() (tea.Model, tea.Cmd) {
	if e, ok := m.selected(); ok {
		if line, editable := cmdlineOf(e); editable {
			m.state = stateEdit
			m.edit.SetValue(line)
			m.edit.CursorEnd()
			return m, m.edit.Focus()
		}
		m.notice = fmt.Sprintf("%s has no command line to edit", e.Name)
	}
	return m, nil
}

func (m Model) onFilterKey(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch msg.String() {
	case "enter":
		m.state = stateMenu
		m.filter.Blur()
		return m, nil
	case "esc":
		m.state = stateMenu
		m.filter.Blur()
		m.filter.SetValue("")
		m.refilter()
		return m, nil
	}
	var cmd tea.Cmd
	m.filter, cmd = m.filter.Update(msg)
	m.refilter()
	return m, cmd
}

func (m Model) onEditKey(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch msg.String() {
	case "enter":
		m.edit.Blur()
		if e, ok := m.selected(); ok {
			return m.choose(e, m.edit.Value())
		}
		m.state = stateMenu
		return m, nil
	case "esc":
		m.edit.Blur()
		m.state = stateMenu
		return m, nil
	}
	var cmd tea.Cmd
	m.edit, cmd = m.edit.Update(msg)
	return m, cmd
}

func (m Model) onFailedKey(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	switch {
	case key.Matches(msg, keys.Retry):
		if m.refused {
			m.result = Result{Action: ActionFindMenu}
			return m, tea.Quit
		}
		return m.startBoot(m.booting, m.cmdline)
	case key.Matches(msg, keys.Menu):
		m.state, m.err, m.refused = stateMenu, nil, false
		return m, m.restartClock()
	case key.Matches(msg, keys.Log):
		return m.openLog()
	case key.Matches(msg, keys.Shell):
		if m.opts.NoShell {
			m.notice = noShell
			return m, nil
		}
		if m.locked() {
			return m.ask(pending{what: "start a shell", shell: true})
		}
		m.result = Result{Action: ActionShell}
		return m, tea.Quit
	case key.Matches(msg, keys.Reboot):
		m.result = Result{Action: ActionReboot}
		return m, tea.Quit
	}
	return m, nil
}

// cmdlineOf is what `e` edits: a kexec entry's kernel command line, a ramroot entry's
// parameters for the image's init.
func cmdlineOf(e bootmenu.Entry) (string, bool) {
	switch {
	case e.Kexec != nil:
		return e.Kexec.Cmdline, true
	case e.Ramroot != nil:
		return e.Ramroot.Cmdline, true
	}
	return "", false
}

// choose acts on an entry: boot it (with an edited command line when edited is not ""), open
// a sub-menu, or hand an action to the caller.
func (m Model) choose(e bootmenu.Entry, edited string) (tea.Model, tea.Cmd) {
	switch {
	case e.Kexec != nil || e.Ramroot != nil:
		line, _ := cmdlineOf(e)
		if m.state == stateEdit {
			line = edited
		}
		return m.startBoot(e, line)
	case e.Menu != "":
		url, b := e.Menu, m.backend
		m.notice = "loading " + url
		logf := m.opts.Logf
		return m, func() (msg tea.Msg) {
			defer func() {
				if r := recover(); r != nil {
					logf("menu: loading %s: panic: %v\n%s", url, r, debug.Stack())
					msg = menuMsg{url: url, err: fmt.Errorf("internal error: %v", r)}
				}
			}()
			menu, err := b.LoadMenu(context.Background(), url)
			return menuMsg{url, menu, err}
		}
	}
	switch e.Kind {
	case "shell":
		m.result = Result{Action: ActionShell, Entry: e}
	case "reboot":
		m.result = Result{Action: ActionReboot, Entry: e}
	case "poweroff":
		m.result = Result{Action: ActionPoweroff, Entry: e}
	default:
		m.notice = fmt.Sprintf("%s: nothing to boot", e.Name)
		return m, nil
	}
	return m, tea.Quit
}

func (m Model) startBoot(e bootmenu.Entry, cmdline string) (tea.Model, tea.Cmd) {
	if m.opts.Chosen != nil {
		m.opts.Chosen(e, m.by)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.state, m.booting, m.cmdline, m.cancel, m.err = stateBooting, e, cmdline, cancel, nil
	m.progress, m.file = loader.Progress{Total: -1}, 0
	ch := make(chan tea.Msg, 16)
	m.progCh = ch
	b, logf := m.backend, m.opts.Logf
	go func() {
		last := time.Time{}
		err := prepare(ctx, b, e, cmdline, logf, func(p loader.Progress) {
			// Drop intermediate snapshots rather than block the download on the screen.
			if p.Stage != loader.StageFetching || time.Since(last) > 200*time.Millisecond {
				last = time.Now()
				select {
				case ch <- progressMsg(p):
				default:
				}
			}
		})
		ch <- preparedMsg{err: err, cancelled: err != nil && (ctx.Err() != nil || errors.Is(err, context.Canceled))}
	}()
	return m, waitFor(ch)
}

// prepare calls the backend's Prepare (in startBoot's goroutine): a panic there becomes this
// attempt's error (a bug in one boot path must leave the menu, and PID 1, standing) and its
// stack goes to logf, as does every failure, so the cause reaches the system log and not only
// the screen.
func prepare(ctx context.Context, b Backend, e bootmenu.Entry, cmdline string, logf func(string, ...any), progress func(loader.Progress)) (err error) {
	defer func() {
		if r := recover(); r != nil {
			logf("menu: boot of %s: panic: %v\n%s", e.Name, r, debug.Stack())
			err = fmt.Errorf("internal error: %v", r)
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			logf("menu: boot of %s cancelled: %v", e.Name, err)
		default:
			logf("menu: boot of %s failed: %v", e.Name, err)
		}
	}()
	return b.Prepare(ctx, e, cmdline, progress)
}

func waitFor(ch chan tea.Msg) tea.Cmd {
	return func() tea.Msg { return <-ch }
}

func (m Model) onPrepared(msg preparedMsg) (tea.Model, tea.Cmd) {
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
	if msg.err == nil {
		m.result = Result{Action: ActionBoot, Entry: m.booting, Cmdline: m.cmdline}
		return m, tea.Quit
	}
	if msg.cancelled {
		m.state, m.notice = stateMenu, "boot cancelled"
		return m, m.restartClock()
	}
	m.state, m.err = stateFailed, msg.err
	return m, nil
}

// refilter recomputes the visible entries from the filter text.
func (m *Model) refilter() {
	q := strings.ToLower(strings.TrimSpace(m.filter.Value()))
	m.visible = nil // not visible[:0]: copies of the Model share it
	for i, e := range m.menu().Entries {
		if q == "" || strings.Contains(strings.ToLower(e.Name+" "+e.Title), q) {
			m.visible = append(m.visible, i)
		}
	}
	if m.cursor >= len(m.visible) {
		m.cursor = max(0, len(m.visible)-1)
	}
}

func (m Model) indexOf(entry int) int {
	for i, v := range m.visible {
		if v == entry {
			return i
		}
	}
	return 0
}

func (m Model) selected() (bootmenu.Entry, bool) {
	if m.cursor < 0 || m.cursor >= len(m.visible) {
		return bootmenu.Entry{}, false
	}
	return m.menu().Entries[m.visible[m.cursor]], true
}

// bootFiles lists what e fetches, each file with its mirrors: the image, or the kernel and the
// initrds in the order the backend fetches them.
func bootFiles(e bootmenu.Entry) [][]string {
	switch {
	case e.Ramroot != nil:
		return [][]string{e.Ramroot.URLs()}
	case e.Kexec != nil:
		files := [][]string{e.Kexec.Kernel.URLs()}
		for _, f := range e.Kexec.Initrds {
			files = append(files, f.URLs())
		}
		return files
	}
	return nil
}

// onProgress takes a snapshot and works out which file it is about. A snapshot carries a URL
// only, and the backend fetches the files one after the other with the same callback, so the
// file is the first from the current one on whose URLs (mirrors included) name it; once a file
// is done, the next snapshot is about a later one.
func (m *Model) onProgress(p loader.Progress) {
	files := bootFiles(m.booting)
	from := m.file
	if m.progress.Stage == loader.StageDone && p.Stage != loader.StageDone {
		from++
	}
	from = min(from, max(0, len(files)-1))
	m.file = from
	for i := from; i < len(files); i++ {
		if slices.Contains(files[i], p.URL) {
			m.file = i
			break
		}
	}
	m.progress = p
}
