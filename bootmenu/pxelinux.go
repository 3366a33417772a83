package bootmenu

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// ErrInclude is returned (wrapped) for a pxelinux include when no Options.Include is given.
var ErrInclude = errors.New("include is not supported without a resolver")

// maxIncludeDepth bounds nested pxelinux includes (a config including itself), maxIncludes
// their number (a config including itself twice per level).
const (
	maxIncludeDepth = 8
	maxIncludes     = 64
)

// ParsePXELinux imports a pxelinux/syslinux config: labels with a Linux kernel become kexec
// entries, reboot.c32 and poweroff.c32 power actions, `config FILE` and menu.c32 FILE
// sub-menus. localboot and other com32 modules are skipped with a warning (Menu.Warnings).
// Kernel and initrd paths resolve as lpxelinux resolves them: relative to the directory of
// source minus a trailing pxelinux.cfg/, and "/path" or "::path" relative to the server's root.
// An include is an error (ErrInclude); ParseWith takes a callback to fetch includes.
//
// Understood: default, ontimeout, ui, prompt, timeout (tenths of a second), menu title,
// menu label, menu default, menu include, label, kernel/linux, initrd (a comma-separated
// list), append (initrd= in it is honoured and removed; "append -" clears the global one),
// ipappend/sysappend (1: ip= of the lease, 2: BOOTIF=), localboot, config, com32, include,
// text ... endtext. Keywords are case-insensitive, labels are not; other keywords are ignored.
func ParsePXELinux(data []byte, source string) (*Menu, error) {
	return parsePXELinux(data, source, Options{})
}

func parsePXELinux(data []byte, source string, opt Options) (*Menu, error) {
	base := source
	if opt.Base != "" {
		base = opt.Base
	}
	p := &pxeParser{res: pxelinuxResolver(base), include: opt.Include}
	if err := p.parse(data, source, 0); err != nil {
		return nil, err
	}
	m, err := p.menu(source)
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// pxeLabel is a label as written, before it becomes an entry.
type pxeLabel struct {
	name, src  string
	line       int
	title      string
	kernel     string // file of kernel/linux/com32/...
	kernelArgs string // what follows the file on the kernel line
	kernelKW   string // the keyword that set kernel: kernel, linux, com32, pxe, ...
	kernelLine int
	initrd     string
	hasInitrd  bool
	initrdLine int
	append     string
	hasAppend  bool
	appendLine int
	ipappend   int
	hasIPApp   bool
	localboot  bool
	config     string
	configLine int
}

type pxeParser struct {
	res      resolver
	include  func(string) ([]byte, error)
	included int

	labels []*pxeLabel
	cur    *pxeLabel

	title          string
	menuDepth      int
	def, ontimeout pxeRef
	menuDefault    *pxeLabel
	hasUI, prompt  bool
	timeout        int
	hasTimeout     bool
	globalAppend   string
	globalIPApp    int
	warnings       []string
}

// pxeRef is a default or ontimeout line: a label, or a kernel with its command line.
type pxeRef struct {
	arg, src string
	line     int
}

func (p *pxeParser) parse(data []byte, src string, depth int) error {
	inText := false
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.ReplaceAll(strings.TrimSuffix(line, "\r"), "\t", " "))
		kw, arg, _ := strings.Cut(line, " ")
		kw, arg = strings.ToLower(kw), strings.TrimSpace(arg)
		if inText {
			inText = kw != "endtext"
			continue
		}
		if kw == "" || strings.HasPrefix(kw, "#") {
			continue
		}
		lerr := func(field string, err error) error {
			var inner *Error
			if errors.As(err, &inner) {
				return err // placed in an included file already
			}
			e := &Error{Source: src, Line: n, Field: field, Err: err}
			if p.cur != nil {
				e.Entry = "label " + p.cur.name
			}
			return e
		}
		switch kw {
		case "text":
			inText = true
		case "default":
			p.def = pxeRef{arg, src, n}
		case "ontimeout":
			p.ontimeout = pxeRef{arg, src, n}
		case "ui":
			p.hasUI = true
		case "prompt":
			p.prompt = arg != "0" && arg != ""
		case "timeout":
			t, err := strconv.Atoi(arg)
			if err != nil || t < 0 || t > maxTimeout*10 {
				return lerr("timeout", fmt.Errorf("%q is not a number of tenths of a second", arg))
			}
			p.timeout, p.hasTimeout = t, true
		case "label":
			if arg == "" {
				return lerr("label", errors.New("missing name"))
			}
			p.cur = &pxeLabel{name: arg, src: src, line: n}
			p.labels = append(p.labels, p.cur)
		case "menu":
			sub, rest, _ := strings.Cut(arg, " ")
			rest = strings.TrimSpace(rest)
			switch strings.ToLower(sub) {
			case "title":
				if p.title == "" && p.menuDepth == 0 {
					p.title = rest
				}
			case "label":
				if p.cur != nil {
					p.cur.title = strings.ReplaceAll(rest, "^", "")
				}
			case "default":
				if p.cur != nil {
					p.menuDefault = p.cur
				}
			case "begin":
				p.menuDepth++
			case "end":
				p.menuDepth = max(0, p.menuDepth-1)
			case "include":
				if err := p.includeFile(rest, depth); err != nil {
					return lerr("menu include", err)
				}
			}
		case "include":
			if err := p.includeFile(arg, depth); err != nil {
				return lerr("include", err)
			}
		case "append":
			if p.cur == nil {
				p.globalAppend = arg
				break
			}
			p.cur.append, p.cur.hasAppend, p.cur.appendLine = arg, true, n
			if arg == "-" {
				p.cur.append = ""
			}
		case "ipappend", "sysappend":
			v, err := strconv.ParseUint(arg, 0, 32)
			if err != nil {
				return lerr(kw, fmt.Errorf("%q is not a number", arg))
			}
			if p.cur == nil {
				p.globalIPApp = int(v)
				break
			}
			p.cur.ipappend, p.cur.hasIPApp = int(v), true
		case "kernel", "linux", "com32", "comboot", "boot", "bss", "pxe", "fdimage":
			if p.cur == nil {
				p.warnf(src, n, "%s outside a label ignored", kw)
				break
			}
			file, args, _ := strings.Cut(arg, " ")
			p.cur.kernel, p.cur.kernelArgs, p.cur.kernelKW, p.cur.kernelLine = file, strings.TrimSpace(args), kw, n
		case "initrd":
			if p.cur != nil {
				p.cur.initrd, p.cur.hasInitrd, p.cur.initrdLine = arg, true, n
			}
		case "localboot":
			if p.cur != nil {
				p.cur.localboot = true
			}
		case "config":
			if p.cur != nil {
				file, _, _ := strings.Cut(arg, " ")
				p.cur.config, p.cur.configLine = file, n
			}
		}
	}
	return nil
}

// includeFile reads an included config through the caller's resolver, inline as syslinux does.
func (p *pxeParser) includeFile(arg string, depth int) error {
	file, _, _ := strings.Cut(arg, " ")
	if file == "" {
		return errors.New("missing file")
	}
	if p.include == nil {
		return fmt.Errorf("%s: %w", file, ErrInclude)
	}
	if depth >= maxIncludeDepth {
		return fmt.Errorf("%s: includes nested more than %d deep", file, maxIncludeDepth)
	}
	if p.included++; p.included > maxIncludes {
		return fmt.Errorf("%s: more than %d includes", file, maxIncludes)
	}
	u, err := p.res.resolve(file)
	if err != nil {
		return err
	}
	data, err := p.include(u)
	if err == nil && len(data) > MaxMenuSize {
		err = ErrTooLarge
	}
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return p.parse(data, u, depth+1)
}

func (p *pxeParser) warnf(src string, line int, format string, a ...any) {
	p.warnings = append(p.warnings, fmt.Sprintf("%s:%d: ", src, line)+fmt.Sprintf(format, a...))
}

// menu turns the labels into entries, then picks the default and the timeout.
func (p *pxeParser) menu(source string) (*Menu, error) {
	m := &Menu{Title: sanitizeText(p.title), Timeout: -1, Source: source, Format: FormatPXELinux}
	names := make(map[string]bool)
	byLabel := make(map[*pxeLabel]string) // label → entry name, for the default
	add := func(l *pxeLabel) error {
		e, err := p.entry(l)
		if err != nil || e == nil {
			return err
		}
		e.Name = uniqueName(l.name, names)
		byLabel[l] = e.Name
		m.Entries = append(m.Entries, *e)
		return nil
	}
	for _, l := range p.labels {
		if err := add(l); err != nil {
			return nil, err
		}
	}

	// The default: what boots on timeout (ontimeout), else the highlighted entry (menu
	// default), else default. default and ontimeout name a label, a com32 UI (menu.c32), or
	// a kernel to boot with the rest of the line as its command line.
	ref := func(r pxeRef) (*pxeLabel, error) {
		file, args, _ := strings.Cut(r.arg, " ")
		switch {
		case file == "":
			return nil, nil
		case isCom32(file):
			p.hasUI = true
			return nil, nil
		}
		if l := p.label(file); l != nil {
			return l, nil
		}
		l := &pxeLabel{name: file, src: r.src, line: r.line, kernel: file, kernelKW: "kernel", kernelLine: r.line}
		if args = strings.TrimSpace(args); args != "" {
			l.append, l.hasAppend, l.appendLine = args, true, r.line
		}
		return l, add(l)
	}
	def, err := ref(p.def)
	if err != nil {
		return nil, err
	}
	onTimeout, err := ref(p.ontimeout)
	if err != nil {
		return nil, err
	}
	for _, l := range []*pxeLabel{onTimeout, p.menuDefault, def} {
		if l == nil {
			continue
		}
		if name, ok := byLabel[l]; ok {
			m.Default = name
			break
		}
		p.warnf(l.src, l.line, "label %s is skipped, so not the default", l.name)
	}

	// syslinux: timeout 0 waits for ever; without a timeout, a prompt or a menu it boots the
	// default at once.
	switch {
	case p.hasTimeout && p.timeout > 0:
		m.Timeout = time.Duration(p.timeout) * 100 * time.Millisecond
	case !p.hasTimeout && !p.hasUI && !p.prompt && m.Default != "":
		m.Timeout = 0
	}
	m.Warnings = p.warnings
	return m, nil
}

// label finds a label by name, exactly, else ignoring case.
func (p *pxeParser) label(name string) *pxeLabel {
	for _, l := range p.labels {
		if l.name == name {
			return l
		}
	}
	for _, l := range p.labels {
		if strings.EqualFold(l.name, name) {
			return l
		}
	}
	return nil
}

// notLinux reports whether syslinux's KERNEL would boot the file as something else than a
// Linux kernel, going by its extension (LINUX always boots a Linux kernel).
func notLinux(base string) bool {
	for _, ext := range []string{".0", ".com", ".cbt", ".bss", ".bs", ".bin", ".img"} {
		if strings.HasSuffix(base, ext) {
			return true
		}
	}
	return false
}

func isCom32(file string) bool {
	return strings.HasSuffix(strings.ToLower(file), ".c32")
}

// entry converts a label; nil (with a warning) for what ramboot cannot boot.
func (p *pxeParser) entry(l *pxeLabel) (*Entry, error) {
	e := &Entry{Title: sanitizeText(l.title), Line: l.line}
	if e.Title == "" {
		e.Title = sanitizeText(l.name)
	}
	ctx := "label " + l.name
	resolve := func(ref, field string, line int) (string, error) {
		u, err := p.res.resolve(ref)
		if err == nil {
			err = checkURL(u)
		}
		if err != nil {
			return "", &Error{Source: l.src, Line: line, Entry: ctx, Field: field, Err: err}
		}
		return u, nil
	}
	appendArg := p.globalAppend
	if l.hasAppend {
		appendArg = l.append
	}
	base := strings.ToLower(path.Base(l.kernel))
	switch {
	case l.localboot:
		p.warnf(l.src, l.line, "label %s: localboot is not supported; skipped", l.name)
		return nil, nil
	case l.config != "":
		u, err := resolve(l.config, "config", l.configLine)
		e.Kind, e.Menu = KindMenu, u
		return e, err
	case l.kernel == "":
		p.warnf(l.src, l.line, "label %s: no kernel; skipped", l.name)
		return nil, nil
	case l.kernelKW == "com32" || isCom32(l.kernel):
		switch base {
		case "reboot.c32":
			e.Kind = KindReboot
			return e, nil
		case "poweroff.c32":
			e.Kind = KindPoweroff
			return e, nil
		case "menu.c32", "vesamenu.c32":
			if file, _, _ := strings.Cut(strings.TrimSpace(l.kernelArgs+" "+appendArg), " "); file != "" {
				u, err := resolve(file, "append", max(l.appendLine, l.kernelLine))
				e.Kind, e.Menu = KindMenu, u
				return e, err
			}
		}
		p.warnf(l.src, l.kernelLine, "label %s: com32 module %s is not supported; skipped", l.name, l.kernel)
		return nil, nil
	case l.kernelKW != "kernel" && l.kernelKW != "linux", l.kernelKW == "kernel" && notLinux(base):
		p.warnf(l.src, l.kernelLine, "label %s: %s %s is not a Linux kernel; skipped", l.name, l.kernelKW, l.kernel)
		return nil, nil
	}

	k := &Kexec{}
	var err error
	if k.Kernel.URL, err = resolve(l.kernel, "kernel", l.kernelLine); err != nil {
		return nil, err
	}
	cmdline, initrdArg := splitInitrd(strings.TrimSpace(l.kernelArgs + " " + appendArg))
	initrdLine := max(l.appendLine, l.kernelLine)
	if l.hasInitrd {
		// INITRD appends initrd= to the command line, and the last initrd= wins.
		initrdArg, initrdLine = l.initrd, l.initrdLine
	}
	for _, f := range strings.Split(initrdArg, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		u, err := resolve(f, "initrd", initrdLine)
		if err != nil {
			return nil, err
		}
		k.Initrds = append(k.Initrds, File{URL: u})
	}
	k.Cmdline = sanitizeText(cmdline)
	if err := checkCmdline(k.Cmdline); err != nil {
		return nil, &Error{Source: l.src, Line: max(l.appendLine, l.kernelLine), Entry: ctx, Field: "append", Err: err}
	}
	ipappend := p.globalIPApp
	if l.hasIPApp {
		ipappend = l.ipappend
	}
	k.IPAppend, k.BootIF = ipappend&1 != 0, ipappend&2 != 0
	e.Kind, e.Kexec = KindKexec, k
	return e, nil
}

// splitInitrd removes initrd= from a command line and returns the last one's value. Quoted
// parameters stay as written.
func splitInitrd(s string) (cmdline, initrd string) {
	var keep []string
	for _, w := range words(s) {
		if v, ok := strings.CutPrefix(w, "initrd="); ok {
			initrd = v
			continue
		}
		keep = append(keep, w)
	}
	return strings.Join(keep, " "), initrd
}

// words splits a command line at spaces outside double quotes, keeping the quotes.
func words(s string) []string {
	var out []string
	start, quoted := -1, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			quoted = !quoted
		}
		if c == ' ' && !quoted {
			if start >= 0 {
				out = append(out, s[start:i])
				start = -1
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, s[start:])
	}
	return out
}

// uniqueName makes a label an entry name: characters outside [A-Za-z0-9._-] become "-", and a
// name already taken gets "-2", "-3", ...
func uniqueName(label string, taken map[string]bool) string {
	b := []byte(label)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	name := string(b)
	if name == "" {
		name = "entry"
	}
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", string(b), i)
	}
	taken[name] = true
	return name
}

// sanitizeText makes imported text printable: invalid UTF-8 and control characters become
// spaces.
func sanitizeText(s string) string {
	s = strings.ToValidUTF8(s, " ")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r >= 0x7f && r < 0xa0 {
			return ' '
		}
		return r
	}, s)
}
