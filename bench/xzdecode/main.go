// Command xzdecode decodes an .xz file to standard output with ramboot's decoder
// (internal/xzpar), so that `make bench` can set its LZMA decoding speed beside
// `xz -T1 -d -c FILE`: by default on one worker and one CPU (GOMAXPROCS=1).
//
//	xzdecode [-workers N] [-procs N] FILE > out
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/ramboot/ramboot/internal/xzpar"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "xzdecode: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("xzdecode", flag.ContinueOnError)
	workers := fs.Int("workers", 1, "blocks decoded at once")
	procs := fs.Int("procs", 1, "GOMAXPROCS (0: leave it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("usage: xzdecode [-workers N] [-procs N] FILE")
	}
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	f, err := os.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := xzpar.NewReaderOptions(bufio.NewReaderSize(f, 1<<20), xzpar.Options{Workers: *workers})
	if err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	defer r.Close()
	w := bufio.NewWriterSize(stdout, 1<<20)
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	return w.Flush()
}
