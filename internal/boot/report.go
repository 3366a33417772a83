package boot

import (
	"net/http"
	"sync"
	"time"

	"github.com/ramboot/ramboot/internal/report"
	"github.com/ramboot/ramboot/loader"
)

// ProgressEvery is how often a running download is reported (report.FetchProgress).
const ProgressEvery = 3 * time.Second

// FinalWait bounds the wait for the boot report to reach its server before switch_root or
// kexec: a report server that is slow or gone costs a boot at most this.
const FinalWait = 2 * time.Second

// Headers naming the machine on the requests for a menu, so that a menu server can answer
// each machine with its own default (`ramboot serve --rollback-after`).
const (
	HeaderMAC    = "X-Ramboot-Mac"
	HeaderBootID = "X-Ramboot-Boot-Id"
)

// reportFetch says a download of url starts and returns the progress callback that also
// reports it every ProgressEvery (next, if not nil, gets every call).
func (b *Booter) reportFetch(url string, next func(loader.Progress)) func(loader.Progress) {
	if b.Report == nil {
		return next
	}
	b.Report.Send(report.Event{Type: report.FetchStart, URL: url})
	var (
		mu   sync.Mutex
		last time.Time
	)
	return func(p loader.Progress) {
		if next != nil {
			next(p)
		}
		mu.Lock()
		due := time.Since(last) >= ProgressEvery
		if due {
			last = time.Now()
		}
		mu.Unlock()
		if due && p.Read > 0 {
			e := report.Event{Type: report.FetchProgress, URL: p.URL, Bytes: p.Read, Rate: p.Rate, Unpacked: p.Extracted}
			if p.Total > 0 {
				e.Total = p.Total
			}
			if p.Retry > 0 {
				e.Error, e.Attempt = p.LastErr, p.Retry
			}
			b.Report.Send(e)
		}
	}
}

// reportDone says a download finished.
func (b *Booter) reportDone(res *loader.Result) {
	if b.Report == nil || res == nil {
		return
	}
	e := report.Event{Type: report.FetchDone, URL: res.URL, Bytes: res.Size, Total: res.Size,
		SHA256: res.SHA256, Verified: res.Verified}
	if s := res.Duration.Seconds(); s > 0 {
		e.Rate = float64(res.Size) / s
	}
	b.Report.Send(e)
}

// reportExtracted says the image is in the new root.
func (b *Booter) reportExtracted(res *loader.Result) {
	if b.Report == nil || res == nil {
		return
	}
	b.Report.Send(report.Event{Type: report.Extracted, URL: res.URL, Entries: res.Entries, Unpacked: res.Uncompressed})
}

// reportFinal records switch_root or kexec, waits up to FinalWait for the report to be sent
// and writes it (boot.json: /run moves into the new root).
func (b *Booter) reportFinal(typ string) {
	if err := b.Report.Final(report.Event{Type: typ}, FinalWait); err != nil {
		b.logf("report: writing boot.json: %v", err)
	}
}

// identified returns c with the machine's MAC and boot id added to each request.
func (b *Booter) identified(c *http.Client) *http.Client {
	mac := ""
	if b.Lease != nil {
		mac = b.Lease.MAC.String()
	} else if b.Report != nil {
		mac = b.Report.Identity().MAC
	}
	if mac == "" && b.Report == nil {
		return c
	}
	cc := *c
	next := cc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	cc.Transport = identity{next: next, mac: mac, bootID: b.Report.BootID()}
	return &cc
}

// identity adds the headers naming the machine.
type identity struct {
	next        http.RoundTripper
	mac, bootID string
}

func (t identity) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if t.mac != "" {
		r.Header.Set(HeaderMAC, t.mac)
	}
	if t.bootID != "" {
		r.Header.Set(HeaderBootID, t.bootID)
	}
	return t.next.RoundTrip(r)
}
