// Package kexec loads a Linux kernel, its initrds and a command line for kexec, and executes
// it. Loading and executing are separate: a loaded image can still be abandoned (the menu goes
// back), Exec does not return.
//
// Load prefers kexec_file_load(2) and falls back to kexec_load(2) (u-root's bzImage loader)
// only where the kernel does not support file loading for this image (ENOSYS, ENOEXEC).
package kexec

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	ukexec "github.com/u-root/u-root/pkg/boot/kexec"
	"github.com/u-root/u-root/pkg/boot/linux"
	"golang.org/x/sys/unix"
)

// Image is what to kexec into: local files (already fetched and verified).
type Image struct {
	Kernel  string
	Initrds []string
	Cmdline string
}

// BootIF renders a MAC as pxelinux's BOOTIF value (01 = Ethernet).
func BootIF(mac net.HardwareAddr) string {
	return "01-" + strings.ReplaceAll(mac.String(), ":", "-")
}

// ComposeCmdline returns cmdline with BOOTIF= of the boot NIC appended when it has none (so the
// next kernel's ramboot, or the seed's scripts, keep using the same NIC), and extra parameters
// (e.g. ip= of the current lease, when an entry asks for it) appended after it.
func ComposeCmdline(cmdline string, bootif net.HardwareAddr, extra ...string) string {
	parts := []string{strings.TrimSpace(cmdline)}
	if len(bootif) == 6 && !hasParam(cmdline, "BOOTIF") {
		parts = append(parts, "BOOTIF="+BootIF(bootif))
	}
	for _, e := range extra {
		if k, _, _ := strings.Cut(e, "="); e != "" && !hasParam(cmdline, k) {
			parts = append(parts, e)
		}
	}
	return strings.TrimSpace(strings.Join(parts, " "))
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
// compressed or not) into one file under tmpDir, since kexec_file_load takes one.
func Load(img Image, tmpDir string, logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	kernel, err := os.Open(img.Kernel)
	if err != nil {
		return fmt.Errorf("kexec: opening kernel: %w", err)
	}
	defer kernel.Close()
	var initrd *os.File
	if len(img.Initrds) > 0 {
		if initrd, err = catInitrds(img.Initrds, tmpDir); err != nil {
			return fmt.Errorf("kexec: %w", err)
		}
		defer initrd.Close()
	}
	err = ukexec.FileLoad(kernel, initrd, img.Cmdline)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.ENOEXEC) {
		return fmt.Errorf("kexec_file_load: %s: %w", explain(err), err)
	}
	logf("kexec_file_load not supported for this kernel (%v): trying kexec_load", err)
	if initrd != nil {
		initrd.Seek(0, io.SeekStart)
	}
	if err := linux.KexecLoad(kernel, initrd, img.Cmdline, nil, nil); err != nil {
		return fmt.Errorf("kexec_load: %s: %w", explain(err), err)
	}
	return nil
}

// explain turns the errnos of the kexec calls into what an operator can act on.
func explain(err error) string {
	switch {
	case errors.Is(err, unix.EKEYREJECTED), errors.Is(err, unix.EBADMSG):
		return "the kernel's signature was rejected (secure boot requires a signed kernel)"
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
