package serve

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ramboot/ramboot/internal/report"
)

// The fleet's paths.
const (
	EventsPath   = "/api/v1/events"   // POST: one event or an array of them
	MachinesPath = "/api/v1/machines" // GET: every machine; /MAC/events, POST /MAC/healthy
	StreamPath   = "/api/v1/stream"   // GET: server-sent events, one "machine" event per change
	FleetPath    = "/fleet/"          // the dashboard
)

// sseHeartbeat keeps a quiet stream's connection alive through proxies and the stall timeout.
const sseHeartbeat = 15 * time.Second

//go:embed fleet
var fleetFiles embed.FS

// owns reports whether path is one of the fleet's.
func (f *Fleet) owns(path string) bool {
	return path == "/fleet" || strings.HasPrefix(path, FleetPath) || strings.HasPrefix(path, "/api/v1/")
}

// ServeHTTP serves the fleet's API and dashboard.
func (f *Fleet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == EventsPath:
		f.postEvents(w, r)
	case p == MachinesPath || p == MachinesPath+"/":
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		writeJSON(w, f.Machines())
	case strings.HasPrefix(p, MachinesPath+"/"):
		f.machine(w, r, strings.TrimPrefix(p, MachinesPath+"/"))
	case p == StreamPath:
		f.stream(w, r)
	case p == "/fleet":
		http.Redirect(w, r, FleetPath, http.StatusMovedPermanently)
	case strings.HasPrefix(p, FleetPath):
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		sub, _ := fs.Sub(fleetFiles, "fleet")
		http.StripPrefix(FleetPath, http.FileServer(http.FS(sub))).ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// postEvents takes a JSON event or an array of them.
func (f *Fleet) postEvents(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodPost) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxEventsBody+1))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if len(body) > maxEventsBody {
		http.Error(w, fmt.Sprintf("more than %d bytes of events", maxEventsBody), http.StatusRequestEntityTooLarge)
		return
	}
	var events []report.Event
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		var e report.Event
		err = json.Unmarshal(body, &e)
		events = []report.Event{e}
	} else {
		err = json.Unmarshal(body, &events)
	}
	if err != nil {
		http.Error(w, "events: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := f.Add(events); err != nil {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrBadEvent):
			code = http.StatusBadRequest
		case errors.Is(err, ErrEventTooLarge):
			code = http.StatusRequestEntityTooLarge
		default:
			f.logf("%v", err)
		}
		http.Error(w, err.Error(), code)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// machine serves /api/v1/machines/MAC/events and /MAC/healthy.
func (f *Fleet) machine(w http.ResponseWriter, r *http.Request, rest string) {
	mac, what, _ := strings.Cut(rest, "/")
	if normalMAC(mac) == "" {
		http.Error(w, fmt.Sprintf("%q is not a MAC address", mac), http.StatusBadRequest)
		return
	}
	switch what {
	case "events":
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		ev, ok := f.Events(mac)
		if !ok {
			http.Error(w, "no boot reported by "+mac, http.StatusNotFound)
			return
		}
		writeJSON(w, ev)
	case "healthy":
		if !allow(w, r, http.MethodPost) {
			return
		}
		ok, err := f.MarkHealthy(mac)
		switch {
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		case !ok:
			http.Error(w, "no boot reported by "+mac, http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	case "":
		if !allow(w, r, http.MethodGet, http.MethodHead) {
			return
		}
		for _, m := range f.Machines() {
			if m.MAC == normalMAC(mac) {
				writeJSON(w, m)
				return
			}
		}
		http.Error(w, "no boot reported by "+mac, http.StatusNotFound)
	default:
		http.NotFound(w, r)
	}
}

// stream serves server-sent events: every machine at once, then each machine again whenever
// it changes ("event: machine", its JSON as data), and a comment line as heartbeat.
func (f *Fleet) stream(w http.ResponseWriter, r *http.Request) {
	if !allow(w, r, http.MethodGet) {
		return
	}
	rc := http.NewResponseController(w)
	c, cancel := f.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	send := func(b []byte) bool {
		rc.SetWriteDeadline(time.Now().Add(sseHeartbeat * 2))
		if _, err := fmt.Fprintf(w, "event: machine\ndata: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for _, m := range f.Machines() {
		b, _ := json.Marshal(m)
		if !send(b) {
			return
		}
	}
	rc.Flush()
	t := time.NewTicker(sseHeartbeat)
	defer t.Stop()
	for {
		select {
		case b, ok := <-c:
			if !ok || !send(b) {
				return
			}
		case <-t.C:
			rc.SetWriteDeadline(time.Now().Add(sseHeartbeat * 2))
			if _, err := io.WriteString(w, ": heartbeat\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// openFleet opens Options.Reports, checking the options that go with it.
func (h *Handler) openFleet(opts Options) error {
	if opts.RollbackAfter > 0 {
		switch {
		case opts.Reports == "":
			return errors.New("rollback needs the boot reports (--reports)")
		case h.menu == nil:
			return errors.New("rollback needs a menu (--menu)")
		case h.menu.path != "/menu.yaml":
			return errors.New("rollback needs a YAML menu: a pxelinux menu's default cannot be set per machine")
		}
	}
	if opts.Reports == "" {
		return nil
	}
	f, err := OpenFleet(opts.Reports, opts.RollbackAfter, h.logf)
	if err != nil {
		return err
	}
	h.fleet = f
	return nil
}

// Fleet returns the boot reports' collector, nil without Options.Reports.
func (h *Handler) Fleet() *Fleet { return h.fleet }
