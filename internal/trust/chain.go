package trust

import (
	"os"
	"strings"
)

// Chain is what /init trusts, read once at its start from the initramfs.
type Chain struct {
	Policy *Policy
	Lock   *Lock
	TPM    *Measurer
}

// Load reads the anchors in trustDir and the password hash in passwordFile and opens the TPM,
// logging what it found. Nothing here fails a boot: a broken anchor leaves the policy enabled
// (nothing verifies, so only the initramfs's own menus and images boot), a broken password
// hash locks with no way to unlock but a new initramfs.
func Load(trustDir, passwordFile string, logf func(string, ...any)) *Chain {
	c := &Chain{Policy: LoadPolicy(trustDir), Lock: &Lock{Logf: logf}}
	for _, err := range c.Policy.Broken {
		logf("trust: %v: this anchor verifies nothing", err)
	}
	if len(c.Policy.Keys) > 0 {
		logf("trust: %d anchor(s), key %s: menus and images must be signed or pinned", len(c.Policy.Keys), strings.Join(c.Policy.KeyIDs(), ", "))
	}
	if b, err := os.ReadFile(passwordFile); err == nil {
		if err := c.Lock.Add(string(b)); err != nil {
			logf("trust: %s: %v: locking with no way to unlock", passwordFile, err)
			c.Lock.hashes = append(c.Lock.hashes, "!") // matches no password
		} else {
			logf("trust: a password locks edits, the shell and locked entries")
		}
	}
	c.TPM = OpenTPM(logf)
	return c
}
