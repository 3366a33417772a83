package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/internal/trust"
	"github.com/ramboot/ramboot/loader"
)

// maxSigSize bounds a .minisig file: a real one is about 300 bytes.
const maxSigSize = 4 << 10

// fetchSig fetches the signature of the file at urls (a URL and its mirrors: URL.minisig of
// each, in order) with f.
func (b *Booter) fetchSig(ctx context.Context, f *loader.Fetcher, urls []string) ([]byte, error) {
	side := make([]string, len(urls))
	for i, u := range urls {
		side[i] = trust.SigURL(u)
	}
	s, err := f.Open(ctx, side...)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no signature at %s", trust.ErrUntrusted, side[0])
	}
	if err != nil {
		return nil, fmt.Errorf("%w: fetching %s: %w", trust.ErrUntrusted, side[0], err)
	}
	defer s.Close()
	sig, err := io.ReadAll(io.LimitReader(s, maxSigSize+1))
	if err == nil && len(sig) > maxSigSize {
		err = fmt.Errorf("larger than %d bytes", maxSigSize)
	}
	if err != nil {
		var he *loader.HTTPError
		if errors.As(err, &he) && (he.Code == 404 || he.Code == 410) {
			return nil, fmt.Errorf("%w: no signature at %s", trust.ErrUntrusted, s.URL())
		}
		return nil, fmt.Errorf("%w: fetching %s: %w", trust.ErrUntrusted, s.URL(), err)
	}
	return sig, nil
}

// carried reports whether the file at u (every one of its URLs) is one the initramfs itself
// carries, and so is as trusted as the anchors: nil when it is, else why not. A URL of a server
// is never carried.
func (b *Booter) carried(urls ...string) error {
	for _, u := range urls {
		p, ok := localFile(u)
		if !ok {
			return fmt.Errorf("%s: %w", u, trust.ErrNotCarried)
		}
		if err := b.Carried.Check(p); err != nil {
			return err
		}
	}
	return nil
}

// localFile is the path a local URL (a path, or file://) names.
func localFile(u string) (string, bool) {
	if !loader.IsLocal(u) {
		return "", false
	}
	if strings.HasPrefix(u, "file://") {
		p, err := url.Parse(u)
		if err != nil {
			return "", false
		}
		return p.Path, true
	}
	return u, true
}

// menuSig fetches the signature of the menu at src before the menu itself is read, when the
// policy has anchors and src is not one of the initramfs's own menus: a menu that cannot be
// trusted is not even read. It returns nil (and no error) when no signature is needed.
func (b *Booter) menuSig(ctx context.Context, src string) ([]byte, error) {
	if !b.Policy.Enabled() {
		return nil, nil
	}
	notCarried := b.carried(src)
	if notCarried == nil {
		return nil, nil
	}
	// Asked for as the menu is: a server that renders the menu for each machine (ramboot serve's
	// rollback) signs the rendition of the machine that asks.
	f := b.fetcher()
	f.Client = b.identified(f.Client)
	sig, err := b.fetchSig(ctx, f, []string{src})
	if err != nil && loader.IsLocal(src) {
		// Say why a local path is not simply trusted: only the initramfs's own files are.
		return nil, fmt.Errorf("%w (%v)", err, notCarried)
	}
	return sig, err
}

// checkMenu verifies a menu against the signature menuSig fetched. It returns the signature,
// nil when none was checked (no anchors, or a menu the initramfs carries).
func (b *Booter) checkMenu(src string, data, sig []byte) (*trust.Signed, error) {
	if sig == nil {
		return nil, nil
	}
	return b.Policy.Verify(trust.FileName(src), data, sig)
}

// trustMenu marks a menu that verified (or that the initramfs carries) as trusted, takes its
// password, and measures it.
func (b *Booter) trustMenu(m *bootmenu.Menu, src string, data []byte, signed *trust.Signed) error {
	trusted := signed != nil || b.carried(src) == nil
	if signed != nil {
		b.logf("menu %s: signature by key %s verified; trusted comment: %s", src, signed.KeyID, oneLine(signed.TrustedComment))
		m.Signature = signed.TrustedComment
	}
	if trusted {
		m.Trusted = true
		for i := range m.Entries {
			m.Entries[i].Pinned = true
		}
	}
	if m.Password != "" {
		switch {
		case !trusted:
			b.logf("menu %s: ignoring its password: the menu is neither signed nor in the initramfs", src)
		case b.Lock == nil:
		default:
			if err := b.Lock.Add(m.Password); err != nil {
				return fmt.Errorf("%s: password: %w", src, err)
			}
		}
	}
	return b.TPM.MeasureData("menu", src, data)
}

// checkPlan refuses, before anything is fetched, a plan whose files the policy does not cover,
// and returns a copy of it whose images carry the signatures to check while they stream.
func (b *Booter) checkPlan(ctx context.Context, p Plan) (Plan, error) {
	if !b.Policy.Enabled() {
		return p, nil
	}
	check := func(what string, img Image) (Image, error) {
		u := img.URLs[0]
		switch {
		case b.carried(img.URLs...) == nil:
			return img, nil
		case p.Pinned && trust.Pinned(u, img.SHA256):
			b.logf("%s %s: pinned by the signed menu", what, u)
			return img, nil
		case loader.IsRegistry(u):
			return img, fmt.Errorf("%s %s: %w: a registry reference must be pinned with @sha256: in a signed menu", what, u, trust.ErrUntrusted)
		}
		sig, err := b.fetchSig(ctx, b.fetcher(), img.URLs)
		if err != nil && loader.IsLocal(u) {
			err = fmt.Errorf("%w (%v)", err, b.carried(img.URLs...))
		}
		if err == nil {
			var v *trust.Stream
			if v, err = b.Policy.NewStream(img.URLs, sig); err == nil {
				in := v.Info()
				b.logf("%s %s: checking its signature by key %s while it streams; trusted comment: %s", what, u, in.KeyID, oneLine(in.TrustedComment))
				img.Verify = []loader.Verifier{v}
				return img, nil
			}
		}
		if p.Pinned {
			return img, fmt.Errorf("%s %s: %w (and the signed menu gives no sha256 for it)", what, u, err)
		}
		return img, fmt.Errorf("%s %s: %w (and no signed menu pins it)", what, u, err)
	}
	var err error
	if r := p.Ramroot; r != nil {
		c := *r
		if c.Image, err = check("image", c.Image); err != nil {
			return p, err
		}
		p.Ramroot = &c
	}
	if k := p.Kexec; k != nil {
		c := *k
		if c.Kernel, err = check("kernel", c.Kernel); err != nil {
			return p, err
		}
		c.Initrds = append([]Image(nil), k.Initrds...)
		for i := range c.Initrds {
			if c.Initrds[i], err = check("initrd", c.Initrds[i]); err != nil {
				return p, err
			}
		}
		p.Kexec = &c
	}
	return p, nil
}

// measure extends the TPM with what is about to be booted (nothing without a TPM).
func (b *Booter) measure(typ, name, sum string) error {
	return b.TPM.Measure(typ, name, sum)
}

// oneLine is a trusted comment for the log: minisign separates its fields with tabs, which the
// kernel log shows as \x09.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
