package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeUsage: the README's command reference is the CLI's own usage, so it cannot go stale.
func TestReadmeUsage(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "## Command reference")
	if !ok {
		t.Fatal("README has no command reference")
	}
	_, block, _ := strings.Cut(sec, "```\n")
	block, _, _ = strings.Cut(block, "```")
	_, stderr, _ := runArgs()
	var want []string
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if !strings.HasPrefix(l, "ramboot: usage") {
			want = append(want, l)
		}
	}
	if got := strings.TrimRight(block, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("README's usage:\n%s\nthe CLI's:\n%s", got, strings.Join(want, "\n"))
	}
}

// readmeCommand is a ramboot command named in the README: its flags, looked up by name.
func readmeCommand(name string) *cmdFlags {
	for _, c := range commands {
		if c.name == name {
			return c.flags()
		}
	}
	return nil
}

// readmeCode returns the README's code: each line of its fenced blocks, and each inline code
// span of the other lines, with the line number it is on.
func readmeCode(readme string) (blockLines, spans []readmeText) {
	inBlock := false
	for i, l := range strings.Split(readme, "\n") {
		if strings.HasPrefix(l, "```") {
			inBlock = !inBlock
			continue
		}
		if inBlock {
			blockLines = append(blockLines, readmeText{i + 1, l})
			continue
		}
		parts := strings.Split(l, "`")
		for j := 1; j < len(parts); j += 2 {
			spans = append(spans, readmeText{i + 1, parts[j]})
		}
	}
	return blockLines, spans
}

type readmeText struct {
	line int
	text string
}

// TestReadmeSynopses: a synopsis of a command in the README (a line of a code block starting
// "ramboot NAME [", with the indented lines that continue it) is the command's own, word for
// word; and wherever the README shows "ramboot NAME" with flags (code blocks, inline code),
// each flag is one of NAME's, followed by the argument name its --help gives when the README
// shows a placeholder (--mtime-clamp SECONDS, not EPOCH).
func TestReadmeSynopses(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blockLines, spans := readmeCode(string(b))

	synopses := 0
	for i := 0; i < len(blockLines); i++ {
		l := blockLines[i]
		words := strings.Fields(l.text)
		if len(words) < 3 || l.text != strings.TrimLeft(l.text, " ") || words[0] != "ramboot" || !strings.HasPrefix(words[2], "[") {
			continue
		}
		for i+1 < len(blockLines) && strings.HasPrefix(blockLines[i+1].text, " ") && !strings.HasPrefix(strings.TrimSpace(blockLines[i+1].text), "ramboot ") {
			i++
			words = append(words, strings.Fields(blockLines[i].text)...)
		}
		fs := readmeCommand(words[1])
		if fs == nil {
			t.Errorf("README line %d: a synopsis of ramboot %s, which is no command", l.line, words[1])
			continue
		}
		synopses++
		if got, want := strings.Join(words, " "), strings.Join(fs.synopsis(), " "); got != want {
			t.Errorf("README line %d: the synopsis\n\t%s\nis not the CLI's (ramboot %s --help)\n\t%s", l.line, got, words[1], want)
		}
	}
	if synopses == 0 {
		t.Error("no command synopsis found in the README's code blocks")
	}

	placeholder := regexp.MustCompile(`^[A-Z][A-Z0-9_]*([:/][A-Z][A-Z0-9_]*)*$`)
	trim := func(w string) string {
		w = strings.TrimLeft(w, "[(")
		return strings.TrimRight(strings.TrimSuffix(strings.TrimRight(w, ",;)"), "..."), "]")
	}
	for _, c := range append(blockLines, spans...) {
		words := strings.Fields(c.text)
		for i := 0; i+1 < len(words); i++ {
			if w := words[i]; w != "ramboot" && !strings.HasSuffix(w, "/ramboot") {
				continue
			}
			name := words[i+1]
			fs := readmeCommand(name)
			if fs == nil {
				continue // ramboot COMMAND, ramboot help, prose
			}
			for j := i + 2; j < len(words); j++ {
				w := trim(words[j])
				if strings.HasPrefix(w, "#") || w == "|" || w == ">" || w == "&&" || w == "ramboot" {
					break
				}
				if len(w) < 2 || w[0] != '-' || w == "--" {
					continue
				}
				flagName, _, _ := strings.Cut(strings.TrimLeft(w, "-"), "=")
				fl := fs.Lookup(flagName)
				if fl == nil || dashes(flagName) != strings.SplitN(w, "=", 2)[0] {
					t.Errorf("README line %d: %s in %q: ramboot %s has no such flag", c.line, w, c.text, name)
					continue
				}
				if j+1 < len(words) && !strings.Contains(w, "=") {
					if next := trim(words[j+1]); placeholder.MatchString(next) && argName(fl) != "" && next != argName(fl) {
						t.Errorf("README line %d: %s %s in %q: ramboot %s --help calls its argument %s", c.line, w, next, c.text, name, argName(fl))
					}
				}
			}
		}
	}
}

// TestLicence: the repository has a LICENSE (BSD-3-Clause, the ramboot authors), and the
// README says under which terms ramboot is published.
func TestLicence(t *testing.T) {
	lic, err := os.ReadFile("../../LICENSE")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"BSD 3-Clause License\n", "Copyright (c) 2026, The ramboot authors\n", "3. Neither the name of the copyright holder"} {
		if !strings.Contains(string(lic), want) {
			t.Errorf("LICENSE has no %q", want)
		}
	}
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n## Licence\n")
	if sec, _, _ = strings.Cut(sec, "\n## "); !ok || !strings.Contains(sec, "BSD 3-Clause") || !strings.Contains(sec, "(LICENSE)") {
		t.Errorf("README: no Licence section naming BSD 3-Clause and linking LICENSE: %q", sec)
	}
}
