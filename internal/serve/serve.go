// Package serve is the HTTP server of `ramboot serve`: it serves a directory of images,
// kernels and menus for labs and tests (production uses nginx, object storage or a CDN), with
// what ramboot's loader relies on: Range, HEAD, strong ETags and Last-Modified, If-Range and
// If-None-Match (net/http's ServeContent does the protocol). It never serves anything outside
// the directory: paths are opened through an os.Root, so neither ".." nor a symlink can leave
// it. Only regular files and directories are served: FIFOs, devices and sockets are refused
// without being opened (see openFile). Directories get a generated index (HTML, or plain text
// for Accept: text/plain).
//
// A client cannot hold a connection without making progress (Timeouts): not while sending its
// header, not idle between requests, not by leaving a response unread. A download that keeps
// reading has no time limit. LimitListener caps the connections open at once.
//
// NAME.sha256 sidecars, which the loader uses when no checksum is given, are served when they
// exist and never generated: a sidecar is the producer's statement of what the image must be
// (`ramboot image` writes it once the image is complete). A sum the server computed from
// whatever is on disk would vouch for a half-written or truncated image, and would cost a
// full read of the image whenever it changes.
//
// A boot menu can be served at /menu.yaml (or /menu.cfg for a pxelinux config) with the
// placeholder host SERVER, and the relative URLs of a YAML menu, rewritten to the address the
// client used, so that one menu works from a VM (10.0.2.2:PORT) and from the host
// (127.0.0.1:PORT). A signed menu (MENU.minisig beside it) is served byte for byte with its
// signature at /menu.yaml.minisig; with Options.SignKey each rendition is signed instead.
//
// Host-only: /init never links this package.
package serve

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"aead.dev/minisign"
)

// Options are the settings of New.
type Options struct {
	// Menu is a menu file (YAML or pxelinux) to serve, rewritten, at MenuPath. "" for none.
	// It is read and validated once, by New.
	Menu string
	// Logf receives one line per request (see Handler.ServeHTTP). Nil discards.
	Logf func(format string, args ...any)
	// Timeouts bound idle and stalled clients; zero fields take DefaultTimeouts'. Stall
	// applies to every response of the handler, Header and Idle to the Server it returns.
	Timeouts Timeouts
	// Reports, when set, is the events file (or a directory for reports.jsonl) of the boot
	// reports: the fleet API under /api/v1/ and the dashboard at /fleet/ (see Fleet).
	Reports string
	// RollbackAfter > 0 serves each machine a YAML menu whose default is the last entry that
	// was healthy on it when the menu's default failed this many boots in a row (Fleet.Default).
	// It needs Reports and a YAML Menu, and SignKey when the menu is signed.
	RollbackAfter int
	// SignKey signs every rendition of Menu the server makes (the client's address, relative
	// URLs, rollback), served at MenuPath+".minisig". Nil: a menu with a MENU.minisig beside it
	// is served byte for byte with that signature, and one without is served unsigned.
	SignKey *minisign.PrivateKey
}

// Handler serves a directory and optionally a menu. Make one with New.
type Handler struct {
	root     *os.Root
	menu     *menu  // nil without Options.Menu
	fleet    *Fleet // nil without Options.Reports
	logf     func(format string, args ...any)
	now      func() time.Time // for the request duration; time.Now outside tests
	timeouts Timeouts
}

// New returns a handler serving the files of dir. It opens dir (which must exist) and, when
// opts.Menu is set, reads and validates the menu: an invalid menu is an error naming the file,
// line and field, as `ramboot menu check` reports it.
func New(dir string, opts Options) (*Handler, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	h := &Handler{root: root, logf: opts.Logf, now: time.Now, timeouts: opts.Timeouts.withDefaults()}
	if h.logf == nil {
		h.logf = func(string, ...any) {}
	}
	if opts.Menu != "" {
		if h.menu, err = loadMenu(opts.Menu, root, opts.SignKey); err != nil {
			root.Close()
			return nil, err
		}
		if h.menu.verbatim() && opts.RollbackAfter > 0 {
			root.Close()
			return nil, fmt.Errorf("%s: signed, and rollback would change it for each machine, breaking the signature: give a key to sign what is served (--sign-key)", opts.Menu)
		}
	}
	if err := h.openFleet(opts); err != nil {
		root.Close()
		return nil, err
	}
	return h, nil
}

// MenuPath returns the path the menu is served at ("/menu.yaml" or "/menu.cfg"), "" without
// a menu.
func (h *Handler) MenuPath() string {
	if h.menu == nil {
		return ""
	}
	return h.menu.path
}

// MenuSigning says how the menu's signature is served, for the line that announces the menu:
// ", signed by key ID" or ", byte for byte with its signature"; "" when it is not signed.
func (h *Handler) MenuSigning() string {
	switch m := h.menu; {
	case m == nil:
		return ""
	case m.key != nil:
		return fmt.Sprintf(", each rendition signed by key %X", m.key.ID())
	case m.sig != nil:
		return ", byte for byte with its signature"
	}
	return ""
}

// Close releases the directory and the reports file.
func (h *Handler) Close() error {
	if h.fleet != nil {
		h.fleet.Close()
	}
	return h.root.Close()
}

// ServeHTTP serves GET and HEAD: the menu at MenuPath (it shadows a file of that name), else
// the file or directory index at the request's path. It logs one line per request:
//
//	CLIENT METHOD URI STATUS BYTES DURATION [range=SPEC]
//
// e.g. "10.0.2.15:41234 GET /rescue.tar.zst 206 1048576 12.5ms range=bytes=1048576-": BYTES
// counts the body bytes sent (short when the client went away, or stopped reading for
// Timeouts.Stall), range= appears when the request had a Range header.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.fleet != nil && h.fleet.owns(r.URL.Path) {
		// Not logged per request: machines POST events every few seconds.
		if r.Method == http.MethodPost {
			// The body (events, a healthy confirmation) must arrive within Timeouts.Stall: a
			// client trickling a few bytes now and then would otherwise hold its connection
			// for as long as it liked. Responses here are short, so the deadline outlasts them.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.timeouts.Stall))
		}
		h.fleet.ServeHTTP(w, r)
		return
	}
	start := h.now()
	lw := &logWriter{ResponseWriter: newStallWriter(w, h.timeouts.Stall)}
	defer func() {
		h.logf("%s", logLine(r, lw.status(), lw.n, h.now().Sub(start)))
	}()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		lw.Header().Set("Allow", "GET, HEAD")
		http.Error(lw, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if h.menu != nil && h.menu.owns(r.URL.Path) {
		if h.fleet != nil && h.fleet.rollbackAfter > 0 {
			h.fleet.serveMenu(lw, r, h.menu)
			return
		}
		h.menu.serve(lw, r)
		return
	}
	h.serveFile(lw, r)
}

// errStatus maps an error opening a path to a status: 404 for what does not exist, 403 for
// everything else (permissions, and os.Root refusing a path or symlink that leaves the
// directory), without telling the client which.
func errStatus(err error) int {
	if errors.Is(err, os.ErrNotExist) || isNotDir(err) {
		return http.StatusNotFound
	}
	return http.StatusForbidden
}
