package boot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"aead.dev/minisign"

	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/internal/trust"
)

// TestOnlyCarriedFilesTrusted: with an anchor, a local file is trusted only when the initramfs
// carries it. The three doors of the second review, each with a regular file standing in for the
// attacker's (/proc/cmdline, a disk): a menu named by ramboot.menu=, an image named by ramroot=,
// a menu named by DHCP options 209/210. None is read as trusted, no image they name is fetched,
// and the initramfs's own menu and image still boot without a signature.
func TestOnlyCarriedFilesTrusted(t *testing.T) {
	pub, _ := keys(t)
	srv := newTrustServer(t)
	img := bootableImage()
	sum := sha256.Sum256(img)
	srv.put("/e.tar", img)
	dir := t.TempDir()
	initramfs := filepath.Join(dir, "initramfs")
	carriedMenu := filepath.Join(initramfs, "etc", "ramboot", "menu.yaml")
	carriedImg := filepath.Join(initramfs, "rootfs", "rescue.tar")
	for _, d := range []string{filepath.Dir(carriedMenu), filepath.Dir(carriedImg)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The kernel command line that is at the same time a YAML menu pinning the attacker's image.
	evilMenu := fmt.Sprintf(`{title: 'x ramboot.menu=%s y', entries: [{name: x, ramroot: {url: '%s/e.tar', sha256: %s}}]}`,
		filepath.Join(dir, "cmdline"), srv.URL, hex.EncodeToString(sum[:]))
	files := map[string][]byte{
		filepath.Join(dir, "cmdline"): []byte(evilMenu),
		filepath.Join(dir, "sdb"):     img, // a disk holding an unsigned image
		carriedMenu:                   []byte("title: own\nentries:\n  - {name: own, ramroot: " + carriedImg + "}\n"),
		carriedImg:                    img,
	}
	for f, b := range files {
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs []string
	newBooter := func() *Booter {
		root := filepath.Join(t.TempDir(), "root")
		return &Booter{Root: root, Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) },
			Policy:  &trust.Policy{Keys: []minisign.PublicKey{pub}},
			Carried: trust.Carried{Root: initramfs, Files: []string{carriedMenu}, Dirs: []string{filepath.Dir(carriedImg)}}}
	}
	refusedMenu := func(t *testing.T, b *Booter, c *cmdline.Config, src string) {
		t.Helper()
		m := b.FindMenu(context.Background(), c, false)
		if b.Refused == nil || !errors.Is(b.Refused, trust.ErrUntrusted) || !strings.Contains(b.Refused.Error(), "not a file the initramfs carries") {
			t.Fatalf("menu %s: refused %v, want the chain of trust's refusal saying it is not carried", src, b.Refused)
		}
		if !strings.Contains(b.Refused.Error(), "no signature at "+src+".minisig") {
			t.Errorf("refusal %q does not name the signature looked for", b.Refused)
		}
		if m.Trusted || (len(m.Entries) > 0 && m.Entries[0].Name == "x") {
			t.Errorf("the attacker's menu was taken (trusted %v)", m.Trusted)
		}
	}

	t.Run("ramboot.menu=", func(t *testing.T) {
		src := filepath.Join(dir, "cmdline")
		refusedMenu(t, newBooter(), &cmdline.Config{Menu: src}, src)
		refusedMenu(t, newBooter(), &cmdline.Config{Menu: "file://" + src}, "file://"+src)
		// A path that starts inside the initramfs and climbs out of it is no better.
		refusedMenu(t, newBooter(), &cmdline.Config{Menu: filepath.Dir(carriedMenu) + "/../../../cmdline"}, filepath.Dir(carriedMenu)+"/../../../cmdline")
	})
	t.Run("DHCP 209/210", func(t *testing.T) {
		b := newBooter()
		b.Lease = &netup.Lease{DHCP: true, Options: map[uint8][]byte{209: []byte("cmdline"), 210: []byte("file://" + dir + "/")}}
		src := LeaseMenuURL(b.Lease)
		if src != "file://"+filepath.Join(dir, "cmdline") {
			t.Fatalf("LeaseMenuURL = %q", src)
		}
		refusedMenu(t, b, &cmdline.Config{}, src)
	})
	t.Run("ramroot=", func(t *testing.T) {
		for _, u := range []string{filepath.Join(dir, "sdb"), "file://" + filepath.Join(dir, "sdb"), filepath.Join(dir, "cmdline")} {
			b := newBooter()
			_, err := b.Prepare(context.Background(), Plan{Name: "cmdline", Ramroot: &RamrootPlan{Image: Image{URLs: []string{u}}}}, nil)
			if err == nil || !errors.Is(err, trust.ErrUntrusted) || !strings.Contains(err.Error(), "not a file the initramfs carries") {
				t.Errorf("ramroot=%s: %v, want refused as not carried", u, err)
			}
			if names, _ := os.ReadDir(b.Root); len(names) != 0 {
				t.Errorf("ramroot=%s: the root holds %d entries", u, len(names))
			}
		}
		// An image the initramfs carries, named with a mirror that it does not: not carried.
		b := newBooter()
		if _, err := b.Prepare(context.Background(), Plan{Name: "m", Ramroot: &RamrootPlan{Image: Image{URLs: []string{carriedImg, filepath.Join(dir, "sdb")}}}}, nil); !errors.Is(err, trust.ErrUntrusted) {
			t.Errorf("a carried image with an uncarried mirror: %v, want refused", err)
		}
	})
	if srv.fetched("/e.tar") {
		t.Error("the image the attacker's menu pins was fetched")
	}
	t.Run("carried", func(t *testing.T) {
		b := newBooter()
		m := b.FindMenu(context.Background(), &cmdline.Config{Menu: carriedMenu}, false)
		if b.Refused != nil || !m.Trusted || !m.Entries[0].Pinned {
			t.Fatalf("the initramfs's own menu: refused %v, trusted %v", b.Refused, m.Trusted)
		}
		exec, err := b.Prepare(context.Background(), Plan{Name: "own", Ramroot: &RamrootPlan{Image: Image{URLs: []string{carriedImg}}}}, nil)
		if err != nil || exec == nil {
			t.Fatalf("the initramfs's own image: %v", err)
		}
	})
	if t.Failed() {
		t.Log(strings.Join(logs, "\n"))
	}
}
