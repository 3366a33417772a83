package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramboot/ramboot/internal/imageconv"
)

func TestImage(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "etc"), 0o755)
	os.WriteFile(filepath.Join(src, "etc/hostname"), []byte("ramby\n"), 0o644)
	os.WriteFile(filepath.Join(src, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	key := filepath.Join(t.TempDir(), "id.pub")
	os.WriteFile(key, []byte("ssh-ed25519 AAAATEST ops\n"), 0o644)
	out := filepath.Join(t.TempDir(), "rootfs.tar.zst")

	for _, tt := range []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "ok", args: []string{"dir:" + src, out, "--mtime-clamp", "1700000000"}},
		{name: "exists", args: []string{"dir:" + src, out}, wantErr: "output exists (use --force to replace it)"},
		{name: "force, rescue options", args: []string{"--force", "--ssh-key", key, "--root-password-empty", "--drop-modules", "dir:" + src, out}},
		{name: "bad source", args: []string{"rootfs", out}, wantErr: `bad source: "rootfs"`},
		{name: "bad extension", args: []string{"dir:" + src, out + ".zip"}, wantErr: "must end in .tar.zst"},
		{name: "bad clamp", args: []string{"--mtime-clamp", "yesterday", "dir:" + src, out}, wantErr: "want seconds since 1970"},
		{name: "missing key", args: []string{"--ssh-key", key + ".none", "dir:" + src, out}, wantErr: "ssh key: open"},
		{name: "usage", args: []string{"dir:" + src}, wantErr: "want SOURCE OUT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"image"}, tt.args...), &stdout, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr.String())
			}
			side, _ := os.ReadFile(out + ".sha256")
			if want := strings.Fields(stdout.String())[0] + "  rootfs.tar.zst\n"; string(side) != want {
				t.Errorf("stdout %q, %s.sha256 %q", stdout.String(), out, side)
			}
			if !strings.Contains(stderr.String(), " entries, ") {
				t.Errorf("no summary on stderr: %s", stderr.String())
			}
		})
	}
}

func TestImageLine(t *testing.T) {
	got := imageLine("rootfs.tar.zst", imageconv.Progress{Stage: imageconv.StageWriting, Done: 50 << 20, Total: 100 << 20}, 2e9, 10)
	if want := "rootfs.tar.zst [=====>    ]  50% 50.0 MiB/100.0 MiB 25.0 MiB/s writing"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	got = imageLine("r.tar", imageconv.Progress{Stage: imageconv.StageReading, Done: 3 << 20}, 0, 10)
	if want := "r.tar 3.0 MiB reading"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// TestImageFormatFileOut: --format is for a docker:// OUT; given with a file OUT (whose
// extension picks the compression) it is a usage error naming both, and nothing is written.
func TestImageFormatFileOut(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "hostname"), []byte("ramby\n"), 0o644)
	for _, format := range []string{"gzip", "zstd"} {
		t.Run(format, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "rootfs.tar.zst")
			_, stderr, err := runArgs("image", "--format", format, "dir:"+src, out)
			if code := exitCode(err); code != 2 {
				t.Errorf("exit code %d (error %v), want 2", code, err)
			}
			if err == nil || !strings.Contains(err.Error(), "--format "+format) || !strings.Contains(err.Error(), out) {
				t.Errorf("error %v, want it to name --format %s and %s", err, format, out)
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Errorf("%s was written (stderr %q)", out, stderr)
			}
		})
	}
}
