package initramfs

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ramboot/ramboot/internal/layout"
)

// registryAuth packs a docker config.json for /init's docker:// downloads, readable by root
// only. Only its "auths" are used (/init has no credential helpers to run): a file that has
// none is refused, since it would make every pull anonymous without a word.
func (b *builder) registryAuth(src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading registry credentials: %w", err)
	}
	var cfg struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fmt.Errorf("registry credentials %s: not a docker config.json: %w", src, err)
	}
	if len(cfg.Auths) == 0 {
		return fmt.Errorf("registry credentials %s: no \"auths\" in it (credential helpers cannot run in the initramfs: use `docker login --password-stdin` with a file store, or write auths by hand)", src)
	}
	b.file(layout.RegistryAuth, data, 0o600)
	return nil
}
