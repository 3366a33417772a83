package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ramboot/ramboot/internal/imageconv"
	"github.com/ramboot/ramboot/loader"
)

// TestFitProgress: the redrawn line never reaches a terminal's last column (an 80-column
// terminal wrapped the 88-column line at every redraw); it gives up the bar, then the ETA and
// rate, then the name's tail, and always keeps the percentage and the stage.
func TestFitProgress(t *testing.T) {
	p := loader.Progress{Stage: loader.StageFetching, Read: 512 << 20, Total: 1 << 30, Rate: 10 << 20}
	name := "debian-12-rescue-amd64.tar.zst"
	for cols := 20; cols <= 200; cols++ {
		got := fitProgress(name, p, cols)
		if n := utf8.RuneCountInString(got); n >= cols {
			t.Errorf("%d columns: %d-column line %q", cols, n, got)
		}
		if cols >= 40 && (!strings.Contains(got, " 50% ") || !strings.HasSuffix(got, " fetching")) {
			t.Errorf("%d columns: %q lacks the percentage or the stage", cols, got)
		}
	}
	for _, tt := range []struct {
		cols int
		want string
	}{
		{200, name + " [===============>              ]  50% 512.0 MiB/1.0 GiB 10.0 MiB/s ETA 0:51 fetching"},
		{100, name + " [=======>      ]  50% 512.0 MiB/1.0 GiB 10.0 MiB/s ETA 0:51 fetching"},
		{80, name + "  50% 512.0 MiB/1.0 GiB 10.0 MiB/s fetching"},
		{70, name + "  50% 512.0 MiB/1.0 GiB fetching"},
		{45, "debian-12-r…  50% 512.0 MiB/1.0 GiB fetching"},
		{40, "debian…  50% 512.0 MiB/1.0 GiB fetching"},
	} {
		if got := fitProgress(name, p, tt.cols); got != tt.want {
			t.Errorf("%d columns:\ngot  %q\nwant %q", tt.cols, got, tt.want)
		}
	}
	p.Total = -1
	if got, want := fitProgress("x", p, 80), "x 512.0 MiB 10.0 MiB/s fetching"; got != want {
		t.Errorf("unknown total: got %q, want %q", got, want)
	}
	ip := imageconv.Progress{Stage: imageconv.StageWriting, Done: 50 << 20, Total: 100 << 20}
	if got := fitImageLine(name, ip, 2*time.Second, 80); utf8.RuneCountInString(got) >= 80 || !strings.HasSuffix(got, " writing") {
		t.Errorf("image line: %q", got)
	}
}

// TestBarLog: when stderr is not a terminal, fetch writes a line per stage and a progress
// line every logEvery, not one per update nor none until the end.
func TestBarLog(t *testing.T) {
	var buf bytes.Buffer
	b := newBar(&buf, "rootfs.tar")
	if b.cols != nil {
		t.Fatal("a buffer taken for a terminal")
	}
	now := time.Unix(1e9, 0)
	b.now = func() time.Time { return now }
	p := loader.Progress{Stage: loader.StageConnecting, URL: "http://h/rootfs.tar", Total: -1}
	for i := 0; i < 200; i++ { // 20 s of updates every 100 ms
		if i == 5 {
			p.Stage, p.Total = loader.StageFetching, 100<<20
		}
		p.Read = int64(i) << 19
		p.Rate = 5 << 20
		b.update(p)
		now = now.Add(100 * time.Millisecond)
	}
	b.finish()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{
		"rootfs.tar: connecting http://h/rootfs.tar",
		"rootfs.tar: fetching http://h/rootfs.tar",
		"rootfs.tar  28% 27.5 MiB/100.0 MiB 5.0 MiB/s ETA 0:15 fetching", // 5 s after fetching began
		"rootfs.tar  52% 52.5 MiB/100.0 MiB 5.0 MiB/s ETA 0:10 fetching",
		"rootfs.tar  78% 77.5 MiB/100.0 MiB 5.0 MiB/s ETA 0:05 fetching",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if strings.Contains(buf.String(), "\r") {
		t.Error("carriage returns in a log")
	}
}
