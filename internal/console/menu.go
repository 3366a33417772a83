// Package console is /init's side of the consoles: which ones the kernel writes to, their size
// (asked of a serial terminal when the kernel does not know it), the boot menu shown on all of
// them at once, and the shell started on one of them in a session of its own.
package console

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/bootmenu/tui"
)

// Menu is one showing of the boot menu on every active console.
type Menu struct {
	Menu    *bootmenu.Menu
	Backend tui.Backend
	Options tui.Options // Claim, Width and Height are set per console
	Logf    func(format string, args ...any)
	// Quiet is called with true while the menu owns the consoles (log lines must not go to
	// the screen) and with false after.
	Quiet func(bool)
}

// Show runs the menu on every active console; the first console where a key is pressed (or
// whose countdown ends) takes control, the others close. It returns the result and the tty of
// the console that decided ("" when none did).
func (s Menu) Show() (tui.Result, string) {
	if s.Quiet != nil {
		s.Quiet(true)
		defer s.Quiet(false)
	}
	// Kernel messages (a link coming up, say) would scroll the menu's screen away under it:
	// keep all but emergencies off the console while the menu owns it; dmesg still has them.
	if old, err := os.ReadFile("/proc/sys/kernel/printk"); err == nil {
		if f := strings.Fields(string(old)); len(f) > 0 {
			os.WriteFile("/proc/sys/kernel/printk", []byte("1"), 0)
			defer os.WriteFile("/proc/sys/kernel/printk", []byte(f[0]), 0)
		}
	}
	names := Active()
	var (
		mu     sync.Mutex
		owner  = -1
		progs  []*tea.Program
		files  []*os.File
		quitAt = make(chan int, 1)
	)
	for _, n := range names {
		f, err := os.OpenFile("/dev/"+n, os.O_RDWR, 0)
		if err != nil {
			s.Logf("console %s: %v", n, err)
			continue
		}
		i := len(progs)
		w, h := Size(f)
		opts := s.Options
		opts.Width, opts.Height = w, h
		opts.Claim = func() bool {
			mu.Lock()
			defer mu.Unlock()
			if owner == -1 {
				owner = i
				quitAt <- i
			}
			return owner == i
		}
		model := tui.New(s.Menu, s.Backend, opts)
		termName := "vt220"
		if strings.HasPrefix(n, "tty") && !strings.HasPrefix(n, "ttyS") && !strings.HasPrefix(n, "ttyAMA") {
			termName = "linux"
		}
		// tui.Output: the far terminal may turn LF into CR LF (see there).
		progs = append(progs, tea.NewProgram(model, tea.WithInput(f), tea.WithOutput(tui.Output(f)), tea.WithoutSignalHandler(),
			tea.WithEnvironment([]string{"TERM=" + termName}), tea.WithWindowSize(w, h)))
		files = append(files, f)
	}
	if len(progs) == 0 {
		s.Logf("no console to show the menu on")
		return tui.Result{}, ""
	}
	go func() {
		i := <-quitAt
		for j, p := range progs {
			if j != i {
				p.Quit()
			}
		}
	}()
	results := make([]tui.Result, len(progs))
	var wg sync.WaitGroup
	for i, p := range progs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fm, err := p.Run()
			if err != nil {
				s.Logf("menu on %s: %v", names[i], err)
			}
			if tm, ok := fm.(tui.Model); ok {
				results[i] = tm.Result()
			}
		}()
	}
	wg.Wait()
	for _, f := range files {
		f.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if owner >= 0 {
		return results[owner], "/dev/" + names[owner]
	}
	return tui.Result{}, ""
}

// Active lists the kernel's consoles (tty0 and ttyS0, say); /dev/console alone when
// sysfs does not say.
func Active() []string {
	b, err := os.ReadFile("/sys/class/tty/console/active")
	if err != nil || len(strings.Fields(string(b))) == 0 {
		return []string{"console"}
	}
	return strings.Fields(string(b))
}

// Size is the terminal's size: the kernel's idea when it has one (VGA), else the
// terminal's answer to a cursor-position query (a serial terminal emulator), else 80x24. The
// result is set on the tty so every later reader agrees.
func Size(f *os.File) (int, int) {
	sc, err := f.SyscallConn()
	if err != nil {
		return 80, 24
	}
	var ws *unix.Winsize
	sc.Control(func(fd uintptr) { ws, _ = unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ) })
	if ws != nil && ws.Row > 0 && ws.Col > 0 {
		return int(ws.Col), int(ws.Row)
	}
	w, h := 80, 24
	if cw, ch, ok := querySize(f); ok {
		w, h = cw, ch
	}
	sc.Control(func(fd uintptr) {
		unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(h), Col: uint16(w)})
	})
	return w, h
}

// querySize moves the cursor far right and down, asks where it is (DSR 6) and reads the
// answer, ESC [ rows ; cols R, waiting 300ms at most.
func querySize(f *os.File) (int, int, bool) {
	// Work on the fd through SyscallConn: f.Fd() would switch the file to blocking mode, and
	// the read deadline below (and bubbletea's reader later) need it non-blocking.
	sc, err := f.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var old *unix.Termios
	sc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			return
		}
		saved := *t
		old = &saved
		t.Lflag &^= unix.ICANON | unix.ECHO
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	if old == nil {
		return 0, 0, false
	}
	defer sc.Control(func(fd uintptr) { unix.IoctlSetTermios(int(fd), unix.TCSETS, old) })
	io.WriteString(f, "\x1b7\x1b[999;999H\x1b[6n\x1b8")
	if f.SetReadDeadline(time.Now().Add(300*time.Millisecond)) != nil {
		return 0, 0, false
	}
	defer f.SetReadDeadline(time.Time{})
	buf := make([]byte, 0, 32)
	tmp := make([]byte, 32)
	for len(buf) < 32 {
		n, err := f.Read(tmp)
		buf = append(buf, tmp[:n]...)
		if i := strings.LastIndexByte(string(buf), 'R'); i >= 0 {
			var rows, cols int
			if j := strings.LastIndex(string(buf[:i]), "\x1b["); j >= 0 {
				if _, err := fmt.Sscanf(string(buf[j:i+1]), "\x1b[%d;%dR", &rows, &cols); err == nil && rows > 5 && cols > 20 {
					return cols, rows, true
				}
			}
			return 0, 0, false
		}
		if err != nil {
			return 0, 0, false
		}
	}
	return 0, 0, false
}
