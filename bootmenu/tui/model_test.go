package tui

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/loader"
)

var update = flag.Bool("update", false, "rewrite the golden views")

type fakeBackend struct {
	prepared  []string // "name|cmdline"
	fail      error
	block     chan struct{} // Prepare waits on it (or ctx) when set
	sub       *bootmenu.Menu
	panicWith any      // Prepare and LoadMenu panic with it when set
	logs      []string // Log's lines when set

	mu     sync.Mutex
	ctxErr error // ctx.Err() when Prepare returned
}

func (f *fakeBackend) Prepare(ctx context.Context, e bootmenu.Entry, cmdline string, progress func(loader.Progress)) error {
	f.prepared = append(f.prepared, e.Name+"|"+cmdline)
	defer func() {
		f.mu.Lock()
		f.ctxErr = ctx.Err()
		f.mu.Unlock()
	}()
	progress(loader.Progress{Stage: loader.StageFetching, URL: "http://boot/rescue.tar.zst", Read: 50 << 20, Total: 200 << 20, Rate: 25 << 20, Extracted: 120 << 20})
	if f.panicWith != nil {
		panic(f.panicWith)
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return f.fail
}

func (f *fakeBackend) LoadMenu(ctx context.Context, url string) (*bootmenu.Menu, error) {
	if f.panicWith != nil {
		panic(f.panicWith)
	}
	if f.sub == nil {
		return nil, errors.New("404")
	}
	return f.sub, nil
}

func (f *fakeBackend) Network() (string, []string) {
	return "eth1 52:54:00:12:34:56 10.0.2.15/24 server 10.0.2.2", []string{"gateway 10.0.2.2", "dns 10.0.2.3"}
}

func (f *fakeBackend) Log() []string {
	if f.logs != nil {
		return f.logs
	}
	return []string{"[1.0] ramboot: starting", "[2.0] ramboot: network up"}
}

func testMenu(timeout time.Duration) *bootmenu.Menu {
	return &bootmenu.Menu{
		Title: "Lab rescue", Default: "rescue", Timeout: timeout,
		Entries: []bootmenu.Entry{
			{Name: "rescue", Title: "Debian 12 rescue (in RAM)", Kind: bootmenu.KindRamroot, Ramroot: &bootmenu.Ramroot{File: bootmenu.File{URL: "http://boot/rescue.tar.zst"}}},
			{Name: "maint", Title: "Maintenance kernel", Kind: bootmenu.KindKexec, Kexec: &bootmenu.Kexec{Kernel: bootmenu.File{URL: "http://boot/vmlinuz"}, Cmdline: "console=ttyS0 quiet"}},
			{Name: "more", Title: "More tools", Kind: bootmenu.KindMenu, Menu: "http://boot/more.yaml"},
			{Name: "shell", Title: "Shell", Kind: bootmenu.KindShell},
			{Name: "reboot", Title: "Reboot", Kind: bootmenu.KindReboot},
		},
	}
}

func press(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "ctrl+u":
		return tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	case "home":
		return tea.KeyPressMsg{Code: tea.KeyHome}
	case "end":
		return tea.KeyPressMsg{Code: tea.KeyEnd}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

// send feeds messages to the model; commands are dropped (ticks are sent by hand).
func send(m Model, msgs ...tea.Msg) (Model, tea.Cmd) {
	var cmd tea.Cmd
	for _, msg := range msgs {
		var tm tea.Model
		tm, cmd = m.Update(msg)
		m = tm.(Model)
	}
	return m, cmd
}

func typeKeys(m Model, keys ...string) (Model, tea.Cmd) {
	var msgs []tea.Msg
	for _, k := range keys {
		msgs = append(msgs, press(k))
	}
	return send(m, msgs...)
}

// drain runs the commands of a boot until Prepare's result is handled.
func drain(t *testing.T, m Model, cmd tea.Cmd) Model {
	t.Helper()
	for i := 0; cmd != nil && i < 100; i++ {
		done := make(chan tea.Msg, 1)
		go func() { done <- cmd() }()
		var msg tea.Msg
		select {
		case msg = <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("command did not return")
		}
		if _, ok := msg.(tickMsg); ok {
			return m
		}
		if seq, ok := msg.(tea.QuitMsg); ok {
			_ = seq
			return m
		}
		m, cmd = send(m, msg)
		if _, ok := msg.(preparedMsg); ok {
			return m
		}
	}
	return m
}

func screen(m Model) string { return ansi.Strip(m.View().Content) }

func golden(t *testing.T, name, got string) {
	t.Helper()
	checkGlyphs(t, name, got)
	p := filepath.Join("testdata", name+".golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		os.WriteFile(p, []byte(got), 0o644)
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("view %s differs:\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

func TestViews(t *testing.T) {
	fb := &fakeBackend{block: make(chan struct{})}
	m := New(testMenu(10*time.Second), fb, Options{})
	golden(t, "menu-countdown", screen(m))
	if lines := strings.Split(screen(m), "\n"); len(lines) != 24 {
		t.Errorf("%d lines, want 24", len(lines))
	}
	for _, l := range strings.Split(screen(m), "\n") {
		if ansi.StringWidth(l) > 80 {
			t.Errorf("line wider than 80 columns: %q", l)
		}
	}
	m2, _ := typeKeys(m, "down")
	golden(t, "menu-stopped", screen(m2))
	m3, _ := typeKeys(m2, "?")
	golden(t, "help", screen(m3))
	m4, _ := typeKeys(m2, "n")
	golden(t, "network", screen(m4))
	m5, _ := typeKeys(m2, "e")
	golden(t, "edit", screen(m5))
	m6, cmd := typeKeys(m, "enter")
	m6, _ = send(m6, mustMsg(t, cmd))
	golden(t, "booting", screen(m6))
	close(fb.block)
}

func mustMsg(t *testing.T, cmd tea.Cmd) tea.Msg {
	t.Helper()
	if cmd == nil {
		t.Fatal("no command")
	}
	return cmd()
}

func TestCountdown(t *testing.T) {
	fb := &fakeBackend{}
	m := New(testMenu(3*time.Second), fb, Options{})
	for i := 0; i < 2; i++ {
		m, _ = send(m, tickMsg{m.gen})
	}
	if !strings.Contains(screen(m), "Booting rescue in 1s") {
		t.Fatalf("countdown not shown:\n%s", screen(m))
	}
	m, cmd := send(m, tickMsg{m.gen})
	m = drain(t, m, cmd)
	if r := m.Result(); r.Action != ActionBoot || r.Entry.Name != "rescue" {
		t.Fatalf("countdown end: result %+v", r)
	}
	if len(fb.prepared) != 1 || fb.prepared[0] != "rescue|" {
		t.Errorf("prepared %q", fb.prepared)
	}
}

func TestAnyKeyStopsCountdownAndIdleResumes(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New(testMenu(5*time.Second), &fakeBackend{}, Options{Idle: time.Minute})
	m.now = func() time.Time { return now }
	m, _ = typeKeys(m, "x") // an unbound key still stops the countdown
	if m.counting {
		t.Fatal("countdown still running after a key")
	}
	for i := 0; i < 10; i++ {
		m, _ = send(m, tickMsg{m.gen})
	}
	if m.counting || m.Result().Action != ActionNone {
		t.Fatal("stopped countdown ran on")
	}
	now = now.Add(61 * time.Second)
	m, _ = send(m, tickMsg{m.gen})
	if !m.counting || !strings.Contains(screen(m), "countdown resumed") {
		t.Fatalf("countdown did not resume after the idle time:\n%s", screen(m))
	}
}

func TestNoTimeoutWaits(t *testing.T) {
	m := New(testMenu(-1), &fakeBackend{}, Options{})
	for i := 0; i < 100; i++ {
		m, _ = send(m, tickMsg{m.gen})
	}
	if m.Result().Action != ActionNone || strings.Contains(screen(m), "Booting") {
		t.Fatal("a menu without timeout booted by itself")
	}
}

func TestDownEnterBootsSecond(t *testing.T) {
	fb := &fakeBackend{}
	m, cmd := typeKeys(New(testMenu(10*time.Second), fb, Options{}), "down", "enter")
	m = drain(t, m, cmd)
	if r := m.Result(); r.Action != ActionBoot || r.Entry.Name != "maint" || r.Cmdline != "console=ttyS0 quiet" {
		t.Fatalf("result %+v", r)
	}
}

func TestEditCmdline(t *testing.T) {
	fb := &fakeBackend{}
	m, _ := typeKeys(New(testMenu(-1), fb, Options{}), "j", "e")
	if m.state != stateEdit {
		t.Fatal("e did not open the editor")
	}
	m, _ = typeKeys(m, " ", "m", "=", "1")
	m, cmd := typeKeys(m, "enter")
	m = drain(t, m, cmd)
	if r := m.Result(); r.Entry.Name != "maint" || r.Cmdline != "console=ttyS0 quiet m=1" {
		t.Fatalf("edited boot: %+v", r)
	}
	// Esc cancels the edit and keeps the entry's own line.
	m, _ = typeKeys(New(testMenu(-1), fb, Options{}), "j", "e", "x", "esc")
	if m.state != stateMenu || m.Result().Action != ActionNone {
		t.Fatal("esc did not cancel the edit")
	}
}

func TestFilter(t *testing.T) {
	m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "/", "m", "a", "i")
	if len(m.visible) != 1 {
		t.Fatalf("filter 'mai' shows %d entries", len(m.visible))
	}
	m, _ = typeKeys(m, "enter")
	if e, _ := m.selected(); e.Name != "maint" || m.state != stateMenu {
		t.Fatalf("selected %s in state %d", e.Name, m.state)
	}
	m, _ = typeKeys(m, "/", "esc")
	if len(m.visible) != 5 {
		t.Errorf("esc did not clear the filter: %d entries", len(m.visible))
	}
}

func TestFailureChoices(t *testing.T) {
	fb := &fakeBackend{fail: errors.New("http://boot/rescue.tar.zst: checksum mismatch: expected sha256 aa, got bb")}
	m, cmd := typeKeys(New(testMenu(-1), fb, Options{}), "enter")
	m = drain(t, m, cmd)
	if m.state != stateFailed || !strings.Contains(screen(m), "checksum mismatch") {
		t.Fatalf("failure not shown:\n%s", screen(m))
	}
	golden(t, "failed", screen(m))
	// Retry runs Prepare again.
	m2, cmd := typeKeys(m, "r")
	drain(t, m2, cmd)
	if len(fb.prepared) != 2 {
		t.Errorf("retry: prepared %d times", len(fb.prepared))
	}
	if m3, _ := typeKeys(m, "m"); m3.state != stateMenu {
		t.Error("m did not go back to the menu")
	}
	if m4, _ := typeKeys(m, "s"); m4.Result().Action != ActionShell {
		t.Error("s did not ask for a shell")
	}
	if m5, _ := typeKeys(m, "b"); m5.Result().Action != ActionReboot {
		t.Error("b did not ask for a reboot")
	}
}

func TestCancelBoot(t *testing.T) {
	fb := &fakeBackend{block: make(chan struct{})}
	m, cmd := typeKeys(New(testMenu(-1), fb, Options{}), "enter")
	m, _ = send(m, mustMsg(t, cmd)) // progress
	m, _ = typeKeys(m, "esc")
	m = drain(t, m, waitFor(m.progCh))
	if m.state != stateMenu || m.Result().Action != ActionNone {
		t.Fatalf("esc during boot: state %d result %+v", m.state, m.Result())
	}
}

func TestSubmenuAndActions(t *testing.T) {
	sub := &bootmenu.Menu{Title: "More", Timeout: -1, Entries: []bootmenu.Entry{{Name: "memtest", Kind: bootmenu.KindPoweroff}}}
	m, cmd := typeKeys(New(testMenu(-1), &fakeBackend{sub: sub}, Options{}), "down", "down", "enter")
	m, _ = send(m, mustMsg(t, cmd))
	if m.menu() != sub || !strings.Contains(screen(m), "esc back") {
		t.Fatalf("sub-menu not shown:\n%s", screen(m))
	}
	m, _ = typeKeys(m, "esc")
	if m.menu().Title != "Lab rescue" {
		t.Fatal("esc did not return to the parent menu")
	}
	for k, want := range map[int]Action{3: ActionShell, 4: ActionReboot} {
		mm := New(testMenu(-1), &fakeBackend{}, Options{})
		for i := 0; i < k; i++ {
			mm, _ = typeKeys(mm, "down")
		}
		mm, _ = typeKeys(mm, "enter")
		if mm.Result().Action != want {
			t.Errorf("entry %d: action %v, want %v", k, mm.Result().Action, want)
		}
	}
}

func TestClaim(t *testing.T) {
	taken := true
	m := New(testMenu(2*time.Second), &fakeBackend{}, Options{Claim: func() bool { return !taken }})
	m, cmd := typeKeys(m, "down")
	if cmd == nil || m.Result().Action != ActionNone {
		t.Fatal("a console that lost the claim must quit")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("not a quit")
	}
}
