package tui

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/loader"
)

// consoleGlyph reports whether the Linux console's built-in font (VGA 8x16, code page 437)
// draws r as itself, of what the menu's screens may use: ASCII and the arrows of the hints.
func consoleGlyph(r rune) bool {
	return r == '\n' || (r >= ' ' && r <= '~') || r == '↑' || r == '↓'
}

func checkGlyphs(t *testing.T, name, screen string) {
	t.Helper()
	for i, l := range strings.Split(screen, "\n") {
		for _, r := range l {
			if !consoleGlyph(r) {
				t.Errorf("%s line %d: %q (U+%04X) shows as a box on the VGA console: %q", name, i+1, r, r, l)
			}
		}
	}
}

// TestGoldenScreensUseConsoleGlyphs: the title read "ramboot ■ Lab rescue" on VGA, the em
// dash and the ellipsis being outside the console font.
func TestGoldenScreensUseConsoleGlyphs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden screens: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkGlyphs(t, f, string(b))
	}
}

// TestOutsideTextUsesConsoleGlyphs: titles, notices, errors and cut lines from outside come in
// ASCII too.
func TestOutsideTextUsesConsoleGlyphs(t *testing.T) {
	menu := testMenu(-1)
	menu.Title = "Lab — rescue “2024”"
	menu.Entries[0].Title = "Debian 12 – rescue… " + strings.Repeat("x", 100)
	fb := &fakeBackend{fail: errors.New("fetching image: server said “no” — try later")}
	m := New(menu, fb, Options{Warnings: []string{"ramboot.timeout=“abc” " + strings.Repeat("y", 100)}})
	checkGlyphs(t, "menu", screen(m))
	m, cmd := typeKeys(m, "enter")
	m = drain(t, m, cmd)
	checkGlyphs(t, "failed", screen(m))
	if !strings.Contains(screen(m), `server said "no" - try later`) {
		t.Errorf("error not shown in ASCII:\n%s", screen(m))
	}
}

func TestTitleSaysRambootOnce(t *testing.T) {
	for _, tt := range []struct{ title, want string }{
		{"", "ramboot"},
		{"ramboot", "ramboot"},
		{"ramboot demo", "ramboot demo"},
		{"Ramboot lab", "Ramboot lab"},
		{"Lab rescue", "ramboot - Lab rescue"},
	} {
		menu := testMenu(-1)
		menu.Title = tt.title
		got, _, _ := strings.Cut(screen(New(menu, &fakeBackend{}, Options{})), "\n")
		if got != tt.want {
			t.Errorf("title %q: first line %q, want %q", tt.title, got, tt.want)
		}
	}
}

func TestFailedScreenNamesKeysOnce(t *testing.T) {
	m, cmd := typeKeys(New(testMenu(-1), &fakeBackend{fail: errors.New("404")}, Options{}), "enter")
	m = drain(t, m, cmd)
	if n := strings.Count(screen(m), "retry"); n != 1 {
		t.Errorf("the keys are shown %d times:\n%s", n, screen(m))
	}
}

// sgr matches a Select Graphic Rendition sequence.
var sgr = regexp.MustCompile(`\x1b\[([0-9;:]*)m`)

// colours lists the colour parameters (foreground or background, not the resets) of the SGR
// sequences in s.
func colours(s string) []string {
	var out []string
	for _, m := range sgr.FindAllStringSubmatch(s, -1) {
		for _, p := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ';' || r == ':' }) {
			n, _ := strconv.Atoi(p)
			if (n >= 30 && n <= 38) || (n >= 40 && n <= 48) || (n >= 90 && n <= 107) {
				out = append(out, m[0])
			}
		}
	}
	return out
}

// TestInputsHaveNoColour: the editor's prompt was white, invisible on a light background.
func TestInputsHaveNoColour(t *testing.T) {
	m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "down", "e")
	if c := colours(m.View().Content); len(c) > 0 {
		t.Errorf("the editor uses colours %q", c)
	}
	m, _ = typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "/", "m")
	if c := colours(m.View().Content); len(c) > 0 {
		t.Errorf("the filter uses colours %q", c)
	}
}

// TestNoticesStayOnTheirScreen: "shell has no command line to edit" stayed on the menu after
// the next key, and a sub-menu's 404 showed in another entry's editor.
func TestNoticesStayOnTheirScreen(t *testing.T) {
	m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "down", "down", "down", "e")
	if !strings.Contains(screen(m), "shell has no command line to edit") {
		t.Fatalf("no notice for e on the shell:\n%s", screen(m))
	}
	m, _ = typeKeys(m, "up")
	if strings.Contains(screen(m), "no command line") {
		t.Errorf("the notice outlived the next key:\n%s", screen(m))
	}

	m, cmd := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "down", "down", "enter")
	loaded := mustMsg(t, cmd) // the sub-menu's 404, delivered once the operator moved on
	m, _ = typeKeys(m, "up", "e")
	m, _ = send(m, loaded)
	if strings.Contains(screen(m), "404") {
		t.Errorf("a sub-menu's error shows in the editor of another entry:\n%s", screen(m))
	}
	m, _ = typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "down", "down", "enter")
	m, _ = send(m, loaded)
	if !strings.Contains(screen(m), "sub-menu http://boot/more.yaml: 404") {
		t.Errorf("the sub-menu's error, with its URL, is not on the menu:\n%s", screen(m))
	}
}

func TestEscClearsKeptFilter(t *testing.T) {
	m, _ := typeKeys(New(testMenu(-1), &fakeBackend{}, Options{}), "/", "m", "a", "i", "enter")
	if len(m.visible) != 1 || m.state != stateMenu {
		t.Fatalf("kept filter: %d entries in state %d", len(m.visible), m.state)
	}
	m, _ = typeKeys(m, "esc")
	if len(m.visible) != 5 || strings.Contains(screen(m), "filter:") {
		t.Errorf("esc did not clear the kept filter: %d entries\n%s", len(m.visible), screen(m))
	}
}

func kexecMenu() *bootmenu.Menu {
	return &bootmenu.Menu{Title: "Lab", Timeout: -1, Entries: []bootmenu.Entry{{
		Name: "inst", Title: "Installer", Kind: bootmenu.KindKexec, Kexec: &bootmenu.Kexec{
			Kernel: bootmenu.File{URL: "http://boot/vmlinuz"},
			// The same file twice: the position in the sequence tells them apart.
			Initrds: []bootmenu.File{{URL: "http://boot/a.img"}, {URL: "http://boot/b.img", Mirrors: []string{"http://m/b.img"}}, {URL: "http://boot/b.img"}},
		}}}}
}

// TestKexecProgressNamesTheFile: the initrd's download read "fetching kernel", each file's end
// "loading kernel", and kernel and initrds showed "N MiB unpacked".
func TestKexecProgressNamesTheFile(t *testing.T) {
	m, _ := typeKeys(New(kexecMenu(), &fakeBackend{block: make(chan struct{})}, Options{}), "enter")
	defer m.cancel()
	snap := func(s loader.Stage, url string, read int64) loader.Progress {
		return loader.Progress{Stage: s, URL: url, Read: read, Total: 10 << 20, Extracted: read, Rate: 1 << 20}
	}
	for i, tt := range []struct {
		p          loader.Progress
		want, what string
	}{
		{loader.Progress{Total: -1}, "connecting to fetch kernel", "http://boot/vmlinuz"},
		{snap(loader.StageFetching, "http://boot/vmlinuz", 2<<20), "fetching kernel", "2.0 MiB of 10.0 MiB"},
		{snap(loader.StageDone, "http://boot/vmlinuz", 10<<20), "connecting to fetch initrd 1 of 3", "http://boot/a.img"},
		{snap(loader.StageFetching, "http://boot/a.img", 1<<20), "fetching initrd 1 of 3", "http://boot/a.img"},
		{snap(loader.StageDone, "http://boot/a.img", 10<<20), "connecting to fetch initrd 2 of 3", "http://boot/b.img"},
		{snap(loader.StageFetching, "http://m/b.img", 3<<20), "fetching initrd 2 of 3", "http://m/b.img"},
		{snap(loader.StageDone, "http://m/b.img", 10<<20), "connecting to fetch initrd 3 of 3", "http://boot/b.img"},
		{snap(loader.StageFetching, "http://boot/b.img", 5<<20), "fetching initrd 3 of 3", "5.0 MiB of 10.0 MiB"},
		{snap(loader.StageDone, "http://boot/b.img", 10<<20), "loading the kernel for kexec", "100%"},
	} {
		m, _ = send(m, progressMsg(tt.p))
		s := screen(m)
		if !strings.Contains(s, "  "+tt.want+"\n") || !strings.Contains(s, tt.what) {
			t.Errorf("snapshot %d: want %q and %q on the screen:\n%s", i, tt.want, tt.what, s)
		}
		if strings.Contains(s, "unpacked") {
			t.Errorf("snapshot %d: a kernel or an initrd is not unpacked:\n%s", i, s)
		}
		if i == 5 {
			golden(t, "booting-kexec", s)
		}
	}
}

// TestConnecting: before the first byte the screen names the URL and shows no byte count or
// rate; once bytes arrive it no longer says connecting.
func TestConnecting(t *testing.T) {
	m, _ := typeKeys(New(testMenu(-1), &fakeBackend{block: make(chan struct{})}, Options{}), "enter")
	defer m.cancel()
	s := screen(m)
	if !strings.Contains(s, "  connecting\n") || !strings.Contains(s, "http://boot/rescue.tar.zst") || strings.Contains(s, "B/s") || strings.Contains(s, " 0 B") {
		t.Errorf("before the first snapshot:\n%s", s)
	}
	m, _ = send(m, progressMsg{Stage: loader.StageConnecting, URL: "http://boot/rescue.tar.zst", Total: -1, Elapsed: time.Second})
	if s := screen(m); strings.Contains(s, "B/s") {
		t.Errorf("connecting, nothing received:\n%s", s)
	}
	m, _ = send(m, progressMsg{Stage: loader.StageConnecting, URL: "http://mirror/rescue.tar.zst", Read: 64 << 10, Total: 200 << 20, Rate: 1 << 20})
	if s := screen(m); strings.Contains(s, "connecting") || !strings.Contains(s, "fetching and extracting image") || !strings.Contains(s, "http://mirror/rescue.tar.zst") {
		t.Errorf("bytes received, still connecting:\n%s", s)
	}
}

// TestRetrying: while the server refuses connections, the booting screen says which attempt
// failed, why, and when the next starts, counting down; once bytes arrive that is gone. It
// said "connecting" and nothing else for minutes.
func TestRetrying(t *testing.T) {
	now := time.Unix(1000, 0)
	m := New(testMenu(-1), &fakeBackend{block: make(chan struct{})}, Options{})
	m.now = func() time.Time { return now }
	m, _ = typeKeys(m, "enter")
	defer m.cancel()
	url := "http://boot/rescue.tar.zst"
	failed := loader.Progress{Stage: loader.StageConnecting, URL: url, Total: -1, Retry: 3,
		LastErr: "dial tcp 10.0.2.2:80: connect: connection refused", NextTry: now.Add(4200 * time.Millisecond)}
	m, _ = send(m, progressMsg(failed))
	s := screen(m)
	golden(t, "booting-retrying", s)
	for _, want := range []string{"  " + url + "\n  attempt 3 failed: dial tcp 10.0.2.2:80: connect: connection refused\n", "  next try in 5s\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("want %q on the screen:\n%s", want, s)
		}
	}
	now = now.Add(2 * time.Second) // a heartbeat, the same snapshot
	m, _ = send(m, progressMsg(failed))
	if s := screen(m); !strings.Contains(s, "  next try in 3s\n") {
		t.Errorf("the countdown did not move:\n%s", s)
	}
	running := failed
	running.NextTry = time.Time{}
	m, _ = send(m, progressMsg(running))
	if s := screen(m); !strings.Contains(s, "  attempt 3 failed: ") || !strings.Contains(s, "  trying again\n") || strings.Contains(s, "next try") {
		t.Errorf("the next attempt runs:\n%s", s)
	}
	// A cause from outside comes on one line, in ASCII.
	odd := failed
	odd.LastErr = "HTTP 503 “busy”\r\nnow — later"
	m, _ = send(m, progressMsg(odd))
	checkGlyphs(t, "retrying", screen(m))
	if s := screen(m); !strings.Contains(s, `  attempt 3 failed: HTTP 503 "busy" now - later`+"\n") {
		t.Errorf("cause not on one line in ASCII:\n%s", s)
	}
	m, _ = send(m, progressMsg{Stage: loader.StageFetching, URL: url, Read: 64 << 10, Total: 200 << 20, Rate: 1 << 20})
	if s := screen(m); strings.Contains(s, "attempt") || strings.Contains(s, "try") {
		t.Errorf("bytes arrived, still retrying:\n%s", s)
	}
}

// TestNoShellIsSaid: on an initramfs without a shell, the error screen does not offer one,
// and the shell key and a shell entry say why nothing happens (they used to fall back to the
// menu, or ask for the password first, without a word).
func TestNoShellIsSaid(t *testing.T) {
	opts := Options{NoShell: true, Lock: &fakeLock{}}
	m, cmd := typeKeys(New(testMenu(-1), &fakeBackend{fail: errors.New("404")}, opts), "enter")
	m = drain(t, m, cmd)
	if strings.Contains(screen(m), "s shell") {
		t.Errorf("the error screen offers a shell it does not have:\n%s", screen(m))
	}
	m, cmd = typeKeys(m, "s")
	if quits(t, cmd) || m.state != stateFailed || !strings.Contains(screen(m), "no shell in this initramfs") {
		t.Errorf("s without a shell: state %v\n%s", m.state, screen(m))
	}
	m, _ = typeKeys(m, "m", "j", "j", "j", "enter") // the shell entry, locked by the password
	if m.state != stateMenu || !strings.Contains(screen(m), "no shell in this initramfs") {
		t.Errorf("the shell entry without a shell: state %v\n%s", m.state, screen(m))
	}
}
