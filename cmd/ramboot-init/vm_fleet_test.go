package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ramboot/ramboot/internal/serve"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// TestVMFleetDashboard opens the fleet dashboard in headless chromium, then boots a VM that
// reports to the same `ramboot serve --reports`: the machine's row appears and goes through
// its states live (server-sent events; the page is never reloaded) until it reads "booted",
// with its entry, address and a timeline; a screenshot is saved. The booted system's health
// POST then turns the row "healthy".
func TestVMFleetDashboard(t *testing.T) {
	setup(t)
	ctx := vmtest.Chromium(t)
	port, h := fleetServer(t)
	base := "http://127.0.0.1:" + port

	// The first action starts the browser, which lives as long as its context: no timeout on
	// that one, a timeout on the rest.
	if err := chromedp.Do(ctx, chromedp.Navigate(base+serve.FleetPath)); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, bootTimeout+time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`#conn.on`)), // the stream is open
		chromedp.WaitVisible(chromedp.CSS(`#empty`)),   // and there is no machine yet
	); err != nil {
		t.Fatalf("dashboard: %v", err)
	}

	vm := bootReported(t, port)
	row := `document.querySelector('tr[data-mac="` + mac1 + `"]')`
	var seen []string
	deadline := time.Now().Add(bootTimeout)
	for {
		state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(r => r ? r.dataset.state : "")(`+row+`)`))
		if err != nil {
			t.Fatalf("reading the row: %v\nconsole:\n%s", err, vm.Console())
		}
		if state != "" && (len(seen) == 0 || seen[len(seen)-1] != state) {
			seen = append(seen, state)
			t.Logf("%5.1fs row %s: %s", vm.Elapsed().Seconds(), mac1, state)
		}
		if state == serve.StateBooted {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the row never read booted (states seen %v)\nconsole:\n%s", seen, vm.Console())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seen) < 2 {
		t.Errorf("states seen %v: the row should have shown the boot before it booted", seen)
	}
	// The row's cells, and the timeline of the machine once clicked.
	cells, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...`+row+`.cells].map(c => c.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`tr[data-mac="`+mac1+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#detail .bars .row`)),
	); err != nil {
		t.Fatal(err)
	}
	bars, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#detail .bars .row').length`))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(cells, " | ")
	for _, want := range []string{mac1, "10.0.2.15", "rescue", "booted", "switch_root"} {
		if !strings.Contains(text, want) {
			t.Errorf("row %q lacks %q", text, want)
		}
	}
	// started network menu chosen fetch extracted switch_root
	if bars != 7 {
		t.Errorf("timeline has %d bars, want 7", bars)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := vmtest.Artifact(t, "fleet-dashboard.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the dashboard: %s", shot)
	vm.Expect(`TESTINIT-DONE`, time.Minute)

	// The booted system confirms (here the test does it, as the README's unit would).
	resp, err := http.Post(base+serve.MachinesPath+"/"+mac1+"/healthy", "", nil)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST healthy: %v %v", err, resp)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`tr[data-mac="`+mac1+`"][data-state="healthy"]`))); err != nil {
		t.Fatalf("the row did not turn healthy: %v", err)
	}
	if m := h.Fleet().Machines(); len(m) != 1 || m[0].HealthyEntry != "rescue" {
		t.Errorf("fleet: %+v", m)
	}
}
