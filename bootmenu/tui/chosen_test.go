package tui

import (
	"testing"
	"time"

	"github.com/ramboot/ramboot/bootmenu"
)

// TestChosenSaysHow: Options.Chosen learns whether the countdown or a key chose the entry.
func TestChosenSaysHow(t *testing.T) {
	var got []string
	opts := Options{Chosen: func(e bootmenu.Entry, by string) { got = append(got, e.Name+" by "+by) }}
	m := New(testMenu(2*time.Second), &fakeBackend{}, opts)
	for range 2 {
		m, _ = send(m, tickMsg{m.gen})
	}
	m = New(testMenu(5*time.Second), &fakeBackend{}, opts)
	m, _ = typeKeys(m, "down", "enter")
	want := []string{"rescue by countdown", m.booting.Name + " by key"}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] || m.booting.Name == "rescue" {
		t.Errorf("Chosen got %q, want %q (second not the default)", got, want)
	}
}
