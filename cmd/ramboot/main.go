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

// errUsage marks errors of the command line itself: the usage has been printed, and ramboot
// exits 2.
var errUsage = errors.New("usage")

type command struct {
	name, help string
	// flags returns the command's flag set (bound to throwaway values), for the usage.
	flags func() *cmdFlags
	run   func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"fetch", "stream, verify and extract an image into DIR",
		func() *cmdFlags { return fetchFlags(new(fetchOptions)) }, runFetch},
	{"initramfs", "build the initramfs",
		func() *cmdFlags { return initramfsFlags(new(initramfsOptions)) }, runInitramfs},
	{"keygen", "make a minisign key pair: a trust anchor and the key that signs for it",
		func() *cmdFlags { return keygenFlags(new(keygenOptions)) }, runKeygen},
	{"sign", "sign a menu or an image (FILE.minisig) for /init's chain of trust",
		func() *cmdFlags { return signFlags(new(signOptions)) }, runSign},
	{"passwd", "print a password hash for --password-hash or a signed menu",
		func() *cmdFlags { return passwdFlags(new(passwdOptions)) }, runPasswd},
	{"image", "make a root-filesystem image from a directory, tar or container image",
		func() *cmdFlags { return imageFlags(new(imageOptions)) }, runImage},
	{"menu", "validate a boot menu (YAML or pxelinux) and list its entries",
		func() *cmdFlags { return menuCheckFlags(new(string)) }, runMenu},
	{"uki", "build a Unified Kernel Image (UEFI HTTP boot, Secure Boot signed with --key), or --verify one",
		func() *cmdFlags { return ukiFlags(new(ukiOptions)) }, runUKI},
	{"serve", "serve DIR over HTTP (Range, HEAD, ETag) for labs and tests; boot reports, fleet dashboard",
		func() *cmdFlags { return serveFlags(new(serveOptions)) }, runServe},
	{"version", "print ramboot's version and the Go version that built it",
		versionFlags, runVersion},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: ramboot COMMAND [ARGS]   (ramboot COMMAND --help: a command's flags)")
	for _, c := range commands {
		fmt.Fprintf(w, "%s\n        %s\n", c.flags().usageLine("  "), c.help)
	}
}

// cmdError is the error of a command, printed as "ramboot fetch: ...".
type cmdError struct {
	cmd string
	err error
}

func (e *cmdError) Error() string { return e.cmd + ": " + e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return fmt.Errorf("%w: want a command", errUsage)
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			for _, c := range commands {
				if c.name == args[1] {
					c.flags().printUsage(stdout)
					return nil
				}
			}
		}
		usage(stdout)
		return nil
	case "-version", "--version":
		return runVersion(ctx, args[1:], stdout, stderr)
	}
	for _, c := range commands {
		if c.name == args[0] {
			if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
				return &cmdError{c.name, err}
			}
			return nil
		}
	}
	usage(stderr)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

// exitCode is 0 for success and for --help, 2 for a usage error, 1 for any other.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flagHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	code := exitCode(err)
	if err != nil && code != 0 {
		if _, ok := err.(*cmdError); ok {
			fmt.Fprintf(os.Stderr, "ramboot %v\n", err)
		} else {
			fmt.Fprintf(os.Stderr, "ramboot: %v\n", err)
		}
	}
	os.Exit(code)
}
