// Command genimage writes a deterministic tar archive shaped like a Debian root file system: the
// input of the loader benchmark (bench/run.sh).
//
// The same -mb and -seed give the same bytes on every machine (for one Go release: the .gz
// members come from compress/gzip). The content is generated rather than copied from the host so
// that figures compare across machines. Like a real root it holds tens of thousands of small
// text files (configuration, documentation, scripts, headers: compressible) in a deep tree,
// ELF-like executables and libraries with x86-like code (less compressible), a few large
// libraries, already-compressed members (.gz documentation, firmware blobs: incompressible),
// symlinks (usrmerge, alternatives, .so chains, dangling ones), hard links, setuid and setgid
// files, device nodes, sticky directories, non-root owners, long and non-ASCII names, file
// capabilities (security.capability on ping, dumpcap, ...) and user xattrs. It is written in GNU
// tar's POSIX format, as `tar --xattrs` (which needs it) writes a root: a PAX header with atime
// and ctime before every entry. With -mb 150 (`make bench`'s default) that is about 175 MB of tar
// and 11,700 entries.
//
// Names are "./"-prefixed as `tar -C root -c .` writes them. Owner names are left empty on
// purpose: GNU tar as root maps names through the local passwd, and would then disagree with a
// numeric extraction on some hosts.
//
// Usage:
//
//	genimage [-mb 400] [-seed 1] -o rootfs.tar
//
// The file is written beside OUT and renamed into place, so an interrupted run never leaves a
// truncated archive that a cache could mistake for a finished one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "genimage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("genimage", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mb := fs.Int("mb", 400, "approximate size of the file content, in MB (10^6 bytes)")
	seed := fs.Uint64("seed", 1, "seed of the generator: the same seed and size give the same archive")
	out := fs.String("o", "", "output tar file (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("usage: genimage [-mb N] [-seed N] -o OUT.tar")
	}
	if *mb < 1 {
		return fmt.Errorf("-mb %d: must be at least 1", *mb)
	}

	t := buildTree(*seed, int64(*mb)*1_000_000)

	tmp, err := os.CreateTemp(filepath.Dir(*out), ".genimage-*.tar")
	if err != nil {
		return fmt.Errorf("creating output: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	st, err := t.write(ctx, tmp)
	if err == nil {
		err = tmp.Chmod(0o644) // CreateTemp's 0600 would only get in the way
	}
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	if err := os.Rename(tmp.Name(), *out); err != nil {
		return fmt.Errorf("writing %s: %w", *out, err)
	}
	st.print(stdout, *out)
	return nil
}
