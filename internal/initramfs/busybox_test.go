package initramfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAppletNames(t *testing.T) {
	table := "\x7fELF...code...\x00[\x00[[\x00ash\x00cat\x00ls\x00sh\x00\x00more data"
	for _, tt := range []struct {
		name string
		in   string
		want []string
	}{
		{"table", table, []string{"[", "[[", "ash", "cat", "ls", "sh"}},
		{"no table", "\x7fELF no applets here", nil},
		{"unsorted", "\x00[\x00[[\x00sh\x00cat\x00\x00", nil},
		{"a slash", "\x00[\x00[[\x00bin/sh\x00sh\x00\x00", nil},
		{"no shell", "\x00[\x00[[\x00cat\x00ls\x00\x00", nil},
		{"runs off the end", "\x00[\x00[[\x00cat\x00sh", nil},
	} {
		if got := appletNames([]byte(tt.in)); !cmp.Equal(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestAppletNamesBusybox: the table of the host's busybox names what `busybox --list` does.
func TestAppletNamesBusybox(t *testing.T) {
	p, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox")
	}
	out, err := exec.Command(p, "--list").Output()
	if err != nil {
		t.Skip(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Fields(string(out)), appletNames(b)); diff != "" {
		t.Errorf("applets (-busybox --list +table):\n%s", diff)
	}
}

// TestBusyboxForeign: a busybox that cannot run here (another architecture's) has its applets
// linked from its table.
func TestBusyboxForeign(t *testing.T) {
	dir := t.TempDir()
	bb := filepath.Join(dir, "busybox")
	os.WriteFile(bb, []byte("not runnable\x00[\x00[[\x00cat\x00sh\x00\x00"), 0o755)
	init := filepath.Join(dir, "init")
	os.WriteFile(init, []byte("INIT"), 0o755)
	var buf bytes.Buffer
	if _, err := Write(&buf, Spec{Init: init, CA: init, Busybox: bb}); err != nil {
		t.Fatal(err)
	}
	recs := records(t, buf.Bytes())
	for _, a := range []string{"bin/sh", "bin/cat", "bin/[["} {
		if _, ok := recs[a]; !ok {
			t.Errorf("%s not linked", a)
		}
	}
}

func FuzzAppletNames(f *testing.F) {
	f.Add([]byte("\x00[\x00[[\x00ash\x00sh\x00\x00"))
	f.Add([]byte("\x00[\x00[[\x00sh"))
	f.Fuzz(func(t *testing.T, b []byte) {
		names := appletNames(b)
		for i, n := range names {
			if !appletName(n) || strings.Contains(n, "/") || i > 0 && n <= names[i-1] {
				t.Fatalf("bad applet %q in %q", n, names)
			}
		}
	})
}
