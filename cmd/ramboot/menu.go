package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/ramboot/ramboot/bootmenu"
)

func menuCheckFlags(base *string) *cmdFlags {
	fs := newFlags("menu check", "FILE", 1, "Validates a YAML menu or a pxelinux config and lists its entries.")
	fs.StringVar(base, "base", "", "resolve relative URLs as if the menu were served from this `URL` (default: FILE itself)")
	return fs
}

// runMenu runs menu's one subcommand, check.
func runMenu(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "check" {
		return runMenuCheck(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		menuCheckFlags(new(string)).printUsage(stdout)
		return flagHelp
	}
	menuCheckFlags(new(string)).printUsage(stderr)
	if len(args) == 0 {
		return fmt.Errorf("%w: want the subcommand check", errUsage)
	}
	return fmt.Errorf("%w: unknown subcommand %q (want check)", errUsage, args[0])
}

// runMenuCheck validates a menu as /init would and lists what it boots.
func runMenuCheck(_ context.Context, args []string, stdout, stderr io.Writer) error {
	var base string
	pos, err := menuCheckFlags(&base).parse(args, stdout, stderr)
	if err != nil {
		return err
	}
	file := pos[0]
	data, err := readMenuFile(file)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	opt := bootmenu.Options{Base: base, Include: localIncludes(base, abs)}
	if opt.Base == "" {
		opt.Base = abs
	}
	m, err := bootmenu.ParseWith(data, file, opt)
	if err != nil {
		return err
	}
	for _, w := range m.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	printMenu(stdout, m)
	return nil
}

// localIncludes reads pxelinux includes from beside the local copy of the menu: menu check
// fetches nothing over the network. An include resolved against base is mapped to the same
// place relative to file (base .../tftp/pxelinux.cfg/default, include .../tftp/common.cfg:
// file's grandparent directory).
func localIncludes(base, file string) func(string) ([]byte, error) {
	return func(ref string) ([]byte, error) {
		if u, err := url.Parse(ref); err == nil && u.Scheme == "file" {
			ref = u.Path
		}
		if base != "" && !strings.HasPrefix(ref, "/") {
			urlDir, localDir := base, filepath.ToSlash(file)
			for {
				urlDir, localDir = urlDir[:strings.LastIndex(urlDir, "/")+1], localDir[:strings.LastIndex(localDir, "/")+1]
				if rest, ok := strings.CutPrefix(ref, urlDir); ok {
					ref = localDir + rest
					break
				}
				if len(urlDir) <= 1 || len(localDir) <= 1 {
					return nil, fmt.Errorf("%s is not beside %s", ref, base)
				}
				urlDir, localDir = urlDir[:len(urlDir)-1], localDir[:len(localDir)-1]
			}
		}
		if !strings.HasPrefix(ref, "/") {
			return nil, errors.New("menu check reads local includes only")
		}
		return readMenuFile(filepath.FromSlash(ref))
	}
}

// readMenuFile reads a local menu or include: a regular file of at most bootmenu.MaxMenuSize.
// A FIFO, a device (/dev/zero) or a directory is refused: a FIFO would block menu check in
// open(2) until a writer comes, a device could stream without end.
func readMenuFile(name string) ([]byte, error) {
	// Stat first, so that a device is not even opened; then open without blocking (a FIFO
	// put in the file's place meanwhile would wait for a writer; a regular file does not
	// care) and check what was opened.
	st, err := os.Stat(name)
	if err != nil {
		return nil, err
	}
	if err := wantRegular(name, st.Mode()); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, err
	}
	if err := wantRegular(name, st.Mode()); err != nil {
		return nil, err
	}
	data, err := bootmenu.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return data, nil
}

// wantRegular returns an error naming what name is unless it is a regular file.
func wantRegular(name string, m fs.FileMode) error {
	var what string
	switch {
	case m.IsRegular():
		return nil
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a FIFO"
	case m&fs.ModeDevice != 0:
		what = "a device"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	default:
		what = "a special file"
	}
	return fmt.Errorf("%s: %s, not a menu file", name, what)
}

func printMenu(w io.Writer, m *bootmenu.Menu) {
	fmt.Fprintf(w, "%s: %s menu\n", m.Source, m.Format)
	title := m.Title
	if title == "" {
		title = "(none)"
	}
	fmt.Fprintf(w, "title:   %s\n", title)
	def := m.Default
	if def == "" {
		def = "(none: the first bootable entry)"
		if e, ok := m.DefaultEntry(); ok {
			def = fmt.Sprintf("%s (the first bootable entry)", e.Name)
		}
	}
	fmt.Fprintf(w, "default: %s\n", def)
	fmt.Fprintf(w, "timeout: %s\n", describeTimeout(m.Timeout))
	fmt.Fprintf(w, "entries: %d\n", len(m.Entries))
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, e := range m.Entries {
		fmt.Fprintf(tw, "  %s\t%s\t%q\t%s\n", e.Name, e.Kind, e.Title, strings.Join(entryURLs(e), " "))
	}
	tw.Flush()
	// Each network: block, as the command line parameters it amounts to.
	var nets bool
	for _, e := range m.Entries {
		if e.Network != nil {
			if !nets {
				fmt.Fprintln(tw, "network:")
				nets = true
			}
			fmt.Fprintf(tw, "  %s\t%s\n", e.Name, strings.Join(e.Network.Params(), " "))
		}
	}
	tw.Flush()
	for line := range strings.Lines(buf.String()) {
		fmt.Fprintln(w, strings.TrimRight(line, " \n"))
	}
}

func describeTimeout(d time.Duration) string {
	switch {
	case d < 0:
		return "none (wait for a key)"
	case d == 0:
		return "0 (boot the default at once)"
	}
	return d.String()
}

// entryURLs lists what an entry fetches, with its command line last.
func entryURLs(e bootmenu.Entry) []string {
	var out []string
	file := func(f bootmenu.File) {
		s := f.URL
		if len(f.Mirrors) > 0 {
			s += " (mirrors: " + strings.Join(f.Mirrors, ", ") + ")"
		}
		if f.SHA256 != "" {
			s += " sha256:" + f.SHA256[:12] + "…"
		}
		out = append(out, s)
	}
	switch {
	case e.Ramroot != nil:
		file(e.Ramroot.File)
	case e.Kexec != nil:
		file(e.Kexec.Kernel)
		for _, f := range e.Kexec.Initrds {
			file(f)
		}
	case e.Menu != "":
		out = append(out, e.Menu)
	}
	if c := e.Cmdline(); c != "" {
		out = append(out, fmt.Sprintf("cmdline %q", c))
	}
	return out
}
