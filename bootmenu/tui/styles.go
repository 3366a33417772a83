package tui

import (
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// Styles use only bold, reverse and faint, which every serial terminal and the VGA console
// render: no colours to go wrong on an IPMI SOL, or to vanish on a light background.
var (
	titleStyle    = lipgloss.NewStyle().Bold(true)
	selectedStyle = lipgloss.NewStyle().Reverse(true)
	faintStyle    = lipgloss.NewStyle().Faint(true)
	errorStyle    = lipgloss.NewStyle().Bold(true)
)

// inputStyles are the filter's and the editor's: plain text and a steady block cursor
// (bubbles' defaults are white and grey, and a blinking cursor redraws the line twice a second
// over a slow serial line).
var inputStyles = textinput.Styles{
	Focused: textinput.StyleState{Text: lipgloss.NewStyle(), Placeholder: faintStyle, Suggestion: faintStyle, Prompt: lipgloss.NewStyle()},
	Blurred: textinput.StyleState{Text: lipgloss.NewStyle(), Placeholder: faintStyle, Suggestion: faintStyle, Prompt: lipgloss.NewStyle()},
	Cursor:  textinput.CursorStyle{Shape: tea.CursorBlock},
}

// The Linux console draws text with the kernel's built-in font (VGA 8x16, the IBM PC's code
// page 437): a character outside it shows as a box. Besides ASCII that font has the arrows the
// key hints use (and box drawing, accented letters, a few symbols). The menu's own text keeps to
// ASCII and those arrows; ellipsis is "...".
const ellipsis = "..."

// plainGlyphs replaces the punctuation a menu file or an error likely brings from outside
// code page 437 (dashes, curly quotes, the ellipsis) with ASCII.
var plainGlyphs = strings.NewReplacer(
	"\u2014", "-", "\u2013", "-", "\u2012", "-", "\u2010", "-", "\u2011", "-", "\u2212", "-",
	"\u2026", "...", "\u2018", "'", "\u2019", "'", "\u201a", "'", "\u201c", `"`, "\u201d", `"`, "\u201e", `"`,
	"\u00a0", " ", "\u2022", "*", "\u2192", "->", "\u2190", "<-",
)

// plain is s with plainGlyphs applied.
func plain(s string) string { return plainGlyphs.Replace(s) }
