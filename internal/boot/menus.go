package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"strings"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/layout"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/internal/trust"
	"github.com/ramboot/ramboot/loader"
)

// FindMenu takes the first menu found: ramboot.menu=, the DHCP lease (pxelinux options
// 209/210, or a boot file name ending in .yaml/.yml/.cfg), the one embedded in the initramfs,
// the built-in one. A source that fails is logged and the next one is tried.
func (b *Booter) FindMenu(ctx context.Context, c *cmdline.Config, hasShell bool) *bootmenu.Menu {
	var sources []string
	if c.Menu != "" {
		sources = append(sources, c.Menu)
	}
	if u := LeaseMenuURL(b.Lease); u != "" {
		sources = append(sources, u)
	}
	for _, m := range layout.Menus() {
		if _, err := os.Stat(m); err == nil {
			sources = append(sources, m)
		}
	}
	b.Refused = nil
	for _, src := range sources {
		m, err := b.LoadMenu(ctx, src)
		if err == nil {
			b.logf("menu from %s: %d entries", src, len(m.Entries))
			return m
		}
		if strings.HasPrefix(err.Error(), src) {
			b.logf("menu: %v", err) // the error names the file already
		} else {
			b.logf("menu %s: %v", src, err)
		}
		if errors.Is(err, trust.ErrUntrusted) && b.Refused == nil {
			b.Refused = err
		}
	}
	return bootmenu.Builtin(bootmenu.BuiltinConfig{Ramroot: c.Ramroot, SHA256: c.SHA256, Size: c.Size, Init: c.Init, HasShell: hasShell})
}

// LeaseMenuURL derives a menu URL from a DHCP lease ("" when it names none): pxelinux's
// options 209 and 210, else a boot file that is a menu (.yaml, .yml, .cfg), else DHCPv6's
// boot file URL (option 59) when it is an http(s) URL of a menu.
func LeaseMenuURL(l *netup.Lease) string {
	if l == nil {
		return ""
	}
	if u := leaseMenuURL4(l); u != "" {
		return u
	}
	if l.V6 != nil && isMenuFile(l.V6.BootFileURL) && isHTTP(l.V6.BootFileURL) {
		return l.V6.BootFileURL
	}
	return ""
}

func isMenuFile(p string) bool {
	ext := path.Ext(p)
	return ext == ".yaml" || ext == ".yml" || ext == ".cfg"
}

func leaseMenuURL4(l *netup.Lease) string {
	if !l.DHCP {
		return ""
	}
	conf, prefix := string(l.Options[209]), string(l.Options[210])
	if conf != "" {
		if u, err := url.Parse(conf); err == nil && u.IsAbs() {
			return conf
		}
		if p, err := url.Parse(prefix); err == nil && p.IsAbs() {
			return p.JoinPath(conf).String()
		}
	}
	bf := l.BootFile
	if isMenuFile(bf) {
		if u, err := url.Parse(bf); err == nil && u.IsAbs() {
			return bf
		}
		if l.Server.IsValid() {
			return "http://" + l.Server.String() + "/" + strings.TrimPrefix(bf, "/")
		}
	}
	return ""
}

// LoadMenu fetches (or reads) and parses a menu. A menu larger than bootmenu.MaxMenuSize is
// refused before it is all read: a server (or a path) that sends without end must not fill
// the RAM /init runs in.
func (b *Booter) LoadMenu(ctx context.Context, src string) (*bootmenu.Menu, error) {
	if !loader.IsLocal(src) && b.Entropy != nil {
		if err := b.Entropy(ctx, []string{src}); err != nil {
			return nil, err
		}
	}
	// The signature comes first: nothing of a menu that cannot be trusted is read, let alone
	// acted on.
	sig, err := b.menuSig(ctx, src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	f := b.fetcher()
	f.Client = b.identified(f.Client) // a menu server may answer each machine with its own default
	s, err := f.Open(ctx, src)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	data, err := io.ReadAll(io.LimitReader(s, bootmenu.MaxMenuSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > bootmenu.MaxMenuSize {
		return nil, fmt.Errorf("%s: larger than the %d KiB a menu may have", src, bootmenu.MaxMenuSize>>10)
	}
	// Verified before it is parsed: nothing of an untrusted menu is acted on.
	signed, err := b.checkMenu(src, data, sig)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	m, err := bootmenu.Parse(data, src)
	if err != nil {
		return nil, err
	}
	if err := b.trustMenu(m, src, data, signed); err != nil {
		return nil, err
	}
	return m, nil
}
