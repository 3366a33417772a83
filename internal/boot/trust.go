package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/internal/trust"
	"github.com/ramboot/ramboot/loader"
)

// maxSigSize bounds a .minisig file: a real one is about 300 bytes.
const maxSigSize = 4 << 10

// fetchSig fetches the signature of the file at urls (a URL and its mirrors: URL.minisig of
// each, in order).
func (b *Booter) fetchSig(ctx context.Context, urls []string) ([]byte, error) {
	side := make([]string, len(urls))
	for i, u := range urls {
		side[i] = trust.SigURL(u)
	}
	s, err := b.fetcher().Open(ctx, side...)
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

// checkMenu verifies a menu's signature when the policy has anchors. A menu inside the
// initramfs is as trusted as the anchors are. It returns the signature, nil when none was
// checked.
func (b *Booter) checkMenu(ctx context.Context, src string, data []byte) (*trust.Signed, error) {
	if !b.Policy.Enabled() || loader.IsLocal(src) {
		return nil, nil
	}
	sig, err := b.fetchSig(ctx, []string{src})
	if err != nil {
		return nil, err
	}
	return b.Policy.Verify(trust.FileName(src), data, sig)
}

// trustMenu marks a menu that verified (or came from the initramfs) as trusted, takes its
// password, and measures it.
func (b *Booter) trustMenu(m *bootmenu.Menu, src string, data []byte, signed *trust.Signed) error {
	trusted := signed != nil || loader.IsLocal(src)
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
		case loader.IsLocal(u):
			return img, nil
		case p.Pinned && trust.Pinned(u, img.SHA256):
			b.logf("%s %s: pinned by the signed menu", what, u)
			return img, nil
		case loader.IsRegistry(u):
			return img, fmt.Errorf("%s %s: %w: a registry reference must be pinned with @sha256: in a signed menu", what, u, trust.ErrUntrusted)
		}
		sig, err := b.fetchSig(ctx, img.URLs)
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
