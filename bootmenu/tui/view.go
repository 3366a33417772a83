package tui

import (
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

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
	default:
		body = m.menuView()
	}
	w, h := m.opts.Width, m.opts.Height
	lines := make([]string, 0, h)
	title := m.menu().Title
	if title == "" || title == "ramboot" {
		title = "ramboot"
	} else {
		title = "ramboot — " + title
	}
	lines = append(lines, titleStyle.Render(ansi.Truncate(title, w, "…")), "")
	lines = append(lines, body...)
	// The status line sits at the bottom, the key hints above it.
	status, _ := m.backend.Network()
	status = ansi.Truncate(status, w, "…")
	if warn := m.warningLine(); warn != "" {
		status = warn
	}
	foot := []string{faintStyle.Render(ansi.Truncate(m.hints(), w, "…")), status}
	for len(lines) < h-len(foot) {
		lines = append(lines, "")
	}
	lines = append(lines[:h-len(foot)], foot...)
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, "…")
	}
	v := tea.NewView(strings.Join(lines, "\n"))
	v.AltScreen = true
	return v
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
		return "r retry  m menu  s shell  b reboot  l log"
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
		title := e.Title
		if title == "" {
			title = e.Name
		}
		mark := ""
		if e.Name == defName {
			mark = "  (default)"
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
	if m.notice != "" {
		out = append(out, m.notice)
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
	name := m.booting.Title
	if name == "" {
		name = m.booting.Name
	}
	out := []string{"Booting " + name, "", "  " + stageText(p.Stage, m.booting.Kexec != nil), ""}
	if p.URL != "" {
		out = append(out, "  "+p.URL)
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
	if eta := p.ETA(); eta >= 0 {
		line += fmt.Sprintf(", %v left", eta.Round(time.Second))
	}
	if p.Extracted > 0 {
		line += fmt.Sprintf(", %s unpacked", loader.HumanBytes(p.Extracted))
	}
	return append(out, line)
}

func stageText(s loader.Stage, kexec bool) string {
	switch s {
	case loader.StageConnecting:
		return "connecting"
	case loader.StageFetching:
		if kexec {
			return "fetching kernel"
		}
		return "fetching and extracting image"
	case loader.StageVerifying:
		return "verifying"
	case loader.StageDone:
		if kexec {
			return "loading kernel"
		}
		return "switching to the new root"
	}
	return s.String()
}

func (m Model) failedView() []string {
	out := []string{errorStyle.Render("Boot of " + m.booting.Name + " failed:"), ""}
	// Wrap the error to the screen.
	for _, l := range strings.Split(ansi.Wordwrap(m.err.Error(), m.opts.Width-4, " /"), "\n") {
		out = append(out, "  "+l)
	}
	return append(out, "", "r: retry   m: back to the menu   s: shell   b: reboot   l: log")
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
	first = ansi.Truncate(first, max(0, m.opts.Width-ansi.StringWidth(more)), "...")
	return errorStyle.Render(ansi.Truncate(first+more, m.opts.Width, "..."))
}
