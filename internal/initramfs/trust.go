package initramfs

import (
	"fmt"
	"path"
	"strings"

	"github.com/ramboot/ramboot/internal/layout"
	"github.com/ramboot/ramboot/internal/trust"
)

// trust packs the trust anchors and the password hash, each checked first: a key or hash
// /init could not read would lock the operator out (or, worse, leave a boot unprotected).
func (b *builder) trust(s Spec) error {
	seen := map[uint64]bool{}
	for _, f := range s.Trust {
		k, err := trust.ReadPublicKey(f)
		if err != nil {
			return fmt.Errorf("trust anchor: %w", err)
		}
		if seen[k.ID()] {
			continue
		}
		seen[k.ID()] = true
		text, _ := k.MarshalText()
		b.file(path.Join(layout.TrustDir, fmt.Sprintf("%016X.pub", k.ID())), append(text, '\n'), 0o644)
	}
	if h := strings.TrimSpace(s.PasswordHash); h != "" {
		if err := trust.CheckHash(h); err != nil {
			return fmt.Errorf("password hash: %w", err)
		}
		b.file(layout.PasswordHash, []byte(h+"\n"), 0o600)
	}
	return nil
}
