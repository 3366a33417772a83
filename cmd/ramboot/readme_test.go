package main

import (
	"os"
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
