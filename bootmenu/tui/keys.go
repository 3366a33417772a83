package tui

import "charm.land/bubbles/v2/key"

// keyMap is every key the menu knows, with its help text.
type keyMap struct {
	Up, Down, Boot, Edit, Filter, Help, Net, Log, Back key.Binding
	Retry, Menu, Shell, Reboot                         key.Binding
	// Interrupt is ^C. PID 1's console is in raw mode, so it arrives as a key, never as
	// SIGINT; the model reads it as Esc in every state and never quits on it.
	Interrupt key.Binding
	// The log view's scrolling and its way out.
	PageUp, PageDown, Top, Bottom, LogBack key.Binding
}

var keys = keyMap{
	Up:     key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
	Down:   key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
	Boot:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "boot")),
	Edit:   key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "edit command line")),
	Filter: key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
	Help:   key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
	Net:    key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "network")),
	Log:    key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "log")),
	Back:   key.NewBinding(key.WithKeys("esc", "backspace", "q"), key.WithHelp("esc", "back")),
	Retry:  key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "retry")),
	Menu:   key.NewBinding(key.WithKeys("m", "esc"), key.WithHelp("m", "menu")),
	Shell:  key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "shell")),
	Reboot: key.NewBinding(key.WithKeys("b"), key.WithHelp("b", "reboot")),

	Interrupt: key.NewBinding(key.WithKeys("ctrl+c")),

	PageUp:   key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
	PageDown: key.NewBinding(key.WithKeys("pgdown", "space"), key.WithHelp("pgdn", "page down")),
	Top:      key.NewBinding(key.WithKeys("home", "g"), key.WithHelp("home/g", "oldest")),
	Bottom:   key.NewBinding(key.WithKeys("end", "G"), key.WithHelp("end/G", "newest")),
	LogBack:  key.NewBinding(key.WithKeys("esc", "backspace", "q", "l", "enter"), key.WithHelp("esc", "back")),
}

// helpLines is the full help screen.
var helpLines = []key.Binding{keys.Up, keys.Down, keys.Boot, keys.Edit, keys.Filter, keys.Net, keys.Log, keys.Help, keys.Back}
