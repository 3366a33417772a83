package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/ramboot/ramboot/internal/authenticode"
	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/pemkey"
	"github.com/ramboot/ramboot/internal/uki"
	"github.com/ramboot/ramboot/loader"
)

// ukiOptions are uki's flags; the initramfs's own are initramfs's.
type ukiOptions struct {
	initramfs                     initramfsOptions
	kernel, initrd, cmdline, stub string
	key, cert, out, verify        string
	keyPassword, compression      string
}

func ukiFlags(o *ukiOptions) *cmdFlags {
	fs := newFlags("uki", "", 0,
		"Builds a Unified Kernel Image: systemd's EFI stub with the kernel, the initramfs and the command",
		"line, one EFI binary for UEFI HTTP boot. Without --initrd it builds ramboot's initramfs, from the",
		"flags of ramboot initramfs (--modules DIR and the rest). --key and --cert sign it for Secure",
		"Boot (Authenticode, as sbsign does).",
		"--verify FILE lists a PE image's sections and signatures instead: with --cert, it fails unless",
		"the first signature (the one shim and the kernel check) verifies and is by CERT or a key CERT issued.")
	fs.StringVar(&o.kernel, "kernel", "", "the kernel `VMLINUZ` (x86 bzImage, or an EFI-stub kernel)")
	fs.StringVar(&o.initrd, "initrd", "", "put this initramfs `FILE` in the UKI instead of building ramboot's")
	fs.StringVar(&o.cmdline, "cmdline", "", "the kernel command `LINE` (with Secure Boot on, systemd's stub ignores any other)")
	fs.StringVar(&o.stub, "stub", "", "systemd's EFI stub `FILE` (default "+uki.StubDir+"/linuxARCH.efi.stub for the kernel's architecture, from systemd-boot-efi)")
	fs.StringVar(&o.key, "key", "", "sign with this PEM private `KEY` (RSA for firmware; PKCS #8, encrypted or not, PKCS #1 or EC)")
	fs.StringVar(&o.keyPassword, "key-password-file", "", "--key's password is the first line of `FILE` (default: ask on the terminal when the key is encrypted)")
	fs.StringVar(&o.cert, "cert", "", "the PEM `CERT` of --key; with --verify, the certificate to check the signature against")
	fs.StringVar(&o.out, "o", "", "write the UKI to `OUT` (an EFI binary: name it .efi)")
	fs.StringVar(&o.verify, "verify", "", "list the sections and signatures of this PE `FILE` (a UKI), and check them")
	fs.StringVar(&o.compression, "compression", "zst", "compress the built initramfs with `ALGO`: zst, xz, gz or none")
	o.initramfs.addFlags(fs)
	return fs
}

func runUKI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o ukiOptions
	fs := ukiFlags(&o)
	if _, err := fs.parse(args, stdout, stderr); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	usageErr := func(format string, a ...any) error {
		fs.printUsage(stderr)
		return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
	}
	if o.verify != "" {
		for name := range set {
			if name != "verify" && name != "cert" {
				return usageErr("--verify takes only --cert, not %s", dashes(name))
			}
		}
		return verifyUKI(o.verify, o.cert, stdout)
	}
	switch {
	case o.kernel == "":
		return usageErr("--kernel VMLINUZ is required")
	case o.out == "":
		return usageErr("-o OUT is required")
	case (o.key == "") != (o.cert == ""):
		return usageErr("--key and --cert go together")
	}
	if o.initrd != "" {
		for name := range set {
			if ukiInitramfsFlag(name) {
				return usageErr("--initrd FILE is the initramfs: %s builds one", dashes(name))
			}
		}
	}
	ext, ok := map[string]string{"zst": ".cpio.zst", "xz": ".cpio.xz", "gz": ".cpio.gz", "none": ".cpio"}[o.compression]
	if !ok {
		return usageErr("--compression %q: want zst, xz, gz or none", o.compression)
	}
	var signer crypto.Signer
	var cert *x509.Certificate
	if o.key != "" {
		var err error
		if signer, cert, err = loadSigningKey(ctx, o.key, o.cert, o.keyPassword, stderr); err != nil {
			return err
		}
	}
	kernel, err := os.ReadFile(o.kernel)
	if err != nil {
		return err
	}
	k, err := uki.ParseKernel(kernel)
	if err != nil {
		return fmt.Errorf("%s: %w", o.kernel, err)
	}
	stubFile := o.stub
	if stubFile == "" {
		stubFile = k.Arch.DefaultStub()
	}
	stub, err := os.ReadFile(stubFile)
	if err != nil {
		if o.stub == "" && errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no stub for %s at %s: install systemd-boot-efi, or give --stub FILE", k.Arch, stubFile)
		}
		return err
	}
	spec := uki.Spec{Stub: stub, Kernel: kernel, Cmdline: o.cmdline, Version: ukiVersion()}
	if o.initrd != "" {
		if spec.Initrd, err = os.ReadFile(o.initrd); err != nil {
			return err
		}
	} else {
		if spec.Initrd, spec.Release, err = buildUKIInitramfs(&o.initramfs, ext, stderr); err != nil {
			return err
		}
	}
	img, err := uki.Build(spec)
	if err != nil {
		return err
	}
	signed := ""
	if signer != nil {
		if img, err = authenticode.Sign(img, cert, signer); err != nil {
			return err
		}
		signed = ", signed by " + cert.Subject.String()
	}
	if err := writeFileAtomic(o.out, img); err != nil {
		return err
	}
	release := spec.Release
	if release == "" {
		release = k.Release
	}
	fmt.Fprintf(stderr, "%s: %s UKI of %s (kernel %s, initramfs %s) on %s%s\n", o.out, loader.HumanBytes(int64(len(img))),
		orDash(release), loader.HumanBytes(int64(len(kernel))), loader.HumanBytes(int64(len(spec.Initrd))), stubFile, signed)
	return nil
}

// ukiInitramfsFlag reports whether name is one of the flags that build the initramfs.
func ukiInitramfsFlag(name string) bool {
	found := false
	initramfsFlags(new(initramfsOptions)).VisitAll(func(f *flag.Flag) {
		if f.Name == name && name != "o" {
			found = true
		}
	})
	return found
}

// buildUKIInitramfs builds ramboot's initramfs in memory, as ramboot initramfs would write
// it to a file ending in ext, and says what went in, as ramboot initramfs does. It returns
// the kernel release of the modules ("" without --modules).
func buildUKIInitramfs(o *initramfsOptions, ext string, stderr io.Writer) ([]byte, string, error) {
	s, err := o.buildSpec()
	if err != nil {
		return nil, "", err
	}
	var buf bytes.Buffer
	cw, err := initramfs.Compressor(ext, &buf)
	if err != nil {
		return nil, "", err
	}
	st, err := initramfs.Write(cw, s)
	if err != nil {
		return nil, "", fmt.Errorf("building the initramfs: %w", err)
	}
	if err := cw.Close(); err != nil {
		return nil, "", fmt.Errorf("compressing the initramfs: %w", err)
	}
	for _, l := range chosenLines(st, o.verbose) {
		fmt.Fprintln(stderr, l)
	}
	kernel := ""
	if st.KernelVer != "" {
		kernel = fmt.Sprintf(", %d modules for %s", st.Modules, st.KernelVer)
	}
	fmt.Fprintf(stderr, "initramfs: %s (%s uncompressed), %d entries%s%s\n", loader.HumanBytes(int64(buf.Len())),
		loader.HumanBytes(st.Uncompressed), st.Files, kernel, zstdNote(ext))
	for _, w := range moduleWarnings(s, st) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	return buf.Bytes(), st.KernelVer, nil
}

// ukiVersion is ramboot's version for the UKI's .osrel and SBAT entry.
func ukiVersion() string {
	bi, _ := debug.ReadBuildInfo()
	if f := strings.Fields(versionString(bi)); len(f) > 1 {
		return f[1]
	}
	return "(devel)"
}

func orDash(s string) string {
	if s == "" {
		return "an unknown release"
	}
	return s
}

// writeFileAtomic writes b to out through a temporary file renamed over it.
func writeFileAtomic(out string, b []byte) error {
	f, err := createOutput(out, 0o644)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return os.Rename(f.Name(), out)
}

// loadSigningKey reads a PEM private key, asking for its password (the first line of
// passwordFile, else on the terminal) when it is encrypted, and the PEM certificate that goes
// with it.
func loadSigningKey(ctx context.Context, keyFile, certFile, passwordFile string, stderr io.Writer) (crypto.Signer, *x509.Certificate, error) {
	cert, err := loadCert(certFile)
	if err != nil {
		return nil, nil, err
	}
	text, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	key, err := pemkey.PrivateKey(text, func() (string, error) {
		return readPassword(ctx, passwordFile, "password for "+keyFile+": ", false, stderr)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	// Checked before the UKI is built, not after.
	if pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s is not the key of %s", keyFile, certFile)
	}
	return key, cert, nil
}

// loadCert reads the first certificate of a PEM file.
func loadCert(file string) (*x509.Certificate, error) {
	text, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	c, err := pemkey.Certificate(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// verifyUKI prints the sections and signatures of a PE image. It fails when a signature does
// not verify, and with certFile, unless the first signature is trusted by it: the kernel
// (kexec) and shim check only the first; firmware accepts an image when any signature is
// trusted by db and none is forbidden by dbx.
func verifyUKI(file, certFile string, w io.Writer) error {
	var ca *x509.Certificate
	if certFile != "" {
		var err error
		if ca, err = loadCert(certFile); err != nil {
			return err
		}
	}
	img, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	info, err := uki.Inspect(img)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	fmt.Fprintf(w, "%s: %s, %d sections\n", file, loader.HumanBytes(int64(len(img))), len(info.Sections))
	if info.PrettyName != "" {
		fmt.Fprintf(w, "os-release: %s\n", info.PrettyName)
	}
	if info.Uname != "" {
		fmt.Fprintf(w, "kernel: %s\n", info.Uname)
	}
	if info.Cmdline != "" {
		fmt.Fprintf(w, "cmdline: %s\n", info.Cmdline)
	}
	fmt.Fprintf(w, "  %-8s %10s %10s\n", "section", "size", "address")
	for _, s := range info.Sections {
		fmt.Fprintf(w, "  %-8s %10d %#10x\n", s.Name, s.VirtualSize, s.VirtualAddress)
	}
	sigs, err := authenticode.Signatures(img)
	if errors.Is(err, authenticode.ErrNotSigned) {
		fmt.Fprintln(w, "not signed")
		if ca != nil {
			return fmt.Errorf("%s: not signed", file)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	var bad error
	firstUntrusted, laterTrusted := false, 0 // laterTrusted: the first signature after the first that CERT trusts
	for i, s := range sigs {
		which := ""
		if i == 0 {
			which = " (the one shim and the kernel check)"
		}
		fmt.Fprintf(w, "signature %d of %d%s: %v by %s\n", i+1, len(sigs), which, s.ImageHash, s.Subject())
		if err := s.Verify(img); err != nil {
			fmt.Fprintf(w, "  does not verify: %v\n", err)
			bad = errors.Join(bad, fmt.Errorf("signature %d: %w", i+1, err))
			continue
		}
		fmt.Fprintln(w, "  verifies: the image is the one signed")
		if ca != nil {
			trusted := s.TrustedBy(ca)
			fmt.Fprintf(w, "  by %s: %s\n", certFile, yesNo(trusted))
			firstUntrusted = firstUntrusted || i == 0 && !trusted
			if i > 0 && trusted && laterTrusted == 0 {
				laterTrusted = i + 1
			}
		}
	}
	if firstUntrusted {
		msg := fmt.Sprintf("the first signature is not by %s (%s) or a key it issued", certFile, ca.Subject)
		if laterTrusted > 0 {
			msg += fmt.Sprintf("; signature %d is: firmware accepts that, the kernel (kexec) and shim do not", laterTrusted)
		}
		bad = errors.Join(bad, errors.New(msg))
	}
	if bad != nil {
		return fmt.Errorf("%s: %w", file, bad)
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
