package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
)

var flagHelp = flag.ErrHelp

// multiFlag collects a repeatable flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// cmdFlags is a subcommand's flag set. Its usage is built from the flags themselves, so that
// it lists every one of them, as operators type them: --name (one dash for one letter, -o).
// A flag's argument is named by the first `back-quoted` word of its usage text (flag's
// convention), else by its type.
type cmdFlags struct {
	*flag.FlagSet
	name     string   // "fetch", "menu check"
	operands string   // "URL DIR"
	nargs    int      // how many operands
	about    []string // lines shown after the usage line in --help
	required map[string]bool
}

func newFlags(name, operands string, nargs int, about ...string) *cmdFlags {
	f := &cmdFlags{
		FlagSet: flag.NewFlagSet("ramboot "+name, flag.ContinueOnError),
		name:    name, operands: operands, nargs: nargs, about: about,
		required: map[string]bool{},
	}
	// The flag package calls Usage on -h and on a bad flag; parse prints it instead, to
	// stdout or stderr as the case is.
	f.FlagSet.Usage = func() {}
	return f
}

// require marks a flag as one the synopsis shows without brackets (parse does not check it).
func (f *cmdFlags) require(name string) { f.required[name] = true }

func dashes(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// argName is what the synopsis and help call a flag's argument: "" for a bool flag.
func argName(fl *flag.Flag) string {
	name, _ := flag.UnquoteUsage(fl)
	switch name {
	case "":
		return ""
	case "int", "uint", "float":
		return "N"
	}
	return strings.ToUpper(name)
}

func repeatable(fl *flag.Flag) bool {
	_, ok := fl.Value.(*multiFlag)
	return ok
}

// synopsis is "ramboot fetch [--attempts N] ... [--mirror URL]... URL DIR", as words.
func (f *cmdFlags) synopsis() []string {
	words := []string{"ramboot", f.name}
	f.VisitAll(func(fl *flag.Flag) {
		w := dashes(fl.Name)
		if a := argName(fl); a != "" {
			w += " " + a
		}
		if !f.required[fl.Name] {
			w = "[" + w + "]"
		}
		if repeatable(fl) {
			w += "..."
		}
		words = append(words, w)
	})
	if f.operands != "" {
		words = append(words, f.operands)
	}
	return words
}

// wrapWords joins words into lines of at most width columns (a longer word stands alone),
// continuation lines indented by indent.
func wrapWords(words []string, width int, indent string) string {
	var b strings.Builder
	col := 0
	for i, w := range words {
		switch {
		case i == 0:
		case col+1+len(w) > width:
			b.WriteString("\n" + indent)
			col = len(indent)
		default:
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

// usageLine is the synopsis wrapped to 80 columns after prefix ("usage: ", "  "), continued
// under the first flag.
func (f *cmdFlags) usageLine(prefix string) string {
	words := f.synopsis()
	words[0] = prefix + words[0]
	indent := strings.Repeat(" ", len(prefix)+len("ramboot ")+len(f.name)+1)
	return wrapWords(words, 80, indent)
}

// printUsage writes the usage line, the about lines, and every flag with its help.
func (f *cmdFlags) printUsage(w io.Writer) {
	fmt.Fprintln(w, f.usageLine("usage: "))
	for _, s := range f.about {
		fmt.Fprintln(w, s)
	}
	f.VisitAll(func(fl *flag.Flag) {
		_, help := flag.UnquoteUsage(fl)
		head := "  " + dashes(fl.Name)
		if a := argName(fl); a != "" {
			head += " " + a
		}
		if !isZero(fl) {
			if t := reflect.TypeOf(fl.Value); t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.String {
				help += fmt.Sprintf(" (default %q)", fl.DefValue)
			} else {
				help += fmt.Sprintf(" (default %s)", fl.DefValue)
			}
		}
		fmt.Fprintf(w, "%s\n    \t%s\n", head, strings.ReplaceAll(help, "\n", "\n    \t"))
	})
}

// isZero reports whether a flag's default is its type's zero value (which help does not
// show), as the flag package decides it.
func isZero(fl *flag.Flag) bool {
	t := reflect.TypeOf(fl.Value)
	if t.Kind() != reflect.Pointer {
		return fl.DefValue == ""
	}
	z, ok := reflect.New(t.Elem()).Interface().(flag.Value)
	if !ok {
		return fl.DefValue == ""
	}
	return fl.DefValue == z.String()
}

// parse parses flags that may stand before, between or after the operands (operators write
// `ramboot fetch URL DIR --sha256 X` as often as the other way) and checks the operands'
// number. -h or --help prints the usage on stdout and returns flagHelp; a bad flag or a wrong
// number of operands prints it on stderr and returns an errUsage.
func (f *cmdFlags) parse(args []string, stdout, stderr io.Writer) ([]string, error) {
	f.SetOutput(io.Discard) // its error is returned, and printed once

	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage(stdout)
				return nil, flagHelp
			}
			f.printUsage(stderr)
			return nil, fmt.Errorf("%w: %w", errUsage, err)
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) != f.nargs {
		f.printUsage(stderr)
		want := f.operands
		if f.nargs == 0 {
			want = "no arguments besides flags"
		}
		return nil, fmt.Errorf("%w: want %s, got %d argument(s)", errUsage, want, len(pos))
	}
	return pos, nil
}
