package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ramboot/ramboot/kexec"
	"github.com/ramboot/ramboot/loader"
)

// kexec fetches ramboot.kernel= and ramboot.initrd=, and kexecs them with ramboot.append=
// plus the boot NIC's BOOTIF=. It returns only on failure.
func (b *booter) kexec(ctx context.Context) error {
	c := b.cfg
	dir := "/tmp/kexec"
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	client, err := loader.NewClient(caFile(), 0)
	if err != nil {
		return err
	}
	opts := loader.Options{Fetcher: &loader.Fetcher{Client: client, Logf: b.logf}, Logf: b.logf, Progress: consoleProgress(b.logf)}
	img := kexec.Image{Kernel: filepath.Join(dir, "kernel")}
	b.logf("fetching kernel %s", c.Kernel)
	if _, err := loader.Download(ctx, img.Kernel, []string{c.Kernel}, opts); err != nil {
		return fmt.Errorf("fetching kernel: %w", err)
	}
	for i, u := range c.Initrds {
		p := filepath.Join(dir, fmt.Sprintf("initrd%d", i))
		b.logf("fetching initrd %s", u)
		if _, err := loader.Download(ctx, p, []string{u}, opts); err != nil {
			return fmt.Errorf("fetching initrd: %w", err)
		}
		img.Initrds = append(img.Initrds, p)
	}
	var mac []byte
	if b.lease != nil {
		mac = b.lease.MAC
	}
	img.Cmdline = kexec.ComposeCmdline(c.Append, mac)
	b.logf("kexec: loading with command line: %s", img.Cmdline)
	if err := kexec.Load(img, dir, b.logf); err != nil {
		return err
	}
	b.logf("kexec: booting")
	return kexec.Exec()
}
