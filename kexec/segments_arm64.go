package kexec

import (
	"os"

	"github.com/u-root/u-root/pkg/boot/linux"
)

// loadSegments is the kexec_load fallback, u-root's arm64 Image loader: Debian 12's arm64
// kernels have no kexec_file_load (CONFIG_KEXEC_FILE is off), so on arm64 it is how every
// kexec happens.
func loadSegments(kernel, initrd *os.File, cmdline string) error {
	return linux.KexecLoad(kernel, initrd, cmdline, nil, nil)
}
