// Package kexec loads a Linux kernel, its initrds and a command line for kexec, and executes
// it. Loading and executing are separate: a loaded image can still be abandoned (the menu goes
// back), Exec does not return.
//
// On arm64 a gzip-compressed or EFI zboot kernel is unpacked to its raw Image first, the only
// form arm64's kexec_file_load and kexec_load take (arm64.go).
//
// Load prefers kexec_file_load(2) and falls back to kexec_load(2) (u-root's bzImage loader)
// only where the kernel does not support file loading for this image (ENOSYS, ENOEXEC), and
// never under lockdown (Secure Boot), where kexec_load is refused and kexec_file_load loads
// only kernels signed by a key the running kernel trusts. Its refusal is a *RefusedError
// (ErrUntrusted): final, retrying cannot change it.
package kexec

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"

	"github.com/ramboot/ramboot/internal/cmdline"
	ukexec "github.com/u-root/u-root/pkg/boot/kexec"
	"golang.org/x/sys/unix"
)

// Image is what to kexec into: local files (already fetched and verified).
type Image struct {
	Kernel string
	// Name is how errors name the kernel: its URL (Kernel when empty).
	Name    string
	Initrds []string
	Cmdline string
}

// BootIF renders a MAC as pxelinux's BOOTIF value (01 = Ethernet).
func BootIF(mac net.HardwareAddr) string {
	return "01-" + strings.ReplaceAll(mac.String(), ":", "-")
}

// ComposeCmdline returns cmdline with BOOTIF= of the boot NIC appended when it has none (so the
// next kernel's ramboot, or the seed's scripts, keep using the same NIC), and extra parameters
// (the boot network's bond=, vlan=, ip=, …) appended after it, each only when cmdline has no
// parameter of its key. Network parameters (cmdline.IsNetworkParam) are appended only when
// cmdline has no ip=, vlan=, bond=, ifname=, rd.route= or nameserver= at all: the user's own
// network configuration wins whole, since a mix of the two could put a VLAN on a NIC the
// user's line names otherwise. rd.net.timeout.* alone is not a network configuration.
//
// What follows "--" is init's, not the kernel's: parameters are inserted before it.
func ComposeCmdline(line string, bootif net.HardwareAddr, extra ...string) string {
	kernel, initArgs := splitInitArgs(line)
	parts := []string{kernel}
	if len(bootif) == 6 && !hasParam(line, "BOOTIF") {
		parts = append(parts, "BOOTIF="+BootIF(bootif))
	}
	ownNetwork := false
	for _, k := range []string{"ip", "vlan", "bond", "ifname", "rd.route", "nameserver"} {
		ownNetwork = ownNetwork || hasParam(line, k)
	}
	for _, e := range extra {
		k, _, _ := strings.Cut(e, "=")
		if e != "" && !hasParam(line, k) && !(ownNetwork && cmdline.IsNetworkParam(k)) {
			parts = append(parts, e)
		}
	}
	if initArgs != "" {
		parts = append(parts, initArgs)
	}
	return strings.TrimSpace(strings.Join(parts, " "))
}

// splitInitArgs splits a command line at its first "--" word: the kernel's parameters, and
// "--" with init's arguments as written ("" without one).
func splitInitArgs(line string) (kernel, initArgs string) {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }
	for i := 0; i < len(line); {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		start := i
		for i < len(line) && !isSpace(line[i]) {
			i++
		}
		if line[start:i] == "--" {
			return strings.TrimSpace(line[:start]), strings.TrimSpace(line[start:])
		}
	}
	return strings.TrimSpace(line), ""
}

// hasParam reports whether key= (or a bare key) is among the parameters before "--".
func hasParam(cmdline, key string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == "--" {
			return false
		}
		if k, _, _ := strings.Cut(f, "="); k == key {
			return true
		}
	}
	return false
}

// Load loads img for a later Exec. Several initrds are concatenated (cpio archives may be, each
// compressed or not) into one file under tmpDir, since kexec_file_load takes one. Under lockdown
// only kexec_file_load is tried; a signature it refuses is a *RefusedError.
func Load(img Image, tmpDir string, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	name := img.Name
	if name == "" {
		name = img.Kernel
	}
	kernel, err := os.Open(img.Kernel)
	if err != nil {
		return fmt.Errorf("kexec: opening kernel: %w", err)
	}
	defer kernel.Close()
	if kernelArch == "arm64" {
		// arm64's kexec calls take only the raw Image: unpack a gzip or EFI zboot kernel.
		img, err := arm64Image(kernel, tmpDir, logf)
		if err != nil {
			return fmt.Errorf("kexec: %s: %w", name, err)
		}
		if img != kernel {
			defer img.Close()
			kernel = img
		}
	}
	var initrd *os.File
	if len(img.Initrds) > 0 {
		if initrd, err = catInitrds(img.Initrds, tmpDir); err != nil {
			return fmt.Errorf("kexec: %w", err)
		}
		defer initrd.Close()
	}
	mode, err := readLockdown()
	if err != nil {
		// Not known to be locked down: kexec_file_load first, as always; a refusal still
		// reads as one, and kexec_load would be refused with EPERM.
		logf("kexec: %v", err)
	}
	if mode.Locked() {
		logf("kexec: the kernel is locked down (%s): only kexec_file_load, only a kernel signed by a key it trusts", mode)
	}
	err = fileLoad(kernel, initrd, img.Cmdline)
	switch {
	case err == nil:
		return nil
	case refusal(err, mode):
		return &RefusedError{Kernel: name, Lockdown: mode, SecureBoot: secureBoot(), Err: err}
	case !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.ENOEXEC):
		return fmt.Errorf("kexec_file_load: %s: %w", explain(err), err)
	case mode.Locked():
		return fmt.Errorf("kexec_file_load: %s: %w; %w (lockdown=%s)", explain(err), err, ErrLockedDown, mode)
	}
	logf("kexec_file_load not supported for this kernel (%v): trying kexec_load", err)
	if initrd != nil {
		if _, err := initrd.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("kexec: rewinding initrd: %w", err)
		}
	}
	if err := segmentLoad(kernel, initrd, img.Cmdline); err != nil {
		return fmt.Errorf("kexec_load: %s: %w", explain(err), err)
	}
	return nil
}

// The calls Load makes (fakes in tests).
var (
	kernelArch   = runtime.GOARCH // the running kernel's: /init is built for it
	fileLoad     = ukexec.FileLoad
	segmentLoad  = loadSegments
	readLockdown = ReadLockdown
)

// ErrUntrusted: the running kernel refused to load a kernel whose signature it does not trust
// (no signature, a key outside its keyrings, contents changed after signing). Retrying cannot
// help; only a kernel signed by a key the running kernel trusts loads.
var ErrUntrusted = errors.New("kernel not signed by a key the running kernel trusts")

// ErrLockedDown: kexec_file_load cannot load the image and kexec_load, the fallback, is refused
// while the kernel is locked down. Retrying cannot help either.
var ErrLockedDown = errors.New("kexec_load is refused while the kernel is locked down")

// RefusedError is the running kernel's refusal of a kernel's signature. errors.Is matches it
// with ErrUntrusted and with the syscall's errno.
type RefusedError struct {
	Kernel     string // the kernel's URL
	Lockdown   Lockdown
	SecureBoot bool  // the firmware booted with Secure Boot on
	Err        error // kexec_file_load's error
}

func (e *RefusedError) Error() string {
	why := "the kernel enforces signatures on kexec"
	switch {
	case e.Lockdown.Locked() && e.SecureBoot:
		why = "the kernel is locked down by Secure Boot"
	case e.Lockdown.Locked():
		why = fmt.Sprintf("the kernel is locked down (%s)", e.Lockdown)
	}
	s := fmt.Sprintf("%s and %s is not signed by a key it trusts", why, e.Kernel)
	var errno unix.Errno
	if errors.As(e.Err, &errno) {
		s += fmt.Sprintf(" (kexec_file_load: %s: %s)", unix.ErrnoName(errno), refusalReason(errno))
	}
	return s
}

func (e *RefusedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUntrusted) true.
func (e *RefusedError) Is(target error) bool { return target == ErrUntrusted }

// refusal reports whether kexec_file_load's err is the kernel refusing the image's signature.
// The signature check's own errors surface only when the kernel enforces signatures; under
// lockdown without enforcement the kernel returns EPERM for any of them (kexec_file.c,
// kimage_validate_signature).
func refusal(err error, mode Lockdown) bool {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case unix.ENODATA, unix.ENOKEY, unix.EKEYREJECTED, unix.EKEYEXPIRED, unix.EKEYREVOKED,
		unix.EBADMSG, unix.ELIBBAD, unix.ENOPKG:
		return true
	case unix.EPERM:
		return mode.Locked()
	}
	return false
}

// refusalReason says what the kernel's signature check found, in the errno's terms.
func refusalReason(errno unix.Errno) string {
	switch errno {
	case unix.ENODATA:
		return "it has no signature"
	case unix.ENOKEY:
		return "signed, but by no key the kernel trusts"
	case unix.EKEYREJECTED:
		return "its signature does not match its contents"
	case unix.EKEYEXPIRED, unix.EKEYREVOKED:
		return "the signing key expired or was revoked"
	case unix.EBADMSG, unix.ELIBBAD:
		return "its signature or PE headers are malformed"
	case unix.ENOPKG:
		return "its signature uses an algorithm the kernel lacks"
	case unix.EPERM:
		return "not permitted under lockdown"
	}
	return errno.Error()
}

// explain turns the errnos of the kexec calls into what an operator can act on.
func explain(err error) string {
	switch {
	case errors.Is(err, unix.EPERM):
		return "not permitted (kernel lockdown, kexec disabled by sysctl kernel.kexec_load_disabled, or no CAP_SYS_BOOT)"
	case errors.Is(err, unix.ENOEXEC):
		return "not a kernel image this kernel can load (wrong architecture or format)"
	case errors.Is(err, unix.ENOMEM):
		return "not enough memory for the image"
	case errors.Is(err, unix.EBUSY):
		return "kexec is busy"
	case errors.Is(err, unix.EINVAL):
		return "invalid image or command line (too long?)"
	case errors.Is(err, unix.ENOSYS):
		// Debian's arm64 kernels (12 and 13) are built without CONFIG_KEXEC_FILE.
		return "this kernel has no kexec_file_load (built without CONFIG_KEXEC_FILE, as Debian's arm64 kernels are)"
	}
	return "load failed"
}

func catInitrds(paths []string, tmpDir string) (*os.File, error) {
	if len(paths) == 1 {
		return os.Open(paths[0])
	}
	out, err := os.CreateTemp(tmpDir, "initrd-*")
	if err != nil {
		return nil, err
	}
	os.Remove(out.Name())
	var off int64
	for _, p := range paths {
		// Each archive starts 4-byte aligned, as the kernel's unpacker expects.
		if pad := (4 - off%4) % 4; pad > 0 {
			out.Write(make([]byte, pad))
			off += pad
		}
		f, err := os.Open(p)
		if err != nil {
			out.Close()
			return nil, fmt.Errorf("opening initrd: %w", err)
		}
		n, err := io.Copy(out, f)
		f.Close()
		if err != nil {
			out.Close()
			return nil, fmt.Errorf("joining initrds: %w", err)
		}
		off += n
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		out.Close()
		return nil, err
	}
	return out, nil
}

// The calls Exec makes, in order (fakes in tests).
var (
	syncFS      = unix.Sync
	kexecReboot = ukexec.Reboot
)

// Exec boots the loaded image. It does not return on success. DESTRUCTIVE: the running
// system is gone, without unmounting anything; file systems are synced first, as before a
// reboot or power-off (what a hook wrote to a disk).
func Exec() error {
	syncFS()
	if err := kexecReboot(); err != nil {
		return fmt.Errorf("kexec reboot: %w", err)
	}
	return errors.New("kexec reboot returned")
}
