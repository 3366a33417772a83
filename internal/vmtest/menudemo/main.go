// Command menudemo shows the boot menu with a fake backend on the current terminal (debugging).
package main

import (
	"context"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/bootmenu/tui"
	"github.com/ramboot/ramboot/loader"
)

type fb struct{}

func (fb) Prepare(ctx context.Context, e bootmenu.Entry, cmdline string, progress func(loader.Progress)) error {
	return nil
}
func (fb) LoadMenu(ctx context.Context, url string) (*bootmenu.Menu, error) { return nil, nil }
func (fb) Network() (string, []string)                                      { return "eth0", nil }
func (fb) Log() []string                                                    { return nil }

func main() {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		panic(err)
	}
	if len(os.Args) > 1 {
		w, h, ok := querySize(f)
		fmt.Fprintln(f, w, h, ok)
	}
	m := bootmenu.Builtin(bootmenu.BuiltinConfig{HasShell: true})
	m.Timeout = 30 * time.Second
	p := tea.NewProgram(tui.New(m, fb{}, tui.Options{}), tea.WithInput(f), tea.WithOutput(f), tea.WithoutSignalHandler(), tea.WithEnvironment([]string{"TERM=vt220"}), tea.WithWindowSize(80, 24))
	fm, err := p.Run()
	fmt.Println(err, fm.(tui.Model).Result())
}

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
