package boot

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoadMenuLimits: a menu is read from a file or a URL; one without end, or a FIFO, is
// refused instead of filling the RAM /init runs in or hanging it.
func TestLoadMenuLimits(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/menu.yaml":
			w.Write([]byte("entries:\n  - {name: off, action: poweroff}\n"))
		case "/endless.yaml":
			line := []byte(strings.Repeat("# padding\n", 100))
			for r.Context().Err() == nil {
				if _, err := w.Write(line); err != nil {
					return
				}
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	local := filepath.Join(dir, "menu.yaml")
	os.WriteFile(local, []byte("entries:\n  - {name: r, action: reboot}\n"), 0o644)
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Booter{Logf: t.Logf}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tt := range []struct{ src, want string }{
		{srv.URL + "/menu.yaml", ""},
		{local, ""},
		{"file://" + local, ""},
		{srv.URL + "/endless.yaml", "larger than the 1024 KiB a menu may have"},
		{fifo, "not a regular file"},
	} {
		m, err := b.LoadMenu(ctx, tt.src)
		switch {
		case tt.want == "" && (err != nil || len(m.Entries) != 1):
			t.Errorf("%s: %v", tt.src, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want %q", tt.src, err, tt.want)
		}
	}
}
