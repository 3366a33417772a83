package tui

import (
	"fmt"
	"strings"
	"time"
	"unicode"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/loader"
)

// View renders the screen for the current state.
func (m Model) View() tea.View {
	var body []string
	switch m.state {
	case stateHelp:
		body = m.helpView()
	case stateNet:
		body = m.netView()
	case stateLog:
		body = m.logView()
	case stateBooting:
		body = m.bootView()
	case stateFailed:
		body = m.failedView()
	case statePassword:
		body = m.passwordView()
	default:
		body = m.menuView()
	}
	w, h := m.opts.Width, m.opts.Height
	lines := make([]string, 0, h)
	lines = append(lines, titleStyle.Render(ansi.Truncate(plain(m.title()), w, ellipsis)), "")
	lines = append(lines, body...)
	// The status line sits at the bottom, the key hints above it.
	status, _ := m.backend.Network()
	status = ansi.Truncate(plain(status), w, ellipsis)
	if warn := m.warningLine(); warn != "" {
		status = warn
	}
	foot := []string{faintStyle.Render(ansi.Truncate(m.hints(), w, ellipsis)), status}
	for len(lines) < h-len(foot) {
		lines = append(lines, "")
	}
	lines = append(lines[:h-len(foot)], foot...)
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, ellipsis)
	}
	v := tea.NewView(strings.Join(lines, "\n"))
	v.AltScreen = true
	return v
}

// title is the screen's first line: "ramboot", and the menu's title unless it already says
// ramboot.
func (m Model) title() string {
	t := strings.TrimSpace(m.menu().Title)
	switch {
	case t == "":
		return "ramboot"
	case strings.HasPrefix(strings.ToLower(t), "ramboot"):
		return t
	}
	return "ramboot - " + t
}

func (m Model) hints() string {
	switch m.state {
	case stateFilter:
		return "type to filter  enter keep  esc clear"
	case stateEdit:
		return "enter boot this command line  esc cancel"
	case stateHelp, stateNet:
		return "any key: back"
	case stateLog:
		return m.logHints()
	case stateBooting:
		return "esc cancel"
	case stateFailed:
		shell := "  s shell"
		if m.opts.NoShell {
			shell = ""
		}
		if m.refused {
			return "r look again  m menu" + shell + "  b reboot  l log"
		}
		return "r retry  m menu" + shell + "  b reboot  l log"
	case statePassword:
		return "enter unlock  esc cancel"
	}
	back := ""
	if len(m.menus) > 1 {
		back = "  esc back"
	}
	return "↑↓ move  enter boot  e edit  / filter  n net  l log  ? help" + back
}

func (m Model) menuView() []string {
	var out []string
	menu := m.menu()
	defName := ""
	if def, ok := menu.DefaultEntry(); ok {
		defName = def.Name
	}
	// Room for entries: the screen less title (2), notice/countdown (2), filter (1), footer (2).
	room := max(1, m.opts.Height-7)
	first := 0
	if m.cursor >= room {
		first = m.cursor - room + 1
	}
	for i := first; i < len(m.visible) && i < first+room; i++ {
		e := menu.Entries[m.visible[i]]
		title := plain(e.Title)
		if title == "" {
			title = e.Name
		}
		mark := ""
		if e.Name == defName {
			mark = "  (default)"
		}
		if m.entryLocked(e) && e.Kind != bootmenu.KindShell {
			mark += "  (password)"
		}
		line := fmt.Sprintf("  %s%s", title, mark)
		if i == m.cursor {
			line = selectedStyle.Render(fmt.Sprintf("> %-*s", m.opts.Width-3, title+mark))
		}
		out = append(out, line)
	}
	if len(m.visible) == 0 {
		out = append(out, "  (no entry matches the filter)")
	}
	out = append(out, "")
	switch {
	case m.state == stateFilter:
		out = append(out, m.filter.View())
	case m.state == stateEdit:
		if e, ok := m.selected(); ok {
			out = append(out, "edit "+e.Name+":", m.edit.View())
		}
	case m.counting:
		out = append(out, fmt.Sprintf("Booting %s in %ds. Press any key to stop.", defName, int((m.remaining+time.Second-1)/time.Second)))
	case m.filter.Value() != "":
		out = append(out, "filter: "+m.filter.Value())
	}
	// A notice belongs to the menu; the editor and the filter line have the screen's attention.
	if m.notice != "" && m.state == stateMenu {
		out = append(out, plain(m.notice))
	}
	return out
}

func (m Model) helpView() []string {
	out := []string{"Keys:"}
	for _, b := range helpLines {
		h := b.Help()
		out = append(out, fmt.Sprintf("  %-10s %s", h.Key, h.Desc))
	}
	out = append(out, "", "Any key stops the countdown; it resumes after a while without keys.")
	return out
}

func (m Model) netView() []string {
	status, details := m.backend.Network()
	out := []string{"Network:", "  " + status}
	for _, d := range details {
		out = append(out, "  "+d)
	}
	return out
}

func (m Model) bootView() []string {
	p := m.progress
	name := plain(m.booting.Title)
	if name == "" {
		name = m.booting.Name
	}
	files := bootFiles(m.booting)
	file, url := m.file, p.URL
	if m.booting.Kexec != nil && p.Stage == loader.StageDone && file+1 < len(files) {
		// A file is in; the backend is opening the next one, which reports nothing until it
		// connects.
		file, url, p = file+1, "", loader.Progress{Total: -1}
	}
	if url == "" && file < len(files) {
		url = files[file][0]
	}
	// Bytes have arrived: whatever the stage says, the connection is up.
	if p.Stage == loader.StageConnecting && p.Read > 0 {
		p.Stage = loader.StageFetching
	}
	out := []string{"Booting " + name, "", "  " + m.stageText(p.Stage, file), ""}
	if url != "" {
		out = append(out, "  "+url)
	}
	out = append(out, m.retryLines(p)...)
	if p.Stage == loader.StageConnecting {
		return out
	}
	width := max(10, m.opts.Width-12)
	if p.Total > 0 {
		frac := min(1, float64(p.Read)/float64(p.Total))
		n := int(frac * float64(width))
		out = append(out, fmt.Sprintf("  [%s%s] %3.0f%%", strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100))
		out = append(out, fmt.Sprintf("  %s of %s", loader.HumanBytes(p.Read), loader.HumanBytes(p.Total)))
	} else {
		out = append(out, fmt.Sprintf("  %s", loader.HumanBytes(p.Read)))
	}
	line := fmt.Sprintf("  %s/s", loader.HumanBytes(int64(p.Rate)))
	if eta := p.ETA(); eta >= 0 && p.Stage == loader.StageFetching {
		line += fmt.Sprintf(", %v left", eta.Round(time.Second))
	}
	// Only an image is unpacked; a kernel or an initrd is stored as it comes.
	if p.Extracted > 0 && m.booting.Ramroot != nil {
		line += fmt.Sprintf(", %s unpacked", loader.HumanBytes(p.Extracted))
	}
	return append(out, line)
}

// retryLines say, while attempts fail (a server not up yet refuses connections for minutes),
// which attempt failed and why, and when the next one starts; nothing once bytes flow again.
func (m Model) retryLines(p loader.Progress) []string {
	if p.Retry <= 0 {
		return nil
	}
	// One line: control characters (a server's status text may hold any) are spaces.
	cause := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, p.LastErr)
	cause = plain(strings.Join(strings.Fields(cause), " "))
	next := "trying again"
	if d := p.NextTry.Sub(m.now()); !p.NextTry.IsZero() && d > 0 {
		next = fmt.Sprintf("next try in %ds", int((d+time.Second-1)/time.Second))
	}
	return []string{fmt.Sprintf("  attempt %d failed: %s", p.Retry, cause), "  " + next}
}

// stageText says what the boot is doing, naming the file (kernel, initrd 2 of 3) of a kexec.
func (m Model) stageText(s loader.Stage, file int) string {
	k := m.booting.Kexec
	if k == nil {
		switch s {
		case loader.StageConnecting:
			return "connecting"
		case loader.StageFetching:
			return "fetching and extracting image"
		case loader.StageVerifying:
			return "verifying image"
		case loader.StageDone:
			return "switching to the new root"
		}
		return s.String()
	}
	what := "kernel"
	switch {
	case file > 0 && len(k.Initrds) == 1:
		what = "initrd"
	case file > 0:
		what = fmt.Sprintf("initrd %d of %d", file, len(k.Initrds))
	}
	switch s {
	case loader.StageConnecting:
		return "connecting to fetch " + what
	case loader.StageFetching:
		return "fetching " + what
	case loader.StageVerifying:
		return "verifying " + what
	case loader.StageDone:
		return "loading the kernel for kexec"
	}
	return s.String()
}

func (m Model) failedView() []string {
	head := "Boot of " + m.booting.Name + " failed:"
	if m.refused {
		head = "Menu refused (r looks for it again, m opens the fallback menu):"
	}
	out := []string{errorStyle.Render(head), ""}
	// Wrap the error to the screen. The keys are in the hints below.
	for _, l := range strings.Split(ansi.Wordwrap(plain(m.err.Error()), m.opts.Width-4, " /"), "\n") {
		out = append(out, "  "+l)
	}
	if m.notice != "" {
		out = append(out, "", plain(m.notice))
	}
	return out
}

// warningLine is the startup warnings for the status line, "" once a key was pressed: the first
// warning, cut to fit (in ASCII, for the VGA font), and how many more there are.
func (m Model) warningLine() string {
	ws := m.opts.Warnings
	if m.warned || len(ws) == 0 || m.state != stateMenu {
		return ""
	}
	more := " (l for the log)"
	if len(ws) > 1 {
		more = fmt.Sprintf(" (+%d more, l for the log)", len(ws)-1)
	}
	first := strings.Join(wrapRow(ws[0], 1<<20), " ") // one line, no control characters
	first = ansi.Truncate(plain(first), max(0, m.opts.Width-ansi.StringWidth(more)), ellipsis)
	return errorStyle.Render(ansi.Truncate(first+more, m.opts.Width, ellipsis))
}
