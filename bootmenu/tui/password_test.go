package tui

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/ramboot/ramboot/bootmenu"
)

// fakeLock accepts "secret"; it records what it was given.
type fakeLock struct {
	mu    sync.Mutex
	tried []string
}

func (l *fakeLock) Set() bool { return true }
func (l *fakeLock) Check(pw string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tried = append(l.tried, pw)
	if pw != "secret" {
		return errors.New("wrong password")
	}
	return nil
}

// runCmd runs one command and feeds its message back.
func runCmd(t *testing.T, m Model, cmd tea.Cmd) Model {
	t.Helper()
	if cmd == nil {
		t.Fatal("no command to run")
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	select {
	case msg := <-done:
		m, _ = send(m, msg)
	case <-time.After(5 * time.Second):
		t.Fatal("command did not return")
	}
	return m
}

func TestPasswordLocksEdit(t *testing.T) {
	lock := &fakeLock{}
	m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{Lock: lock}), "j", "e")
	if m.state != statePassword {
		t.Fatalf("e with a password set: state %v, want the password prompt", m.state)
	}
	m, _ = typeKeys(m, "w", "r", "o", "n", "g")
	if s := screen(m); strings.Contains(s, "wrong") || strings.Contains(s, "*") {
		t.Fatalf("the prompt echoes what is typed:\n%s", s)
	}
	m, cmd := typeKeys(m, "enter")
	// Keys during the check are ignored (the delay after a wrong attempt holds).
	m, _ = typeKeys(m, "x")
	m = runCmd(t, m, cmd)
	if m.state != statePassword || !strings.Contains(screen(m), "wrong password") {
		t.Fatalf("a wrong password: state %v, screen:\n%s", m.state, screen(m))
	}
	m, _ = typeKeys(m, "s", "e", "c", "r", "e", "t")
	golden(t, "password", screen(m))
	m, cmd = typeKeys(m, "enter")
	m = runCmd(t, m, cmd)
	if m.state != stateEdit {
		t.Fatalf("the right password: state %v, want the editor", m.state)
	}
	if got := strings.Join(lock.tried, ","); got != "wrong,secret" {
		t.Errorf("the lock was given %q, want wrong,secret", got)
	}
	// Unlocked for the session: e again needs no password.
	m, _ = typeKeys(m, "esc", "e")
	if m.state != stateEdit {
		t.Errorf("after unlocking, e asks again (state %v)", m.state)
	}
}

func TestPasswordLocksShellAndLockedEntries(t *testing.T) {
	menu := testMenu(-1)
	menu.Entries[1].Locked = true // maint
	lock := &fakeLock{}
	fb := &fakeBackend{}
	// An unlocked entry boots without a password.
	m, cmd := typeKeys(New(menu, fb, Options{Lock: lock}), "enter")
	m = drain(t, m, cmd)
	if m.Result().Action != ActionBoot || len(lock.tried) != 0 {
		t.Fatalf("unlocked entry: result %+v, password asked %d times", m.Result(), len(lock.tried))
	}
	for _, keys := range [][]string{{"j", "enter"}, {"j", "j", "j", "enter"}} {
		m, _ := typeKeys(New(menu, fb, Options{Lock: lock}), keys...)
		if m.state != statePassword {
			t.Fatalf("%v: state %v, want the password prompt", keys, m.state)
		}
		m, _ = typeKeys(m, "esc")
		if m.state != stateMenu || m.Result().Action != ActionNone {
			t.Fatalf("%v: esc: state %v, result %+v", keys, m.state, m.Result())
		}
	}
	// The shell, after the right password.
	m, _ = typeKeys(New(menu, fb, Options{Lock: lock}), "j", "j", "j", "enter", "s", "e", "c", "r", "e", "t")
	m, cmd = typeKeys(m, "enter")
	m = runCmd(t, m, cmd)
	if m.Result().Action != ActionShell {
		t.Fatalf("shell after the password: result %+v", m.Result())
	}
	// The countdown boots a locked default without a password.
	menu.Default, menu.Timeout = "maint", time.Second
	m = New(menu, fb, Options{Lock: lock})
	m, cmd = send(m, tickMsg{})
	m = drain(t, m, cmd)
	if r := m.Result(); r.Action != ActionBoot || r.Entry.Name != "maint" {
		t.Fatalf("countdown to a locked default: %+v", r)
	}
}

func TestFailedScreenShellIsLocked(t *testing.T) {
	fb := &fakeBackend{fail: errors.New("boom")}
	m, cmd := typeKeys(New(testMenu(-1), fb, Options{Lock: &fakeLock{}}), "enter")
	m = drain(t, m, cmd)
	m, _ = typeKeys(m, "s")
	if m.state != statePassword || m.Result().Action != ActionNone {
		t.Fatalf("s on the error screen: state %v, result %+v", m.state, m.Result())
	}
	m, _ = typeKeys(m, "esc")
	if m.state != stateFailed {
		t.Fatalf("esc from the prompt: state %v, want the error screen", m.state)
	}
}

func TestRefusedMenuScreen(t *testing.T) {
	fb := &fakeBackend{}
	fallback := &bootmenu.Menu{Timeout: 5 * time.Second, Entries: []bootmenu.Entry{
		{Name: "shell", Title: "Shell", Kind: bootmenu.KindShell},
		{Name: "reboot", Title: "Reboot", Kind: bootmenu.KindReboot},
	}}
	err := errors.New("http://boot/menu.yaml: refused by the chain of trust: bad signature by key 1A2B3C: the file or its trusted comment was changed")
	m := New(fallback, fb, Options{MenuError: err})
	golden(t, "menu-refused", screen(m))
	if m.counting {
		t.Error("the countdown runs under the error screen")
	}
	again, cmd := typeKeys(m, "r")
	if r := again.Result(); r.Action != ActionFindMenu || !quits(t, cmd) || len(fb.prepared) != 0 {
		t.Fatalf("r on a refused menu: result %+v, prepared %v; want the session to end with ActionFindMenu", r, fb.prepared)
	}
	m, _ = typeKeys(m, "m")
	if m.state != stateMenu || !strings.Contains(screen(m), "Reboot") {
		t.Fatalf("m: state %v, screen:\n%s", m.state, screen(m))
	}
}

// TestPasswordEscWhileChecking: Esc (and ^C) leave the prompt while an attempt waits out the
// delay after wrong ones, and that attempt's late answer does not count for the next one.
func TestPasswordEscWhileChecking(t *testing.T) {
	lock := &fakeLock{}
	for _, leave := range []string{"esc", "ctrl+c"} {
		m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{Lock: lock}), "j", "e", "x")
		m, slow := typeKeys(m, "enter")
		if !m.checking || !strings.Contains(screen(m), "esc cancels") {
			t.Fatalf("while checking, the screen says nothing of how to leave:\n%s", screen(m))
		}
		m, _ = typeKeys(m, leave)
		if m.state != stateMenu {
			t.Fatalf("%s while checking: state %v, want the menu", leave, m.state)
		}
		// Back to the prompt, the right password on its way; the first attempt's late
		// "wrong" must not be taken as the answer to it.
		m, _ = typeKeys(m, "e", "s", "e", "c", "r", "e", "t")
		m, right := typeKeys(m, "enter")
		m = runCmd(t, m, slow)
		if m.state != statePassword || strings.Contains(screen(m), "wrong password") {
			t.Fatalf("%s: the abandoned attempt's answer was taken: state %v\n%s", leave, m.state, screen(m))
		}
		m = runCmd(t, m, right)
		if m.state != stateEdit {
			t.Fatalf("%s: the right password after a cancelled attempt: state %v, want the editor", leave, m.state)
		}
	}
}

// TestLockedEntriesAreMarked: the menu shows which entries ask for the password before the
// operator chooses one (and none once it has been given, or without a password set).
func TestLockedEntriesAreMarked(t *testing.T) {
	menu := testMenu(-1)
	menu.Entries[1].Locked = true // maint
	m := New(menu, &fakeBackend{}, Options{Lock: &fakeLock{}})
	lines := strings.Split(screen(m), "\n")
	var marked []string
	for _, l := range lines {
		if strings.Contains(l, "(password)") {
			marked = append(marked, strings.TrimSpace(l))
		}
	}
	if len(marked) != 1 || !strings.Contains(marked[0], "Maintenance kernel") {
		t.Errorf("marked entries %q, want only the locked one:\n%s", marked, screen(m))
	}
	if s := screen(New(menu, &fakeBackend{}, Options{})); strings.Contains(s, "(password)") {
		t.Errorf("marked without a password set:\n%s", s)
	}
}
