package tui

import "charm.land/bubbles/v2/key"

// keyMap is every key the menu knows, with its help text.
type keyMap struct {
	Up, Down, Boot, Edit, Filter, Help, Net, Log, Back key.Binding
	Retry, Menu, Shell, Reboot                         key.Binding
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
}

// helpLines is the full help screen.
var helpLines = []key.Binding{keys.Up, keys.Down, keys.Boot, keys.Edit, keys.Filter, keys.Net, keys.Log, keys.Help, keys.Back}
