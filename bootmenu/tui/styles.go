package tui

import "charm.land/lipgloss/v2"

// Styles use only bold, reverse and faint, which every serial terminal and the VGA console
// render: no colours to go wrong on an IPMI SOL.
var (
	titleStyle    = lipgloss.NewStyle().Bold(true)
	selectedStyle = lipgloss.NewStyle().Reverse(true)
	faintStyle    = lipgloss.NewStyle().Faint(true)
	errorStyle    = lipgloss.NewStyle().Bold(true)
)
