package boot

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ramboot/ramboot/internal/report"
	"github.com/ramboot/ramboot/internal/sysinit"
	"github.com/ramboot/ramboot/kexec"
	"github.com/ramboot/ramboot/loader"
)

// loadKexec is kexec.Load (a fake in tests).
var loadKexec = kexec.Load

// prepareKexec fetches the kernel and initrds (verified when sums are given), composes the
// command line (BOOTIF= of the boot NIC when missing, the boot network's parameters unless
// the entry has its own, the address as a static ip= when asked) and loads it; the returned step boots it. A locked-down kernel's refusal of the kernel's signature is
// kexec's *RefusedError (kexec.ErrUntrusted), naming the kernel's URL: final for this entry.
func (b *Booter) prepareKexec(ctx context.Context, k *KexecPlan, progress func(loader.Progress)) (Exec, error) {
	dir := "/tmp/kexec"
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	opts := loader.Options{Fetcher: b.fetcher(), Logf: b.logf, Progress: progress}
	img := kexec.Image{Kernel: filepath.Join(dir, "kernel")}
	b.logf("fetching kernel %s", k.Kernel.URLs[0])
	opts.SHA256, opts.Verifiers = k.Kernel.SHA256, k.Kernel.Verify
	opts.Progress = b.reportFetch(k.Kernel.URLs[0], progress)
	res, err := loader.Download(ctx, img.Kernel, k.Kernel.URLs, opts)
	if err != nil {
		return nil, fmt.Errorf("fetching kernel: %w", err)
	}
	if err := b.measure("kernel", res.URL, res.SHA256); err != nil {
		return nil, err
	}
	b.reportDone(res)
	img.Name = res.URL // a refusal of its signature names it
	for i, f := range k.Initrds {
		p := filepath.Join(dir, fmt.Sprintf("initrd%d", i))
		b.logf("fetching initrd %s", f.URLs[0])
		opts.SHA256, opts.Verifiers = f.SHA256, f.Verify
		opts.Progress = b.reportFetch(f.URLs[0], progress)
		res, err := loader.Download(ctx, p, f.URLs, opts)
		if err != nil {
			return nil, fmt.Errorf("fetching initrd: %w", err)
		}
		if err := b.measure("initrd", res.URL, res.SHA256); err != nil {
			return nil, err
		}
		b.reportDone(res)
		img.Initrds = append(img.Initrds, p)
	}
	var mac []byte
	var extra []string
	if n := b.imageNet(); n != nil {
		mac = n.Lease.MAC
		// The boot network's parameters (bond=, vlan=, ip=, …; ip= static with ipappend):
		// kexec.ComposeCmdline drops them all if the entry's line has network parameters.
		params, err := n.KernelParams(k.IPAppend)
		if err != nil {
			b.logf("kexec: %v: passing BOOTIF= alone", err)
		}
		extra = append(extra, params...)
	}
	img.Cmdline = kexec.ComposeCmdline(k.Cmdline, mac, extra...)
	if err := b.TPM.MeasureData("cmdline", img.Cmdline, []byte(img.Cmdline)); err != nil {
		return nil, err
	}
	b.logf("kexec: loading with command line: %s", img.Cmdline)
	if err := loadKexec(img, dir, b.logf); err != nil {
		return nil, err
	}
	return func() error {
		b.logf("kexec: booting")
		b.reportFinal(report.Kexec)
		sysinit.Drain()
		return kexec.Exec()
	}, nil
}
