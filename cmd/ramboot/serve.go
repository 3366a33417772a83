package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/ramboot/ramboot/internal/serve"
)

// shutdownGrace is how long running downloads may go on after SIGINT/SIGTERM before their
// connections are closed.
const shutdownGrace = 5 * time.Second

// serveOptions are serve's flags.
type serveOptions struct {
	addr, menu, reports      string
	signKey, signKeyPassword string
	maxConns, rollback       int
}

func serveFlags(o *serveOptions) *cmdFlags {
	fs := newFlags("serve", "DIR", 1,
		"Serves the files of DIR (Range, HEAD, ETag) for labs and tests; logs requests on stderr.",
		"Drops clients that send no request, send no whole boot report, or read nothing of a response for a minute.")
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "`HOST:PORT` to listen on (port 0: any free port)")
	fs.IntVar(&o.maxConns, "max-conns", serve.DefaultMaxConns, "most connections open at once (more wait to be accepted)")
	fs.StringVar(&o.menu, "menu", "", "a menu `FILE` (YAML or pxelinux) to serve at /menu.yaml (/menu.cfg for pxelinux), with http://"+serve.Placeholder+"/ and relative URLs rewritten to the address clients use")
	fs.StringVar(&o.reports, "reports", "", "collect boot reports (ramboot.report=http://HOST:PORT"+serve.EventsPath+") in the append-only `FILE` (or DIR/"+serve.ReportsFile+"), replayed at start; serves the JSON API under /api/v1/ and the fleet dashboard at "+serve.FleetPath)
	fs.StringVar(&o.signKey, "sign-key", "", "sign each rendition of --menu that is served (addresses, relative URLs, rollback) with the minisign secret `KEY`, at /menu.yaml.minisig; without it a menu with MENU.minisig beside it is served byte for byte with that signature")
	fs.StringVar(&o.signKeyPassword, "sign-key-password-file", "", "--sign-key's password is the first line of `FILE` (default: ask on the terminal when the key is encrypted)")
	fs.IntVar(&o.rollback, "rollback-after", 0, "with --reports and a YAML --menu: a machine on which the menu's default failed `N` boots in a row gets the last entry that was healthy on it as its default")
	return fs
}

// runServe serves DIR over HTTP until ctx ends (SIGINT or SIGTERM): a server for labs and tests.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o serveOptions
	pos, err := serveFlags(&o).parse(args, stdout, stderr)
	if err != nil {
		return err
	}
	if o.rollback < 0 {
		return fmt.Errorf("%w: --rollback-after %d: want a number of boots", errUsage, o.rollback)
	}
	if o.maxConns < 1 {
		return fmt.Errorf("%w: --max-conns %d: want at least 1", errUsage, o.maxConns)
	}
	opts := serve.Options{Menu: o.menu, Reports: o.reports, RollbackAfter: o.rollback}
	if o.signKey != "" {
		if o.menu == "" {
			return fmt.Errorf("%w: --sign-key signs the --menu that is served: give --menu too", errUsage)
		}
		key, err := loadSecretKey(ctx, o.signKey, o.signKeyPassword, stderr)
		if err != nil {
			return err
		}
		opts.SignKey = &key
	}
	logger := log.New(stderr, "", log.LstdFlags)
	opts.Logf = logger.Printf
	h, err := serve.New(pos[0], opts)
	if err != nil {
		return err
	}
	defer h.Close()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.addr)
	if err != nil {
		return err
	}
	// The timeouts (serve.DefaultTimeouts) and the cap free the connections of idle and
	// stalled clients; a slow download that keeps reading has no time limit.
	srv := h.Server(logger)
	ln = serve.LimitListener(ln, o.maxConns)
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(stdout, "serving %s at %s\n", pos[0], url)
	if p := h.MenuPath(); p != "" {
		fmt.Fprintf(stdout, "menu %s at %s%s%s\n", o.menu, url, p[1:], h.MenuSigning())
	}
	if f := h.Fleet(); f != nil {
		fmt.Fprintf(stdout, "boot reports to %s%s (kept in %s), fleet dashboard at %s%s\n", url, serve.EventsPath[1:], f.Path(), url, serve.FleetPath[1:])
	}

	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Fprintln(stderr, "stopped")
	return nil
}
