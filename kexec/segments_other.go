//go:build !arm64

package kexec

import (
	"errors"
	"fmt"
	"os"
	"runtime"
)

// loadSegments would be the kexec_load fallback. On amd64 it is not built: every kernel a
// fleet runs there has kexec_file_load (Linux 3.17 and later with CONFIG_KEXEC_FILE, which
// Debian, Ubuntu, RHEL and Fedora set, and the only call lockdown allows), and u-root's loader
// behind kexec_load costs /init 0.5 MiB of its 12 MiB budget.
func loadSegments(_, _ *os.File, _ string) error {
	return fmt.Errorf("%w: this kernel has no kexec_file_load (CONFIG_KEXEC_FILE), and ramboot's /init for %s has no kexec_load loader; build the next kernel with CONFIG_KEXEC_FILE=y", errors.ErrUnsupported, runtime.GOARCH)
}
