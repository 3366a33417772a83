package kexec

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Lockdown is the kernel's lockdown mode, as /sys/kernel/security/lockdown names it: "none",
// "integrity" or "confidentiality". Debian's kernels lock down to integrity when the firmware
// booted them with Secure Boot on; lockdown= on the command line also does. Under lockdown
// kexec_load(2) is refused and kexec_file_load(2) loads only kernels signed by a key the
// running kernel trusts (its built-in and secondary keyrings, and the platform keyring: the
// firmware's db).
type Lockdown string

// LockdownNone: not locked down (also what a kernel without the lockdown LSM is).
const LockdownNone Lockdown = "none"

// Locked reports whether the kernel is locked down (any mode but none).
func (l Lockdown) Locked() bool { return l != "" && l != LockdownNone }

// ParseLockdown reads the lockdown file's contents: the modes the kernel offers, the active one
// in brackets ("none [integrity] confidentiality").
func ParseLockdown(s string) (Lockdown, error) {
	var active Lockdown
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") && len(f) > 2 {
			if active != "" {
				return "", fmt.Errorf("lockdown %q: more than one active mode", s)
			}
			active = Lockdown(f[1 : len(f)-1])
		}
	}
	if active == "" {
		return "", fmt.Errorf("lockdown %q: no active mode", s)
	}
	return active, nil
}

// Files the lockdown check reads (other files in tests).
var (
	lockdownFile = "/sys/kernel/security/lockdown"
	// secureBootVar is the firmware's SecureBoot variable in efivarfs: 4 bytes of attributes,
	// then 1 when Secure Boot is on.
	secureBootVar = "/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"
)

// ReadLockdown returns the running kernel's lockdown mode. A kernel without the lockdown LSM,
// or without securityfs mounted (sysinit mounts it), has no file: that reads as none.
func ReadLockdown() (Lockdown, error) {
	b, err := os.ReadFile(lockdownFile)
	if errors.Is(err, os.ErrNotExist) {
		return LockdownNone, nil
	}
	if err != nil {
		return LockdownNone, fmt.Errorf("reading lockdown mode: %w", err)
	}
	return ParseLockdown(string(b))
}

// secureBoot reports whether the firmware says Secure Boot is on (false without UEFI).
func secureBoot() bool {
	b, err := os.ReadFile(secureBootVar)
	return err == nil && len(b) == 5 && b[4] == 1
}
