// Package bootbench measures how long ramboot takes to boot, stage by stage, so that boot time
// is a number people can track: `make bench-boot` boots Debian's cloud kernel with ramboot's
// initramfs in QEMU a few times (BenchmarkBoot, a benchmark so that `go test ./...` does not
// run it) and prints the median, minimum and maximum of every stage.
//
// The stages are the intervals between the boot report's events (internal/report: started,
// network, menu, chosen, fetch_start, fetch_done, extracted, switch_root), timed by the guest's
// clock, plus what the events cannot see, timed by the host's clock on the serial console: the
// kernel before /init, and the switch into the image until its init prints.
//
// The download, the decompression and the extraction overlap (the image is streamed): the
// events have no boundary between them, so fetch_done's stage is all three, and extracted's,
// right after it, is only the end of the load.
//
// This file is the arithmetic, tested by `make test`; the QEMU side is in the test file.
package bootbench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/report"
)

// Boot is what one boot measured.
type Boot struct {
	// Events are the boot report's events of this boot, as the server received them.
	Events []report.Event
	// Host-clock times since QEMU started, from the serial console: /init's first line, its
	// "switching to the new root" line, and the image's init's first line.
	InitStart, Switch, ImageInit time.Duration
}

// Span is one stage of one boot.
type Span struct {
	Name string // the event that ends it, or a host-clock stage (kernel, ...)
	What string // from what to what, for the table
	D    time.Duration
}

// Host-clock stages and the sums, named so that they cannot be taken for event types.
const (
	StageKernel  = "(kernel)"
	StageDHCP    = "(dhcp_ms)"
	StageToInit  = "(to image init)"
	StageInit    = "(/init total)"
	StageTotal   = "(total)"
	whatKernel   = "QEMU start → /init's first console line (host clock)"
	whatDHCP     = "the DHCP exchange, part of network (the event's dhcp_ms)"
	whatToInit   = "/init's \"switching to the new root\" → the image's init prints (host clock)"
	whatInit     = "started → switch_root (guest clock)"
	whatTotal    = "QEMU start → the image's init prints (host clock)"
	whatFetch    = "fetch_start → fetch_done: download, decompression and extraction, streamed together"
	whatExtract  = "fetch_done → extracted: the end of the load (the events do not split it from the fetch)"
	whatSwitch   = "extracted → switch_root: modules copied in, network config, hooks"
	whatNetwork  = "started → network: NIC drivers, link, DHCP"
	whatDefault  = "%s → %s"
	whatCmdline  = "network → chosen: the command line's image (no menu)"
	whatMenu     = "network → menu: the menu fetched and shown"
	whatChosen   = "menu → chosen: the entry chosen (timeout 0: at once)"
	whatFetchGap = "chosen → fetch_start"
)

// Spans turns one boot into its stages, in boot order: the host-clock kernel stage, one stage
// per event after started (named by that event; fetch_progress events are left out), the
// host-clock switch, and the sums. A boot that failed, or whose events are not those of a
// ramroot boot from started to switch_root, is an error.
func Spans(b Boot) ([]Span, error) {
	var evs []report.Event
	for _, e := range b.Events {
		switch e.Type {
		case report.FetchProgress:
			continue
		case report.Failure:
			return nil, fmt.Errorf("the boot failed in %s: %s", e.Step, e.Error)
		}
		evs = append(evs, e)
	}
	if len(evs) < 2 || evs[0].Type != report.Started || evs[len(evs)-1].Type != report.SwitchRoot {
		types := make([]string, len(evs))
		for i, e := range evs {
			types[i] = e.Type
		}
		return nil, fmt.Errorf("events %v: want started ... switch_root", types)
	}
	if b.InitStart <= 0 || b.Switch < b.InitStart || b.ImageInit < b.Switch {
		return nil, fmt.Errorf("console times out of order: /init %v, switch %v, image init %v", b.InitStart, b.Switch, b.ImageInit)
	}
	out := []Span{{StageKernel, whatKernel, b.InitStart}}
	for i := 1; i < len(evs); i++ {
		prev, e := evs[i-1], evs[i]
		d := e.Time.Sub(prev.Time)
		if d < 0 {
			return nil, fmt.Errorf("event %s at %v is before %s at %v", e.Type, e.Time, prev.Type, prev.Time)
		}
		out = append(out, Span{e.Type, what(prev.Type, e.Type), d})
		if e.Type == report.NetworkUp && e.DHCPms > 0 {
			out = append(out, Span{StageDHCP, whatDHCP, time.Duration(e.DHCPms) * time.Millisecond})
		}
	}
	out = append(out,
		Span{StageToInit, whatToInit, b.ImageInit - b.Switch},
		Span{StageInit, whatInit, evs[len(evs)-1].Time.Sub(evs[0].Time)},
		Span{StageTotal, whatTotal, b.ImageInit})
	return out, nil
}

// what describes the stage from event a to event b.
func what(a, b string) string {
	switch {
	case a == report.Started && b == report.NetworkUp:
		return whatNetwork
	case a == report.NetworkUp && b == report.MenuShown:
		return whatMenu
	case a == report.NetworkUp && b == report.EntryChosen:
		return whatCmdline
	case a == report.MenuShown && b == report.EntryChosen:
		return whatChosen
	case a == report.EntryChosen && b == report.FetchStart:
		return whatFetchGap
	case a == report.FetchStart && b == report.FetchDone:
		return whatFetch
	case a == report.FetchDone && b == report.Extracted:
		return whatExtract
	case a == report.Extracted && b == report.SwitchRoot:
		return whatSwitch
	}
	return fmt.Sprintf(whatDefault, a, b)
}

// Stat is one stage over every boot.
type Stat struct {
	Name, What       string
	Median, Min, Max time.Duration
	N                int // boots that had this stage
}

// Summarize gathers the stages of every boot: one Stat per stage name, in the order they first
// appear.
func Summarize(boots [][]Span) []Stat {
	var order []string
	by := map[string][]time.Duration{}
	what := map[string]string{}
	for _, spans := range boots {
		for _, s := range spans {
			if _, ok := by[s.Name]; !ok {
				order = append(order, s.Name)
				what[s.Name] = s.What
			}
			by[s.Name] = append(by[s.Name], s.D)
		}
	}
	out := make([]Stat, 0, len(order))
	for _, n := range order {
		ds := slices.Clone(by[n])
		slices.Sort(ds)
		out = append(out, Stat{Name: n, What: what[n], Median: Median(ds), Min: ds[0], Max: ds[len(ds)-1], N: len(ds)})
	}
	return out
}

// Median of sorted durations: the middle one, or the mean of the two middle ones.
func Median(sorted []time.Duration) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// errNoBoots is Table's error when there is nothing to print.
var errNoBoots = errors.New("no boots measured")

// Table writes the stats as a Markdown table, seconds with two decimals; a stage that not every
// boot had says in how many it was.
func Table(w io.Writer, stats []Stat, boots int) error {
	if boots == 0 || len(stats) == 0 {
		return errNoBoots
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "| stage | from → to | median s | min s | max s |\n|---|---|---|---|---|\n")
	for _, s := range stats {
		name := s.Name
		if s.N != boots {
			name += fmt.Sprintf(" (%d of %d boots)", s.N, boots)
		}
		fmt.Fprintf(&sb, "| %s | %s | %.2f | %.2f | %.2f |\n", name, s.What, s.Median.Seconds(), s.Min.Seconds(), s.Max.Seconds())
	}
	_, err := io.WriteString(w, sb.String())
	return err
}
