package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/loader"
)

// initramfsOptions are initramfs's flags.
type initramfsOptions struct {
	spec            initramfs.Spec
	out             string
	prefixes, extra multiFlag
}

func initramfsFlags(o *initramfsOptions) *cmdFlags {
	fs := newFlags("initramfs", "", 0,
		"Builds ramboot's initramfs; OUT's extension picks the compression.",
		"A distribution kernel's network drivers are modules: give its tree with --modules.")
	s := &o.spec
	fs.StringVar(&o.out, "o", "", "write the initramfs to `OUT`: .cpio, .cpio.gz, .cpio.xz or .cpio.zst (required)")
	fs.require("o")
	fs.StringVar(&s.Init, "init", defaultInit(), "pack this `FILE` as /init (a static binary)")
	fs.StringVar(&s.Modules, "modules", "", "pack the network drivers, virtio and their dependencies from this kernel's /lib/modules/RELEASE `DIR` (RELEASE is read from the modules)")
	fs.Var(&o.prefixes, "module-dir", "pack every module under this `DIR` of the tree instead of the defaults (repeatable, e.g. kernel/drivers/net/)")
	fs.Var(&o.extra, "module", "also pack the module `NAME` and its dependencies (repeatable)")
	fs.BoolVar(&s.Storage, "storage", false, "also pack block, SCSI, ATA, NVMe, MD and file-system modules")
	fs.StringVar(&s.Firmware, "firmware", "", "pack this /lib/firmware `DIR`")
	fs.StringVar(&s.Busybox, "busybox", "", "pack this static busybox `FILE`: the recovery shell")
	fs.StringVar(&s.CA, "ca", "", "trust this PEM CA bundle `FILE` for https (default: "+initramfs.HostCA+" when present)")
	fs.StringVar(&s.RegistryAuth, "registry-auth", "", "embed this docker config.json `FILE`: credentials for docker:// images (its \"auths\")")
	fs.StringVar(&s.Hooks, "hooks", "", "pack this `DIR` of hooks: pre-network/, pre-fetch/, post-extract/")
	fs.StringVar(&s.Menu, "menu", "", "embed this menu `FILE`")
	fs.StringVar(&s.EmbedRootfs, "embed-rootfs", "", "embed this root-filesystem image `FILE` (boot it with ramroot=/rootfs/NAME)")
	return fs
}

func runInitramfs(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o initramfsOptions
	fs := initramfsFlags(&o)
	if _, err := fs.parse(args, stdout, stderr); err != nil {
		return err
	}
	if o.out == "" {
		fs.printUsage(stderr)
		return fmt.Errorf("%w: -o OUT is required", errUsage)
	}
	s := o.spec
	s.ModulePrefixes, s.ExtraModules = o.prefixes, o.extra
	for i, p := range s.ModulePrefixes {
		s.ModulePrefixes[i] = strings.TrimSuffix(p, "/") + "/"
	}
	f, err := createOutput(o.out, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cw, err := initramfs.Compressor(o.out, f)
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
	if err := os.Rename(f.Name(), o.out); err != nil {
		return err
	}
	kernel := ""
	if st.KernelVer != "" {
		kernel = fmt.Sprintf(", %d modules for %s", st.Modules, st.KernelVer)
	}
	fmt.Fprintf(stderr, "%s: %s (%s uncompressed), %d entries%s\n", o.out, loader.HumanBytes(info.Size()),
		loader.HumanBytes(st.Uncompressed), st.Files, kernel)
	for _, w := range moduleWarnings(s, st) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return nil
}

// moduleWarnings says when an initramfs will likely find no network: a distribution kernel
// (Debian's, Ubuntu's, Fedora's) has its network drivers as modules, and /init can only load
// the ones packed.
func moduleWarnings(s initramfs.Spec, st *initramfs.Stats) []string {
	switch {
	case s.Modules == "":
		return []string{"no --modules: a distribution kernel's network drivers are modules, and without them /init finds no network; " +
			"pass --modules /lib/modules/RELEASE of the kernel you boot (fine for a kernel with its drivers built in)"}
	case st.NetModules == 0:
		return []string{fmt.Sprintf("no network driver (kernel/drivers/net/) among the modules packed from %s: "+
			"a distribution kernel needs them (fine for a kernel with its drivers built in)", s.Modules)}
	}
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
