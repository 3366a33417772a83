package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/internal/report"
)

const macA = "52:54:00:00:00:0a"

// boot is a machine's boot as /init reports it, entry by entry.
func bootEvents(mac, bootID, entry string, upTo string) []report.Event {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	all := []report.Event{
		{Type: report.Started, Kernel: "6.1.0-cloud-amd64"},
		{Type: report.NetworkUp, Iface: "eth0", IP: "10.0.2.15", DHCPms: 1200},
		{Type: report.MenuShown, Menu: "http://10.0.2.2/menu.yaml", Entries: 3},
		{Type: report.EntryChosen, Entry: entry, By: "countdown"},
		{Type: report.FetchStart, URL: "http://10.0.2.2/" + entry + ".tar.zst"},
		{Type: report.FetchProgress, URL: "http://10.0.2.2/" + entry + ".tar.zst", Bytes: 50 << 20, Total: 100 << 20, Rate: 10 << 20},
		{Type: report.FetchDone, URL: "http://10.0.2.2/" + entry + ".tar.zst", Bytes: 100 << 20, Total: 100 << 20, Rate: 10 << 20, SHA256: sum64, Verified: true},
		{Type: report.Extracted, Entries: 30000},
		{Type: report.SwitchRoot},
		{Type: report.Failure, Step: report.FetchStart, Error: "connection refused", Attempt: 1},
	}
	var out []report.Event
	for i, e := range all {
		e.Schema, e.BootID, e.Seq, e.MAC = report.Schema, bootID, i+1, mac
		e.Time = t0.Add(time.Duration(i) * time.Second)
		if e.Type == report.Failure && upTo != report.Failure {
			continue
		}
		out = append(out, e)
		if e.Type == upTo {
			break
		}
	}
	return out
}

func postJSON(t *testing.T, url string, v any) *http.Response {
	t.Helper()
	b, _ := json.Marshal(v)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func TestFleetAPI(t *testing.T) {
	srv, _ := newServer(t, testDir(t), Options{Reports: t.TempDir()})
	ev := bootEvents(macA, "b1", "rescue", report.FetchProgress)
	// One object, then an array: both forms are taken.
	if r := postJSON(t, srv.URL+EventsPath, ev[0]); r.StatusCode != http.StatusNoContent {
		t.Fatalf("POST one event: %s", r.Status)
	}
	if r := postJSON(t, srv.URL+EventsPath, ev[1:]); r.StatusCode != http.StatusNoContent {
		t.Fatalf("POST events: %s", r.Status)
	}
	var ms []Machine
	if code := getJSON(t, srv.URL+MachinesPath, &ms); code != 200 || len(ms) != 1 {
		t.Fatalf("GET machines: %d %+v", code, ms)
	}
	m := ms[0]
	if m.MAC != macA || m.IP != "10.0.2.15" || m.Entry != "rescue" || m.State != StateDownloading || m.Stage != report.FetchStart ||
		m.Bytes != 50<<20 || m.Total != 100<<20 || m.Rate != 10<<20 || m.Boots != 1 {
		t.Errorf("machine %+v", m)
	}
	var stages []string
	for _, s := range m.Timeline {
		stages = append(stages, s.Stage)
	}
	if diff := cmp.Diff([]string{"started", "network", "menu", "chosen", "fetch"}, stages); diff != "" {
		t.Errorf("timeline (-want +got):\n%s", diff)
	}
	if d := m.Timeline[1].End.Sub(m.Timeline[1].Start); d != time.Second {
		t.Errorf("network bar %v long, want 1s (the machine's clock)", d)
	}
	var recs []record
	if code := getJSON(t, srv.URL+MachinesPath+"/"+strings.ToUpper(macA)+"/events", &recs); code != 200 || len(recs) != len(ev) {
		t.Fatalf("GET events: %d, %d events", code, len(recs))
	}
	for i, r := range recs {
		if r.Seq != i+1 || r.Received.IsZero() {
			t.Errorf("event %d: seq %d received %v", i, r.Seq, r.Received)
		}
	}
	// The rest of the boot, then healthy.
	rest := bootEvents(macA, "b1", "rescue", report.SwitchRoot)[len(ev):]
	postJSON(t, srv.URL+EventsPath, rest)
	getJSON(t, srv.URL+MachinesPath+"/"+macA, &m)
	if m.State != StateBooted || m.Stage != report.SwitchRoot {
		t.Errorf("after switch_root: state %s stage %s", m.State, m.Stage)
	}
	if r := postJSON(t, srv.URL+MachinesPath+"/"+macA+"/healthy", nil); r.StatusCode != http.StatusNoContent {
		t.Fatalf("POST healthy: %s", r.Status)
	}
	getJSON(t, srv.URL+MachinesPath+"/"+macA, &m)
	if m.State != StateHealthy || m.HealthyEntry != "rescue" {
		t.Errorf("after healthy: state %s healthy entry %q", m.State, m.HealthyEntry)
	}

	for _, tt := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"other schema", "POST", EventsPath, `{"schema":2,"type":"started","boot_id":"x","mac":"` + macA + `"}`, 400},
		{"no mac", "POST", EventsPath, `[{"schema":1,"type":"started","boot_id":"x"}]`, 400},
		{"bad mac", "POST", EventsPath, `[{"schema":1,"type":"started","boot_id":"x","mac":"nope"}]`, 400},
		{"no type", "POST", EventsPath, `[{"schema":1,"boot_id":"x","mac":"` + macA + `"}]`, 400},
		{"not JSON", "POST", EventsPath, `started`, 400},
		{"GET events", "GET", EventsPath, ``, 405},
		{"healthy unknown", "POST", MachinesPath + "/52:54:00:99:99:99/healthy", ``, 404},
		{"healthy by GET", "GET", MachinesPath + "/" + macA + "/healthy", ``, 405},
		{"events unknown", "GET", MachinesPath + "/52:54:00:99:99:99/events", ``, 404},
		{"not a mac", "GET", MachinesPath + "/x/events", ``, 400},
		{"dashboard", "GET", FleetPath, ``, 200},
		{"dashboard script", "GET", FleetPath + "fleet.js", ``, 200},
		{"files still served", "GET", "/data.bin", ``, 200},
	} {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %s %s: %d, want %d", tt.name, tt.method, tt.path, resp.StatusCode, tt.want)
		}
	}
	// A refused batch is refused whole: nothing of it was taken.
	var n []record
	getJSON(t, srv.URL+MachinesPath+"/"+macA+"/events", &n)
	if len(n) != len(ev)+len(rest)+1 {
		t.Errorf("%d events after the refused ones, want %d", len(n), len(ev)+len(rest)+1)
	}
}

// TestFleetPersists: a restart replays the events file and loses nothing; a line cut by a
// crash is skipped.
func TestFleetPersists(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFleet(dir, 2, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Add(bootEvents(macA, "b1", "old", report.SwitchRoot)); err != nil {
		t.Fatal(err)
	}
	f.MarkHealthy(macA)
	f.Add(bootEvents(macA, "b2", "new", report.Failure))
	f.Add(bootEvents("52:54:00:00:00:0b", "c1", "new", report.FetchProgress))
	before := f.Machines()
	evBefore, _ := f.Events(macA)
	f.Close()
	// A crash in the middle of a line.
	file := filepath.Join(dir, ReportsFile)
	fh, _ := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	fh.WriteString(`{"received":"2026-01-01T00:00:00Z","schema":1,"type":"sta`)
	fh.Close()

	f2, err := OpenFleet(file, 2, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f2.Close()
	after := f2.Machines()
	if diff := cmp.Diff(before, after, cmp.AllowUnexported(Machine{})); diff != "" {
		t.Errorf("machines after a restart (-before +after):\n%s", diff)
	}
	evAfter, _ := f2.Events(macA)
	if diff := cmp.Diff(evBefore, evAfter); diff != "" {
		t.Errorf("events after a restart (-before +after):\n%s", diff)
	}
	if after[0].HealthyEntry != "old" || after[0].State != StateFailed || after[0].LastError == "" {
		t.Errorf("replayed machine %+v", after[0])
	}
	// New events still append after the cut line.
	if err := f2.Add(bootEvents(macA, "b3", "new", report.Started)); err != nil {
		t.Fatal(err)
	}
	f2.Close()
	f3, err := OpenFleet(dir, 2, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer f3.Close()
	if m := f3.Machines()[0]; m.BootID != "b3" || m.Boots != 3 {
		t.Errorf("after the second restart: boot %s, %d boots", m.BootID, m.Boots)
	}
}

const rollbackYAML = `title: Fleet
default: new
timeout: 5s
entries:
  - name: new
    ramroot: http://SERVER/new.tar.zst
  - name: old
    ramroot: http://SERVER/old.tar.zst
  - {name: shell, action: shell}
`

// TestRollback: after the menu's default failed N boots in a row on a machine, that machine's
// menu defaults to the entry last healthy on it; other machines keep the menu's default; a
// healthy boot of the default ends the rollback.
func TestRollback(t *testing.T) {
	menuFile := filepath.Join(t.TempDir(), "menu.yaml")
	write(t, menuFile, []byte(rollbackYAML))
	srv, _ := newServer(t, testDir(t), Options{Menu: menuFile, Reports: t.TempDir(), RollbackAfter: 2})
	menuFor := func(mac, bootID string) *bootmenu.Menu {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/menu.yaml", nil)
		req.Header.Set("X-Ramboot-Mac", mac)
		req.Header.Set("X-Ramboot-Boot-Id", bootID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m, err := bootmenu.Parse(b, srv.URL+"/menu.yaml")
		if err != nil {
			t.Fatalf("served menu: %v\n%s", err, b)
		}
		return m
	}
	healthy := func() { postJSON(t, srv.URL+MachinesPath+"/"+macA+"/healthy", nil) }

	// Boot 1: old, healthy. Boot 2: new (the menu's default), switched root, never healthy.
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "b1", "old", report.SwitchRoot))
	healthy()
	if m := menuFor(macA, "b2"); m.Default != "new" {
		t.Fatalf("boot 2: default %q, want new", m.Default)
	}
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "b2", "new", report.SwitchRoot))
	// Boot 3 asks for the menu: boot 2 counts as failed (1 of 2), still new.
	if m := menuFor(macA, "b3"); m.Default != "new" {
		t.Fatalf("boot 3: default %q, want new (one failure)", m.Default)
	}
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "b3", "new", report.Failure))
	// Boot 4: new failed twice: rolled back to old, and the title says why.
	m := menuFor(macA, "b4")
	if m.Default != "old" || !strings.Contains(m.Title, "rolled back to old: new failed 2 boots in a row") {
		t.Fatalf("boot 4: default %q title %q, want old and the reason", m.Default, m.Title)
	}
	// The same menu request again (a retry of boot 4) counts nothing more.
	menuFor(macA, "b4")
	var ms Machine
	getJSON(t, srv.URL+MachinesPath+"/"+macA, &ms)
	if ms.Rollback == nil || *ms.Rollback != (Rollback{From: "new", To: "old", Failures: 2}) || ms.Failures["new"] != 2 {
		t.Fatalf("machine's rollback %+v failures %v", ms.Rollback, ms.Failures)
	}
	// Another machine, and a person without headers, get the menu's default.
	if m := menuFor("52:54:00:00:00:0b", "z"); m.Default != "new" {
		t.Errorf("other machine: default %q", m.Default)
	}
	// Boot 4 boots old and is healthy: still rolled back (new has not been healthy since).
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "b4", "old", report.SwitchRoot))
	healthy()
	if m := menuFor(macA, "b5"); m.Default != "old" {
		t.Fatalf("boot 5: default %q, want old", m.Default)
	}
	// The operator picks new by key on boot 5 and it comes up healthy: the rollback ends.
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "b5", "new", report.SwitchRoot))
	healthy()
	if m := menuFor(macA, "b6"); m.Default != "new" || strings.Contains(m.Title, "rolled back") {
		t.Fatalf("boot 6: default %q title %q, want new", m.Default, m.Title)
	}
	var after Machine
	getJSON(t, srv.URL+MachinesPath+"/"+macA, &after)
	if after.Rollback != nil {
		t.Errorf("rollback still shown: %+v", after.Rollback)
	}
}

func TestRollbackNeeds(t *testing.T) {
	pxe := filepath.Join(t.TempDir(), "menu.cfg")
	write(t, pxe, []byte("DEFAULT a\nLABEL a\n  KERNEL vmlinuz\n"))
	yml := filepath.Join(t.TempDir(), "menu.yaml")
	write(t, yml, []byte(rollbackYAML))
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{RollbackAfter: 2, Menu: yml}, "needs the boot reports"},
		{Options{RollbackAfter: 2, Reports: t.TempDir()}, "needs a menu"},
		{Options{RollbackAfter: 2, Reports: t.TempDir(), Menu: pxe}, "needs a YAML menu"},
	} {
		if _, err := New(testDir(t), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.opts, err, tt.want)
		}
	}
}

// TestFleetStream: the stream sends every machine at once, then each change live.
func TestFleetStream(t *testing.T) {
	srv, _ := newServer(t, testDir(t), Options{Reports: t.TempDir()})
	postJSON(t, srv.URL+EventsPath, bootEvents(macA, "b1", "rescue", report.NetworkUp))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+StreamPath, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	events := make(chan Machine)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		name := ""
		for sc.Scan() {
			l := sc.Text()
			if v, ok := strings.CutPrefix(l, "event: "); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(l, "data: "); ok && name == "machine" {
				var m Machine
				json.Unmarshal([]byte(v), &m)
				events <- m
			}
		}
		close(events)
	}()
	next := func() Machine {
		t.Helper()
		select {
		case m, ok := <-events:
			if !ok {
				t.Fatal("stream ended")
			}
			return m
		case <-time.After(10 * time.Second):
			t.Fatal("no event on the stream")
		}
		return Machine{}
	}
	if m := next(); m.MAC != macA || m.Stage != report.NetworkUp {
		t.Fatalf("first event %+v", m)
	}
	rest := bootEvents(macA, "b1", "rescue", report.SwitchRoot)[2:]
	for i, e := range rest {
		postJSON(t, srv.URL+EventsPath, e)
		if m := next(); m.Stage != e.Type && !(e.Type == report.FetchProgress && m.Stage == report.FetchStart) {
			t.Fatalf("update %d: stage %s, want %s", i, m.Stage, e.Type)
		}
	}
	postJSON(t, srv.URL+MachinesPath+"/"+macA+"/healthy", nil)
	if m := next(); m.State != StateHealthy {
		t.Fatalf("after healthy: %+v", m)
	}
}

func TestSetDefault(t *testing.T) {
	b, err := setDefault([]byte("entries:\n  - {name: a, action: shell}\n  - {name: b, action: reboot}\n"), "b", "why")
	if err != nil {
		t.Fatal(err)
	}
	m, err := bootmenu.Parse(b, "m.yaml")
	if err != nil || m.Default != "b" || m.Title != "ramboot (why)" {
		t.Errorf("%v %q %q\n%s", err, m.Default, m.Title, b)
	}
}
