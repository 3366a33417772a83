package bootmenu

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ramboot/ramboot/internal/cmdline"
)

// registryScheme starts a ramroot URL that names an image in an OCI registry.
const registryScheme = "docker://"

// validateRegistry checks a ramroot whose URL is docker://HOST[:PORT]/REPO[:TAG|@sha256:HEX].
// Its mirrors are registries tried first (cmdline.ParseRegistryMirror: http://HOST[:PORT],
// https://HOST[:PORT] or HOST[:PORT]), or other docker:// references of the same image.
func (r *Ramroot) validateRegistry() *fieldError {
	if err := checkRegistryRef(r.URL); err != nil {
		return ferr("ramroot", err)
	}
	if r.SHA256 != "" {
		if err := checkSHA256(r.SHA256); err != nil {
			return ferr("ramroot.sha256", err)
		}
	}
	for i, m := range r.Mirrors {
		if err := checkRegistryMirror(m); err != nil {
			return ferr(fmt.Sprintf("ramroot.mirrors[%d]", i), err)
		}
	}
	return nil
}

// checkRegistryMirror accepts a registry image's mirror: a registry
// (cmdline.ParseRegistryMirror) or another docker:// reference.
func checkRegistryMirror(m string) error {
	if strings.HasPrefix(m, registryScheme) {
		return checkRegistryRef(m)
	}
	if _, _, err := cmdline.ParseRegistryMirror(m); err != nil {
		return fmt.Errorf("%w, or a docker:// reference", err)
	}
	return nil
}

// checkRegistryRef accepts docker://HOST[:PORT]/REPO[:TAG] and docker://HOST[:PORT]/REPO@sha256:HEX
// (the loader checks the rest of the reference grammar).
func checkRegistryRef(s string) error {
	if err := checkText(s); err != nil {
		return err
	}
	ref := strings.TrimPrefix(s, registryScheme)
	bad := func(why string) error {
		return fmt.Errorf("registry reference %q: %s (want docker://HOST[:PORT]/REPO:TAG or @sha256:DIGEST)", s, why)
	}
	if ref == "" || strings.ContainsAny(ref, " \t") {
		return bad("empty or with a space")
	}
	name, digest, pinned := strings.Cut(ref, "@")
	if pinned {
		hex, ok := strings.CutPrefix(digest, "sha256:")
		if !ok || checkSHA256(hex) != nil {
			return bad("the digest is not sha256:<64 hex digits>")
		}
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i] // the tag
	}
	host, repo, ok := strings.Cut(name, "/")
	if !ok || host == "" || repo == "" {
		return bad("no HOST/REPO")
	}
	if repo != strings.ToLower(repo) {
		return bad("repository names are lowercase")
	}
	return nil
}

var errRegistryKexec = errors.New("docker:// names a container image: only a ramroot can come from a registry")
