package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/loader"
)

func runInitramfs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("ramboot initramfs", flag.ContinueOnError)
	var s initramfs.Spec
	var prefixes, extra multiFlag
	out := fs.String("o", "", "output file: .cpio, .cpio.gz, .cpio.xz or .cpio.zst (required)")
	fs.StringVar(&s.Init, "init", defaultInit(), "the static /init binary")
	fs.StringVar(&s.Modules, "modules", "", "a kernel's /lib/modules/<version> tree (network drivers, virtio and their dependencies are packed)")
	fs.Var(&prefixes, "module-dir", "pack every module under this directory of the tree instead of the defaults (repeatable, e.g. kernel/drivers/net/)")
	fs.Var(&extra, "module", "also pack this module and its dependencies (repeatable)")
	fs.BoolVar(&s.Storage, "storage", false, "also pack block, SCSI, ATA, NVMe, MD and file-system modules")
	fs.StringVar(&s.Firmware, "firmware", "", "a /lib/firmware tree to pack")
	fs.StringVar(&s.Busybox, "busybox", "", "a static busybox: the recovery shell")
	fs.StringVar(&s.CA, "ca", "", "PEM CA bundle for https (default: "+initramfs.HostCA+" when present)")
	fs.StringVar(&s.Hooks, "hooks", "", "a directory of hooks: pre-network/, pre-fetch/, post-extract/")
	fs.StringVar(&s.Menu, "menu", "", "a menu file to embed")
	fs.StringVar(&s.EmbedRootfs, "embed-rootfs", "", "a root-filesystem image to embed (boot it with ramroot=/rootfs/NAME)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: ramboot initramfs [--modules DIR] [--busybox FILE] [--ca FILE] [--hooks DIR] [--embed-rootfs FILE] -o OUT")
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments besides flags"); err != nil {
		fs.Usage()
		return err
	}
	if *out == "" {
		fs.Usage()
		return fmt.Errorf("%w: -o OUT is required", errUsage)
	}
	s.ModulePrefixes, s.ExtraModules = prefixes, extra
	for i, p := range s.ModulePrefixes {
		s.ModulePrefixes[i] = strings.TrimSuffix(p, "/") + "/"
	}
	f, err := os.CreateTemp(filepath.Dir(*out), ".initramfs-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cw, err := initramfs.Compressor(*out, f)
	if err != nil {
		return err
	}
	st, err := initramfs.Write(cw, s)
	if err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), *out); err != nil {
		return err
	}
	kernel := ""
	if st.KernelVer != "" {
		kernel = fmt.Sprintf(", %d modules for %s", st.Modules, st.KernelVer)
	}
	fmt.Fprintf(stderr, "%s: %s (%s uncompressed), %d entries%s\n", *out, loader.HumanBytes(info.Size()),
		loader.HumanBytes(st.Uncompressed), st.Files, kernel)
	return nil
}

// defaultInit is bin/ramboot-init beside this binary, as `make build` leaves it.
func defaultInit() string {
	exe, err := os.Executable()
	if err != nil {
		return "ramboot-init"
	}
	return filepath.Join(filepath.Dir(exe), "ramboot-init")
}
