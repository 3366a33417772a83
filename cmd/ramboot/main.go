// Command ramboot is ramboot's host tool: it fetches images exactly as /init does, builds the
// initramfs and root-filesystem images, checks menus and serves all of them. Each subcommand
// is one file; /init (cmd/ramboot-init) shares none of this code but the loader.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks errors for which the usage text is worth printing.
var errUsage = errors.New("usage")

type command struct {
	name, args, help string
	run              func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"fetch", "[--sha256 HEX] [--mirror URL]... URL DIR", "stream, verify and extract an image into DIR", runFetch},
	{"initramfs", "[--modules DIR] [--busybox FILE] [--ca FILE] [--hooks DIR] [--embed-rootfs FILE] -o OUT", "build the initramfs", runInitramfs},
	{"image", imageArgs, "make a root-filesystem image from a directory, tar or container image", runImage},
	{"menu", "check [--base URL] FILE", "validate a boot menu (YAML or pxelinux) and list its entries", runMenu},
	{"serve", "[--addr HOST:PORT] [--menu FILE] DIR", "serve DIR over HTTP (Range, HEAD, ETag) for labs and tests", runServe},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ramboot COMMAND [ARGS]")
	for _, c := range commands {
		fmt.Fprintf(w, "  ramboot %s %s\n        %s\n", c.name, c.args, c.help)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flagHelp) {
			fmt.Fprintf(os.Stderr, "ramboot %v\n", err)
		}
		if errors.Is(err, flagHelp) {
			os.Exit(0)
		}
		os.Exit(1)
	}
}
