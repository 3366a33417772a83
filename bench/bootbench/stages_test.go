package bootbench

import (
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/report"
)

// events makes a boot's events: types at the given offsets (ms) from t0.
func events(pairs ...any) []report.Event {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var out []report.Event
	for i := 0; i < len(pairs); i += 2 {
		e := report.Event{Type: pairs[i].(string), Time: t0.Add(time.Duration(pairs[i+1].(int)) * time.Millisecond)}
		if e.Type == report.NetworkUp {
			e.DHCPms = 700
		}
		out = append(out, e)
	}
	return out
}

func menuBoot(fetchDone int) Boot {
	return Boot{
		Events: events(report.Started, 0, report.NetworkUp, 1000, report.MenuShown, 1300, report.EntryChosen, 1310,
			report.FetchStart, 1320, report.FetchProgress, 2000, report.FetchDone, fetchDone, report.Extracted, fetchDone+5,
			report.SwitchRoot, fetchDone+205),
		InitStart: 2 * time.Second, Switch: 2*time.Second + time.Duration(fetchDone+210)*time.Millisecond,
		ImageInit: 2*time.Second + time.Duration(fetchDone+710)*time.Millisecond,
	}
}

func TestSpans(t *testing.T) {
	spans, err := Spans(menuBoot(4320))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range spans {
		got = append(got, s.Name+"="+s.D.String())
	}
	want := []string{"(kernel)=2s", "network=1s", "(dhcp_ms)=700ms", "menu=300ms", "chosen=10ms", "fetch_start=10ms",
		"fetch_done=3s", "extracted=5ms", "switch_root=200ms", "(to image init)=500ms", "(/init total)=4.525s", "(total)=7.03s"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("spans:\n got %v\nwant %v", got, want)
	}
	// Every stage of the events adds up to /init's total: none is lost or counted twice.
	var sum time.Duration
	for _, s := range spans {
		if !strings.HasPrefix(s.Name, "(") {
			sum += s.D
		}
	}
	if sum != 4525*time.Millisecond {
		t.Errorf("event stages add up to %v, want /init's 4.525s", sum)
	}
}

func TestSpansCmdline(t *testing.T) {
	b := menuBoot(4320)
	b.Events = append(b.Events[:2:2], b.Events[3:]...) // no menu
	spans, err := Spans(b)
	if err != nil {
		t.Fatal(err)
	}
	if spans[3].Name != report.EntryChosen || spans[3].D != 310*time.Millisecond || !strings.Contains(spans[3].What, "command line") {
		t.Errorf("without a menu, chosen follows network: %+v", spans[3])
	}
}

func TestSpansErrors(t *testing.T) {
	failed := menuBoot(4000)
	failed.Events = append(failed.Events[:5:5], report.Event{Type: report.Failure, Step: "fetch_start", Error: "404"})
	cut := menuBoot(4000)
	cut.Events = cut.Events[:len(cut.Events)-1]
	backwards := menuBoot(4000)
	backwards.Events[2].Time = backwards.Events[0].Time.Add(-time.Second)
	console := menuBoot(4000)
	console.ImageInit = console.Switch - 1
	for name, b := range map[string]Boot{"failed": failed, "no switch_root": cut, "clock backwards": backwards, "console order": console} {
		if _, err := Spans(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{5}, 5},
		{[]time.Duration{1, 2, 9}, 2},
		{[]time.Duration{1, 2, 4, 9}, 3},
	} {
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestSummarizeTable(t *testing.T) {
	var boots [][]Span
	for _, done := range []int{4320, 9320, 3320} { // fetch_done stages of 3 s, 8 s, 2 s
		s, err := Spans(menuBoot(done))
		if err != nil {
			t.Fatal(err)
		}
		boots = append(boots, s)
	}
	// A fourth boot from the command line: no menu stage.
	b := menuBoot(5320)
	b.Events = append(b.Events[:2:2], b.Events[3:]...)
	s, err := Spans(b)
	if err != nil {
		t.Fatal(err)
	}
	boots = append(boots, s)
	stats := Summarize(boots)
	byName := map[string]Stat{}
	for _, st := range stats {
		byName[st.Name] = st
	}
	if f := byName[report.FetchDone]; f.Median != 3500*time.Millisecond || f.Min != 2*time.Second || f.Max != 8*time.Second || f.N != 4 {
		t.Errorf("fetch_done: %+v, want median 3.5s (of 2, 3, 4, 8), min 2s, max 8s, 4 boots", f)
	}
	if m := byName[report.MenuShown]; m.N != 3 {
		t.Errorf("menu: %+v, want 3 boots", m)
	}
	if stats[0].Name != StageKernel || stats[len(stats)-1].Name != StageTotal {
		t.Errorf("order: first %s, last %s", stats[0].Name, stats[len(stats)-1].Name)
	}
	var sb strings.Builder
	if err := Table(&sb, stats, 4); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, want := range []string{
		"| stage | from → to | median s | min s | max s |\n|---|---|---|---|---|\n| (kernel) |",
		"| fetch_done | fetch_start → fetch_done: download, decompression and extraction, streamed together | 3.50 | 2.00 | 8.00 |\n",
		"| menu (3 of 4 boots) | network → menu",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if err := Table(&sb, nil, 0); err == nil {
		t.Error("Table of no boots: no error")
	}
}
