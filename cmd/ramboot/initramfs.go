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
	spec                  initramfs.Spec
	out                   string
	prefixes, extra, sets multiFlag
	trust                 multiFlag
	verbose               bool
	arch                  string
}

func initramfsFlags(o *initramfsOptions) *cmdFlags {
	fs := newFlags("initramfs", "", 0,
		"Builds ramboot's initramfs; OUT's extension picks the compression.",
		"A distribution kernel's network drivers are modules: give its tree with --modules.",
		"Modules are chosen by where they sit in the kernel's tree, with their dependencies;",
		"the set "+initramfs.DefaultModuleSet+" is always packed (unless --module-dir), --modules-set adds one of:")
	for _, set := range initramfs.ModuleSets {
		fs.about = append(fs.about, fmt.Sprintf("  %-16s %s", set.Name, set.Doc))
	}
	fs.StringVar(&o.out, "o", "", "write the initramfs to `OUT`: .cpio, .cpio.gz, .cpio.xz or .cpio.zst (required)")
	fs.require("o")
	o.addFlags(fs)
	return fs
}

// addFlags adds the flags that say what goes into the initramfs (all but -o): ramboot uki
// builds one with them too.
func (o *initramfsOptions) addFlags(fs *cmdFlags) {
	s := &o.spec
	fs.StringVar(&s.Init, "init", "", "pack this `FILE` as /init (a static binary; default: ramboot-init beside this program, ramboot-init-arm64 for arm64, as make build leaves them)")
	fs.StringVar(&o.arch, "arch", "", "build the initramfs for `ARCH`, amd64 or arm64: the /init for it, and modules and --init must be for it (default: the architecture of the --modules, else amd64)")
	fs.StringVar(&s.Modules, "modules", "", "pack the wired network drivers, virtio and their dependencies from this kernel's /lib/modules/RELEASE `DIR` (RELEASE is read from the modules)")
	fs.Var(&o.sets, "modules-set", "also pack this `SET` of modules (repeatable, or comma-separated): "+strings.Join(initramfs.ModuleSetNames(), ", "))
	fs.Var(&o.prefixes, "module-dir", "pack every module under this `DIR` of the tree instead of the set "+initramfs.DefaultModuleSet+" (repeatable, e.g. kernel/drivers/net/)")
	fs.Var(&o.extra, "module", "also pack the module `NAME` and its dependencies (repeatable)")
	fs.BoolVar(&s.Storage, "storage", false, "same as --modules-set storage")
	fs.BoolVar(&o.verbose, "v", false, "list every packed module, by the group that chose it")
	fs.StringVar(&s.Firmware, "firmware", "", "pack the files of this /lib/firmware `DIR` that the packed modules ask for (all of it without --modules)")
	fs.StringVar(&s.Busybox, "busybox", "", "pack this static busybox `FILE`: the recovery shell")
	fs.StringVar(&s.CA, "ca", "", "trust this PEM CA bundle `FILE` for https (default: "+initramfs.HostCA+" when present)")
	fs.StringVar(&s.RegistryAuth, "registry-auth", "", "embed this docker config.json `FILE`: credentials for docker:// images (its \"auths\")")
	fs.StringVar(&s.Hooks, "hooks", "", "pack this `DIR` of hooks: pre-network/, pre-fetch/, post-extract/")
	fs.StringVar(&s.Menu, "menu", "", "embed this menu `FILE`")
	fs.StringVar(&s.EmbedRootfs, "embed-rootfs", "", "embed this root-filesystem image `FILE` (boot it with ramroot=/rootfs/NAME)")
	fs.Var(&o.trust, "trust", "trust this minisign public key `PUBKEY`: menus and images must then be signed by an anchor (repeatable)")
	fs.StringVar(&s.PasswordHash, "password-hash", "", "lock e (edit), the shell and locked entries with this `HASH` (ramboot passwd)")
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
	s, err := o.buildSpec()
	if err != nil {
		return err
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
	for _, l := range chosenLines(st, o.verbose) {
		fmt.Fprintln(stderr, l)
	}
	fmt.Fprintf(stderr, "%s: %s (%s uncompressed), %d entries%s%s\n", o.out, loader.HumanBytes(info.Size()),
		loader.HumanBytes(st.Uncompressed), st.Files, kernel, zstdNote(o.out))
	for _, w := range moduleWarnings(s, st) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return nil
}

// buildSpec is the initramfs the flags describe.
func (o *initramfsOptions) buildSpec() (initramfs.Spec, error) {
	s := o.spec
	s.ModulePrefixes, s.ExtraModules, s.Trust = o.prefixes, o.extra, o.trust
	for _, v := range o.sets {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			}
			if _, err := initramfs.LookupModuleSet(name); err != nil {
				return s, fmt.Errorf("%w: --modules-set: %v", errUsage, err)
			}
			s.ModuleSets = append(s.ModuleSets, name)
		}
	}
	for i, p := range s.ModulePrefixes {
		s.ModulePrefixes[i] = strings.TrimSuffix(p, "/") + "/"
	}
	if o.arch != "" {
		a, err := initramfs.ParseArch(o.arch)
		if err != nil {
			return s, fmt.Errorf("%w: --arch: %v", errUsage, err)
		}
		s.Arch = a
	}
	if s.Init == "" {
		dir := "."
		if exe, err := os.Executable(); err == nil {
			dir = filepath.Dir(exe)
		}
		init, err := defaultInit(s, dir)
		if err != nil {
			return s, err
		}
		s.Init = init
	}
	return s, nil
}

// defaultInit is the /init `make build` leaves in dir (beside this binary) for the
// initramfs's architecture: --arch, else the modules', else amd64 (see initramfs.InitName).
func defaultInit(s initramfs.Spec, dir string) (string, error) {
	a := s.Arch
	if a == "" && s.Modules != "" {
		var err error
		if a, err = initramfs.ModulesArch(s.Modules); err != nil {
			return "", fmt.Errorf("choosing the /init: %w (give --arch or --init FILE)", err)
		}
	}
	if a == "" {
		a = initramfs.AMD64
	}
	p := filepath.Join(dir, initramfs.InitName(a))
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no /init for %s at %s: run make build, or give --init FILE", a, p)
	}
	return p, nil
}

// chosenLines say where the packed modules and firmware came from, a line each:
// "modules ethernet: 187 (38.2 MiB)", and with verbose each module below its group, and the
// firmware files that were not found.
func chosenLines(st *initramfs.Stats, verbose bool) []string {
	var out []string
	for _, g := range st.Chosen {
		out = append(out, fmt.Sprintf("modules %s: %d (%s)", g.Name, g.Modules, loader.HumanBytes(g.Bytes)))
		if verbose {
			for _, p := range g.Paths {
				out = append(out, "  "+p)
			}
		}
	}
	if st.Firmware > 0 || len(st.FirmwareMissing) > 0 {
		l := fmt.Sprintf("firmware: %d files (%s)", st.Firmware, loader.HumanBytes(st.FirmwareBytes))
		if n := len(st.FirmwareMissing); n > 0 {
			l += fmt.Sprintf("; %d that modules name are not in the tree", n)
		}
		out = append(out, l)
		if verbose {
			for _, f := range st.FirmwareMissing {
				out = append(out, "  not found: "+f)
			}
		}
	}
	return out
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

// zstdNote says which encoder made a .cpio.zst: the zstd command makes it about 12% smaller.
func zstdNote(out string) string {
	if !strings.HasSuffix(out, ".zst") && !strings.HasSuffix(out, ".zstd") {
		return ""
	}
	if initramfs.ZstdTool() != "" {
		return fmt.Sprintf(", zstd -%d", initramfs.ZstdLevel)
	}
	return ", Go zstd encoder (install zstd for a smaller file)"
}
