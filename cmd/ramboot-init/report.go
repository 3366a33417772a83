package main

import (
	"errors"
	"net/http"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/layout"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/internal/report"
	"github.com/ramboot/ramboot/loader"
)

// bootJSON is where the booted system finds the whole report: /init's /run, which
// switch_root moves into the new root.
const bootJSON = "/run/ramboot/boot.json"

// newReporter records this boot's events from the start; they are sent once the network is up
// and a report URL is known (ramboot.report=, else a menu's report:).
func newReporter(c *cmdline.Config, raw string, logf func(string, ...any)) *report.Reporter {
	ca := ""
	if _, err := os.Stat(layout.CA); err == nil {
		ca = layout.CA
	}
	client, err := loader.NewClient(ca, 2*time.Second)
	if err != nil {
		client = &http.Client{}
	}
	r := report.New(report.Options{Client: client, File: bootJSON, Logf: logf})
	serial, uuid := report.ReadDMI("/sys/class/dmi/id")
	id := report.Identity{Serial: serial, UUID: uuid}
	if c.BootIF != nil {
		id.MAC = c.BootIF.String()
	}
	r.Identify(id)
	var u unix.Utsname
	unix.Uname(&u)
	r.Send(report.Event{Type: report.Started, Kernel: unix.ByteSliceToString(u.Release[:]), Cmdline: raw})
	return r
}

// reportNetwork says the boot NIC is up and starts sending to ramboot.report=.
func (s *state) reportNetwork(l *netup.Lease, took time.Duration) {
	s.rep.Identify(report.Identity{MAC: l.MAC.String(), IP: l.FirstAddr().String(), Hostname: l.Hostname})
	e := report.Event{Type: report.NetworkUp, Iface: l.Iface, Lease: l.String(), Race: l.Race}
	if l.Gateway.IsValid() {
		e.Gateway = l.Gateway.String()
	}
	if l.Server.IsValid() {
		e.Server = l.Server.String()
	}
	if l.DHCP {
		e.DHCPms = max(took.Milliseconds(), 1)
	}
	s.rep.Send(e)
	s.startReport(s.cfg.Report)
}

// startReport starts sending to u ("" does nothing); a bad URL is logged.
func (s *state) startReport(u string) {
	if u == "" || s.lease == nil {
		return
	}
	if err := s.rep.Start(u); err != nil {
		s.logf("%v", err)
	} else if s.rep.URL() == u {
		s.logf("reporting boot %s to %s", s.rep.BootID(), u)
	}
}

// reportMenu says which menu is shown; its report: URL is used when the command line has none.
func (s *state) reportMenu(m *bootmenu.Menu) {
	if s.cfg.Report == "" && m.Report != "" {
		s.startReport(m.Report)
	}
	s.rep.Send(report.Event{Type: report.MenuShown, Menu: m.Source, Entries: len(m.Entries)})
}

// reportChosen says which entry boots and how it was chosen (key, countdown, default,
// cmdline).
func (s *state) reportChosen(entry, by string) {
	s.rep.Send(report.Event{Type: report.EntryChosen, Entry: entry, By: by})
}

// reportFailure says a boot attempt failed, in which step.
func (s *state) reportFailure(err error, attempt int) {
	step := s.rep.Stage()
	if step == "" || step == report.Started {
		step = "setup"
	}
	var ne *networkError
	if errors.As(err, &ne) {
		step = "network"
	}
	s.rep.Send(report.Event{Type: report.Failure, Step: step, Error: err.Error(), Attempt: attempt})
}

// networkError marks a failure to bring up the network (the failure's step).
type networkError struct{ err error }

func (e *networkError) Error() string { return "network: " + e.err.Error() }
func (e *networkError) Unwrap() error { return e.err }
