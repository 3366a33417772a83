package serve

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ramboot/ramboot/internal/report"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// TestFleetDashboardBrowser drives the dashboard in headless chromium while a Go client
// replays three machines' boots: rows appear live, the filters count and filter by state, a
// download shows its progress, and a rolled-back machine says so.
func TestFleetDashboardBrowser(t *testing.T) {
	ctx := vmtest.Chromium(t)
	menuFile := filepath.Join(t.TempDir(), "menu.yaml")
	write(t, menuFile, []byte(rollbackYAML))
	h, err := New(testDir(t), Options{Menu: menuFile, Reports: t.TempDir(), RollbackAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close() // ends the page's stream, which srv.Close would wait for
		srv.Close()
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+FleetPath)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`#conn.on`))); err != nil {
		t.Fatal(err)
	}
	const macB, macC = "52:54:00:00:00:0b", "52:54:00:00:00:0c"
	// A: old was healthy, then new failed once: its next menu is rolled back.
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "a1", "old", report.SwitchRoot))
	postJSON(t, srv.URL+MachinesPath+"/"+macA+"/healthy", nil)
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "a2", "new", report.Failure))
	req, _ := http.NewRequest("GET", srv.URL+"/menu.yaml", nil)
	req.Header.Set("X-Ramboot-Mac", macA)
	req.Header.Set("X-Ramboot-Boot-Id", "a3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// B downloads (half done), C booted.
	postJSON(t, srv.URL+EventsPath, bootEvents(macB, "b1", "new", report.FetchProgress))
	postJSON(t, srv.URL+EventsPath, bootEvents(macC, "c1", "new", report.SwitchRoot))

	row := func(mac string) string { return `tr[data-mac="` + mac + `"]` }
	if err := chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(row(macA)+`[data-state="failed"] .rb`)),
		chromedp.WaitVisible(chromedp.CSS(row(macB)+`[data-state="downloading"]`)),
		chromedp.WaitVisible(chromedp.CSS(row(macC)+`[data-state="booted"]`)),
	); err != nil {
		t.Fatalf("rows did not appear live: %v", err)
	}
	rb, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('`+row(macA)+` .rb').textContent`))
	if err != nil || !strings.Contains(rb, "rolled back to old") {
		t.Errorf("rollback note %q (%v)", rb, err)
	}
	width, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('`+row(macB)+` .progress div').style.width`))
	if err != nil || width != "50%" {
		t.Errorf("B's progress bar %q (%v), want 50%%", width, err)
	}
	counts, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll('#filters button')].map(b => b.textContent.trim()).join(", ")`))
	if want := "all 3, booting 0, downloading 1, booted 1, healthy 0, failed 1"; err != nil || counts != want {
		t.Errorf("filters %q (%v), want %q", counts, err, want)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#filters button[data-filter="failed"]`))); err != nil {
		t.Fatal(err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#machines tbody tr')].map(r => r.dataset.mac)`))
	if err != nil || len(shown) != 1 || shown[0] != macA {
		t.Errorf("failed filter shows %v (%v), want only %s", shown, err, macA)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#filters button[data-filter="all"]`)),
		chromedp.Click(chromedp.CSS(row(macB))),
		chromedp.WaitVisible(chromedp.CSS(`#detail .bars .row`)),
	); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := vmtest.Artifact(t, "fleet-filters.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", shot)
}
