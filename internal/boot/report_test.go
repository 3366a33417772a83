package boot

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/hooks"
	"github.com/ramboot/ramboot/internal/report"
)

// TestPrepareReports: a ramroot boot reports its fetch (start, done with the digest verified),
// the extraction and the switch_root, in order, and writes boot.json before switching.
func TestPrepareReports(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "sbin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "sbin/init", Typeflag: tar.TypeReg, Mode: 0o755, Size: 2})
	tw.Write([]byte("#!"))
	tw.Close()
	var (
		mu  sync.Mutex
		got []report.Event
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			var batch []report.Event
			json.NewDecoder(r.Body).Decode(&batch)
			mu.Lock()
			got = append(got, batch...)
			mu.Unlock()
			return
		}
		if r.URL.Path != "/img.tar" {
			http.NotFound(w, r)
			return
		}
		w.Write(buf.Bytes())
	}))
	defer srv.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "run/ramboot/boot.json")
	rep := report.New(report.Options{File: file})
	rep.Start(srv.URL + "/api/v1/events")
	switched := false
	b := &Booter{Root: filepath.Join(dir, "root"), Hooks: hooks.Runner{Dir: filepath.Join(dir, "hooks")}, Logf: t.Logf, Report: rep,
		SwitchRoot: func(string, string, []string, []string) error {
			if _, err := os.Stat(file); err != nil {
				t.Errorf("boot.json missing at switch_root: %v", err)
			}
			switched = true
			return nil
		}}
	h := sha256.Sum256(buf.Bytes())
	sum := hex.EncodeToString(h[:])
	exec, err := b.Prepare(context.Background(), Plan{Name: "x", Ramroot: &RamrootPlan{Image: Image{URLs: []string{srv.URL + "/img.tar"}, SHA256: sum}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec(); err != nil || !switched {
		t.Fatalf("exec: %v (switched %v)", err, switched)
	}
	rep.Flush(5 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	var types []string
	for _, e := range got {
		types = append(types, e.Type)
	}
	want := []string{report.FetchStart, report.FetchDone, report.Extracted, report.SwitchRoot}
	if len(types) != len(want) {
		t.Fatalf("events %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events %v, want %v", types, want)
		}
	}
	if d := got[1]; d.Bytes != int64(buf.Len()) || d.SHA256 != sum || !d.Verified || d.URL != srv.URL+"/img.tar" {
		t.Errorf("fetch_done %+v", d)
	}
	if e := got[2]; e.Entries != 2 {
		t.Errorf("extracted %+v, want 2 entries", e)
	}
}

// TestMenuRequestNamesMachine: the request for a menu carries the MAC and boot id.
func TestMenuRequestNamesMachine(t *testing.T) {
	var mac, id string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mac, id = r.Header.Get(HeaderMAC), r.Header.Get(HeaderBootID)
		w.Write([]byte("entries:\n  - {name: off, action: poweroff}\n"))
	}))
	defer srv.Close()
	rep := report.New(report.Options{})
	rep.Identify(report.Identity{MAC: "52:54:00:aa:bb:cc"})
	b := &Booter{Logf: t.Logf, Report: rep}
	if _, err := b.LoadMenu(context.Background(), srv.URL+"/menu.yaml"); err != nil {
		t.Fatal(err)
	}
	if mac != "52:54:00:aa:bb:cc" || id != rep.BootID() {
		t.Errorf("headers %s=%q %s=%q", HeaderMAC, mac, HeaderBootID, id)
	}
}
