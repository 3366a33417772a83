package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/bootmenu/tui"
	"github.com/ramboot/ramboot/internal/layout"
	"github.com/ramboot/ramboot/loader"
)

// menu finds the menu, shows it (or boots its default at once when its timeout is 0), and
// carries out the choice. It returns only when a boot failed or the operator left the menu
// for a shell.
func (b *booter) menu(ctx context.Context) error {
	m := b.findMenu(ctx)
	if err := m.Override(b.cfg.Default, b.cfg.Timeout); err != nil {
		b.logf("%v", err)
	}
	if m.Timeout == 0 && !b.menuAfterFailure {
		// Unattended: no UI blocks the boot.
		e, ok := m.DefaultEntry()
		if !ok {
			return errors.New("menu has no entry to boot")
		}
		return b.act(ctx, *e, e.Cmdline())
	}
	if b.menuAfterFailure {
		m.Timeout = -1 // the operator decides after a failure
	}
	for {
		res := b.showMenu(m)
		switch res.Action {
		case tui.ActionBoot:
			if b.ready == nil {
				return errors.New("menu: nothing prepared")
			}
			return b.ready()
		case tui.ActionShell:
			shell(b.logf)
			m.Timeout = -1 // back from the shell: no countdown
			continue
		case tui.ActionReboot:
			halt(unix.LINUX_REBOOT_CMD_RESTART)
		case tui.ActionPoweroff:
			halt(unix.LINUX_REBOOT_CMD_POWER_OFF)
		}
		return errors.New("menu closed without a choice")
	}
}

// act boots an entry without the UI (a menu with timeout 0).
func (b *booter) act(ctx context.Context, e bootmenu.Entry, cmdline string) error {
	switch e.Kind {
	case bootmenu.KindShell:
		shell(b.logf)
		return errors.New("back from the shell")
	case bootmenu.KindReboot:
		halt(unix.LINUX_REBOOT_CMD_RESTART)
	case bootmenu.KindPoweroff:
		halt(unix.LINUX_REBOOT_CMD_POWER_OFF)
	case bootmenu.KindMenu:
		return fmt.Errorf("%s: a sub-menu cannot be the unattended default", e.Name)
	}
	b.logf("booting %s", e.Name)
	exec, err := b.prepare(ctx, entryPlan(e, cmdline), consoleProgress(b.logf))
	if err != nil {
		return err
	}
	return exec()
}

// entryPlan turns a menu entry (with its possibly edited command line) into a plan.
func entryPlan(e bootmenu.Entry, cmdline string) plan {
	p := plan{Name: e.Name}
	switch {
	case e.Ramroot != nil:
		r := e.Ramroot
		p.Ramroot = &ramrootPlan{Image: image{URLs: r.URLs(), SHA256: r.SHA256}, Size: r.Size, Init: r.Init, Args: strings.Fields(cmdline)}
	case e.Kexec != nil:
		k := e.Kexec
		kp := &kexecPlan{Kernel: image{URLs: k.Kernel.URLs(), SHA256: k.Kernel.SHA256}, Cmdline: cmdline, IPAppend: k.IPAppend}
		for _, f := range k.Initrds {
			kp.Initrds = append(kp.Initrds, image{URLs: f.URLs(), SHA256: f.SHA256})
		}
		p.Kexec = kp
	}
	return p
}

// findMenu takes the first menu found: ramboot.menu=, the DHCP lease (pxelinux options 209/210,
// or a boot file name ending in .yaml/.yml/.cfg), the one embedded in the initramfs, the
// built-in one. A source that fails is logged and the next one is tried.
func (b *booter) findMenu(ctx context.Context) *bootmenu.Menu {
	var sources []string
	if b.cfg.Menu != "" {
		sources = append(sources, b.cfg.Menu)
	}
	if u := leaseMenuURL(b); u != "" {
		sources = append(sources, u)
	}
	for _, ext := range []string{".yaml", ".yml", ".cfg"} {
		if _, err := os.Stat(layout.Menu + ext); err == nil {
			sources = append(sources, layout.Menu+ext)
		}
	}
	for _, src := range sources {
		m, err := b.loadMenu(ctx, src)
		if err == nil {
			b.logf("menu from %s: %d entries", src, len(m.Entries))
			return m
		}
		b.logf("menu %s: %v", src, err)
	}
	c := b.cfg
	return bootmenu.Builtin(bootmenu.BuiltinConfig{Ramroot: c.Ramroot, SHA256: c.SHA256, Size: c.Size, Init: c.Init, HasShell: hasShell()})
}

// leaseMenuURL derives a menu URL from the DHCP lease.
func leaseMenuURL(b *booter) string {
	l := b.lease
	if l == nil || !l.DHCP {
		return ""
	}
	conf, prefix := string(l.Options[209]), string(l.Options[210])
	if conf != "" {
		if u, err := url.Parse(conf); err == nil && u.IsAbs() {
			return conf
		}
		if p, err := url.Parse(prefix); err == nil && p.IsAbs() {
			return p.JoinPath(conf).String()
		}
	}
	bf := l.BootFile
	if ext := path.Ext(bf); ext == ".yaml" || ext == ".yml" || ext == ".cfg" {
		if u, err := url.Parse(bf); err == nil && u.IsAbs() {
			return bf
		}
		if l.Server.IsValid() {
			return "http://" + l.Server.String() + "/" + strings.TrimPrefix(bf, "/")
		}
	}
	return ""
}

// loadMenu fetches (or reads) and parses a menu.
func (b *booter) loadMenu(ctx context.Context, src string) (*bootmenu.Menu, error) {
	var data []byte
	var err error
	if strings.Contains(src, "://") && !strings.HasPrefix(src, "file://") {
		dst := filepath.Join("/tmp", "menu-"+fmt.Sprint(time.Now().UnixNano()))
		defer os.Remove(dst)
		if _, err = loader.Download(ctx, dst, []string{src}, loader.Options{Fetcher: b.fetcher(), Logf: b.logf}); err != nil {
			return nil, err
		}
		data, err = os.ReadFile(dst)
	} else {
		data, err = os.ReadFile(strings.TrimPrefix(src, "file://"))
	}
	if err != nil {
		return nil, err
	}
	return bootmenu.Parse(data, src)
}

// showMenu runs the menu on every active console; the first console where a key is pressed
// takes control, the others close. Logs go to the menu's log view meanwhile, not the screen.
func (b *booter) showMenu(m *bootmenu.Menu) tui.Result {
	b.logger.Quiet = true
	defer func() { b.logger.Quiet = false }()
	// Kernel messages (a link coming up, say) would scroll the menu's screen away under it:
	// keep all but emergencies off the console while the menu owns it; dmesg still has them.
	if old, err := os.ReadFile("/proc/sys/kernel/printk"); err == nil {
		if f := strings.Fields(string(old)); len(f) > 0 {
			os.WriteFile("/proc/sys/kernel/printk", []byte("1"), 0)
			defer os.WriteFile("/proc/sys/kernel/printk", []byte(f[0]), 0)
		}
	}
	names := activeConsoles()
	var (
		mu     sync.Mutex
		owner  = -1
		progs  []*tea.Program
		files  []*os.File
		quitAt = make(chan int, 1)
	)
	backend := &backend{b: b}
	for _, n := range names {
		f, err := os.OpenFile("/dev/"+n, os.O_RDWR, 0)
		if err != nil {
			b.logf("console %s: %v", n, err)
			continue
		}
		i := len(progs)
		w, h := consoleSize(f)
		model := tui.New(m, backend, tui.Options{Width: w, Height: h, Idle: b.cfg.Idle, Claim: func() bool {
			mu.Lock()
			defer mu.Unlock()
			if owner == -1 {
				owner = i
				quitAt <- i
			}
			return owner == i
		}})
		termName := "vt220"
		if strings.HasPrefix(n, "tty") && !strings.HasPrefix(n, "ttyS") && !strings.HasPrefix(n, "ttyAMA") {
			termName = "linux"
		}
		progs = append(progs, tea.NewProgram(model, tea.WithInput(f), tea.WithOutput(f), tea.WithoutSignalHandler(),
			tea.WithEnvironment([]string{"TERM=" + termName}), tea.WithWindowSize(w, h)))
		files = append(files, f)
	}
	if len(progs) == 0 {
		b.logf("no console to show the menu on")
		return tui.Result{}
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
				b.logf("menu on %s: %v", names[i], err)
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
		return results[owner]
	}
	return tui.Result{}
}

// activeConsoles lists the kernel's consoles (tty0 and ttyS0, say); /dev/console alone when
// sysfs does not say.
func activeConsoles() []string {
	b, err := os.ReadFile("/sys/class/tty/console/active")
	if err != nil || len(strings.Fields(string(b))) == 0 {
		return []string{"console"}
	}
	return strings.Fields(string(b))
}

// consoleSize is the terminal's size: the kernel's idea when it has one (VGA), else the
// terminal's answer to a cursor-position query (a serial terminal emulator), else 80x24. The
// result is set on the tty so every later reader agrees.
func consoleSize(f *os.File) (int, int) {
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

// backend is the menu's view of /init.
type backend struct{ b *booter }

func (k *backend) Prepare(ctx context.Context, e bootmenu.Entry, cmdline string, progress func(loader.Progress)) error {
	k.b.ready = nil
	exec, err := k.b.prepare(ctx, entryPlan(e, cmdline), progress)
	if err != nil {
		return err
	}
	k.b.ready = exec
	return nil
}

func (k *backend) LoadMenu(ctx context.Context, url string) (*bootmenu.Menu, error) {
	return k.b.loadMenu(ctx, url)
}

func (k *backend) Network() (string, []string) {
	l := k.b.lease
	if l == nil {
		return "no network", nil
	}
	status := fmt.Sprintf("%s %s %s", l.Iface, l.MAC, l.Addr)
	if l.Server.IsValid() {
		status += " server " + l.Server.String()
	}
	how := "static (ip=)"
	if l.DHCP {
		how = "DHCP"
	}
	d := []string{
		"interface  " + l.Iface,
		"MAC        " + l.MAC.String(),
		"address    " + l.Addr.String() + " by " + how,
	}
	if l.Gateway.IsValid() {
		d = append(d, "gateway    "+l.Gateway.String())
	}
	for _, r := range l.Routes {
		d = append(d, "route      "+r.String())
	}
	for _, s := range l.DNS {
		d = append(d, "DNS        "+s.String())
	}
	if len(l.Search) > 0 {
		d = append(d, "search     "+strings.Join(l.Search, " "))
	}
	if l.Server.IsValid() {
		d = append(d, "server     "+l.Server.String())
	}
	if l.Hostname != "" {
		d = append(d, "hostname   "+l.Hostname)
	}
	if l.BootFile != "" {
		d = append(d, "boot file  "+l.BootFile)
	}
	return status, d
}

func (k *backend) Log() []string { return k.b.logs.lines() }

// ring keeps the last n log lines for the menu's log view.
type ring struct {
	mu  sync.Mutex
	buf []string
	n   int
}

func newRing(n int) *ring { return &ring{n: n} }

func (r *ring) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, line)
	if len(r.buf) > r.n {
		r.buf = r.buf[len(r.buf)-r.n:]
	}
}

func (r *ring) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.buf...)
}
