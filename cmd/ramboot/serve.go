package main

import (
	"context"
	"errors"
	"flag"
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

// runServe serves DIR over HTTP until ctx ends (SIGINT or SIGTERM): a server for labs and tests.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ramboot serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (port 0: any free port)")
	maxConns := fs.Int("max-conns", serve.DefaultMaxConns, "most connections open at once (more wait to be accepted)")
	menu := fs.String("menu", "", "a menu (YAML or pxelinux) to serve at /menu.yaml (/menu.cfg for pxelinux), with http://"+serve.Placeholder+"/ and relative URLs rewritten to the address clients use")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ramboot serve [--addr HOST:PORT] [--menu FILE] [--max-conns N] DIR")
		fmt.Fprintln(stderr, "Serves the files of DIR (Range, HEAD, ETag) for labs and tests; logs requests on stderr.")
		fmt.Fprintln(stderr, "Drops clients that send no request for a minute, or read nothing of a response for a minute.")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "DIR"); err != nil {
		fs.Usage()
		return err
	}
	if *maxConns < 1 {
		return fmt.Errorf("%w: --max-conns %d: want at least 1", errUsage, *maxConns)
	}
	logger := log.New(stderr, "", log.LstdFlags)
	h, err := serve.New(pos[0], serve.Options{Menu: *menu, Logf: logger.Printf})
	if err != nil {
		return err
	}
	defer h.Close()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *addr)
	if err != nil {
		return err
	}
	// The timeouts (serve.DefaultTimeouts) and the cap free the connections of idle and
	// stalled clients; a slow download that keeps reading has no time limit.
	srv := h.Server(logger)
	ln = serve.LimitListener(ln, *maxConns)
	url := "http://" + ln.Addr().String() + "/"
	fmt.Fprintf(stdout, "serving %s at %s\n", pos[0], url)
	if p := h.MenuPath(); p != "" {
		fmt.Fprintf(stdout, "menu %s at %s%s\n", *menu, url, p[1:])
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
