// Package trust is ramboot's chain of trust: minisign public keys baked into the initramfs
// (the anchors) verify the menus /init loads and the images, kernels and initrds it boots; a
// password hash locks what changes a boot (editing, the shell, locked entries); and a TPM, when
// there is one, is extended with a digest of everything booted, with an event log that lets a
// verifier recompute the PCR.
//
// Without anchors a Policy verifies nothing and refuses nothing: behaviour is as without this
// package. With anchors:
//
//   - a menu is accepted only with a valid MENU.minisig by one of the anchors, whose trusted
//     comment names the menu's file ("file:NAME", as minisign writes it);
//   - a file to boot is accepted when a signed menu pins it (a sha256, or a docker:// reference
//     with an @sha256: digest), when it is inside the initramfs, or when URL.minisig, by one of
//     the anchors and naming the file, verifies it. That signature is checked over the
//     BLAKE2b-512 digest of the stream (minisign's prehashed form) as it arrives, before the
//     loader finishes the root or keeps the file.
//
// Replay: a signature is bound to a file name through its trusted comment, so an old valid
// signature of another file does not verify this one. An old signature of an older version of
// the same file name does; a signed menu that pins sha256s binds the exact bytes and is the way
// to rule that out.
package trust

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"aead.dev/minisign"
)

// ErrUntrusted marks a menu or file refused by the policy.
var ErrUntrusted = errors.New("refused by the chain of trust")

// SigSuffix is appended to a URL's path to find its signature.
const SigSuffix = ".minisig"

// Policy holds the trust anchors. The zero Policy (no keys) trusts everything, as /init did
// before anchors existed.
type Policy struct {
	Keys []minisign.PublicKey
	// Broken lists anchor files that could not be read. The policy is enabled all the same
	// (it fails closed): an anchor that cannot be read must not turn verification off.
	Broken []error
}

// LoadPolicy reads every *.pub file in dir (minisign public keys). A missing dir is an empty
// policy; an unreadable key is recorded in Broken.
func LoadPolicy(dir string) *Policy {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pub"))
	p := &Policy{}
	for _, f := range files {
		k, err := ReadPublicKey(f)
		if err != nil {
			p.Broken = append(p.Broken, err)
			continue
		}
		p.Keys = append(p.Keys, k)
	}
	return p
}

// ReadPublicKey reads a minisign public key file.
func ReadPublicKey(file string) (minisign.PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return minisign.PublicKey{}, err
	}
	var k minisign.PublicKey
	if err := k.UnmarshalText(bytes.TrimSpace(b)); err != nil {
		return k, fmt.Errorf("%s: %w", file, err)
	}
	return k, nil
}

// Enabled reports whether the policy has anchors: only then does it refuse anything.
func (p *Policy) Enabled() bool { return p != nil && (len(p.Keys) > 0 || len(p.Broken) > 0) }

// KeyIDs lists the anchors' key IDs as minisign prints them.
func (p *Policy) KeyIDs() []string {
	var ids []string
	for _, k := range p.Keys {
		ids = append(ids, keyID(k.ID()))
	}
	return ids
}

func keyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// Signed is a verified signature.
type Signed struct {
	KeyID          string
	TrustedComment string
}

// SigURL is where the signature of the file at u is: ".minisig" appended to its path, the
// query kept.
func SigURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Opaque != "" {
		return u + SigSuffix
	}
	p.Path += SigSuffix
	p.RawPath = ""
	return p.String()
}

// FileName is the name a signature's trusted comment must give for the file at u: the last
// element of its path.
func FileName(u string) string {
	if p, err := url.Parse(u); err == nil && p.Scheme != "" {
		u = p.Path
	}
	return path.Base(u)
}

// parse reads a signature, finds its anchor and checks that its trusted comment names one of
// names.
func (p *Policy) parse(sig []byte, names []string) (minisign.Signature, minisign.PublicKey, error) {
	var s minisign.Signature
	if err := s.UnmarshalText(bytes.TrimSpace(sig)); err != nil {
		return s, minisign.PublicKey{}, fmt.Errorf("%w: unreadable signature: %v", ErrUntrusted, err)
	}
	i := slices.IndexFunc(p.Keys, func(k minisign.PublicKey) bool { return k.ID() == s.KeyID })
	if i < 0 {
		return s, minisign.PublicKey{}, fmt.Errorf("%w: signed by key %s, which is not a trust anchor (anchors: %s)",
			ErrUntrusted, keyID(s.KeyID), strings.Join(p.KeyIDs(), ", "))
	}
	if n := CommentFile(s.TrustedComment); !slices.Contains(names, n) {
		if n == "" {
			return s, p.Keys[i], fmt.Errorf("%w: the signature's trusted comment %q names no file (want file:%s)", ErrUntrusted, s.TrustedComment, names[0])
		}
		return s, p.Keys[i], fmt.Errorf("%w: the signature is for file %s, not %s", ErrUntrusted, n, names[0])
	}
	return s, p.Keys[i], nil
}

var fileRE = regexp.MustCompile(`(?:^|[\s])file:(\S+)`)

// CommentFile is the file a trusted comment names ("timestamp:... file:NAME hashed"), "" for
// none.
func CommentFile(c string) string {
	m := fileRE.FindStringSubmatch(c)
	if m == nil {
		return ""
	}
	return m[1]
}

// Verify checks sig (a .minisig file's contents) over data, a whole file named name. Both of
// minisign's forms verify: prehashed (the default since minisign 0.11) and legacy.
func (p *Policy) Verify(name string, data, sig []byte) (*Signed, error) {
	s, k, err := p.parse(sig, []string{name})
	if err != nil {
		return nil, err
	}
	if !minisign.Verify(k, data, sig) {
		return nil, fmt.Errorf("%w: bad signature by key %s: the file or its trusted comment was changed", ErrUntrusted, keyID(s.KeyID))
	}
	return &Signed{KeyID: keyID(s.KeyID), TrustedComment: s.TrustedComment}, nil
}

// Stream is a signature checked over a file as it streams: a loader.Verifier.
type Stream struct {
	sig  []byte
	key  minisign.PublicKey
	info Signed
	src  feed
	r    *minisign.Reader
}

// NewStream prepares checking sig over a file streamed from one of urls (a URL and its
// mirrors; the trusted comment must name one of their files). Only the prehashed form can be
// checked while streaming: a legacy signature is refused here, before any download.
func (p *Policy) NewStream(urls []string, sig []byte) (*Stream, error) {
	var names []string
	for _, u := range urls {
		names = append(names, FileName(u))
	}
	s, k, err := p.parse(sig, names)
	if err != nil {
		return nil, err
	}
	if s.Algorithm != minisign.HashEdDSA {
		return nil, fmt.Errorf("%w: a legacy (not prehashed) signature cannot be checked while streaming: sign with minisign 0.11 or newer, or ramboot sign", ErrUntrusted)
	}
	v := &Stream{sig: sig, key: k, info: Signed{KeyID: keyID(s.KeyID), TrustedComment: s.TrustedComment}}
	v.Reset()
	return v, nil
}

// Info is the signature's key and trusted comment.
func (v *Stream) Info() Signed { return v.info }

// Write hashes the next bytes of the file.
func (v *Stream) Write(b []byte) (int, error) {
	v.src.b = b
	if _, err := io.Copy(io.Discard, v.r); err != nil {
		return 0, err
	}
	return len(b), nil
}

// Reset starts over (a download that restarts).
func (v *Stream) Reset() {
	v.src.b = nil
	v.r = minisign.NewReader(&v.src)
}

// Verify checks the signature over everything written since the last Reset.
func (v *Stream) Verify() error {
	if !v.r.Verify(v.key, v.sig) {
		return fmt.Errorf("%w: bad signature by key %s: the file was changed", ErrUntrusted, v.info.KeyID)
	}
	return nil
}

// feed hands minisign.Reader the bytes of one Write.
type feed struct{ b []byte }

func (f *feed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// digestRE is a docker:// (or oci) reference pinned by digest.
var digestRE = regexp.MustCompile(`@sha256:[0-9a-f]{64}$`)

// Pinned reports whether a file named in a menu is pinned by it: a sha256 is given, or the URL
// is a registry reference with an @sha256: digest (the registry source verifies the manifest
// and every layer against it).
func Pinned(u, sha256 string) bool {
	if sha256 != "" {
		return true
	}
	return strings.HasPrefix(u, "docker://") && digestRE.MatchString(u)
}
