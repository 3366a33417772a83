// Package boot turns what to boot (a Plan, from the kernel command line or a menu entry) into a
// booted system, in two steps as u-root's OSImage does: Prepare fetches, verifies, extracts or
// loads everything and can still be abandoned; the Exec it returns is the irreversible step
// (switch_root or kexec). A panic anywhere in Prepare becomes its error: /init is PID 1 and a
// panic there is a kernel panic.
package boot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/ramboot/ramboot/internal/hooks"
	"github.com/ramboot/ramboot/internal/layout"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/internal/report"
	"github.com/ramboot/ramboot/internal/switchroot"
	"github.com/ramboot/ramboot/internal/trust"
	"github.com/ramboot/ramboot/loader"
)

// ErrNoReturn marks an error past the point of no return: the initramfs is gone (switch_root
// deleted it), so retrying, a menu or a shell are impossible; only reboot or power-off remain.
var ErrNoReturn = switchroot.ErrNoReturn

// Exec is the irreversible step of a prepared boot. It returns only on failure; an error that
// wraps ErrNoReturn means there is nothing left to go back to.
type Exec func() error

// Booter prepares boots. Its fields are what a boot needs from /init's state.
type Booter struct {
	// Lease is the boot NIC's lease (nil without network): its identity goes into the image's
	// network config and the kexec'd kernel's command line.
	Lease *netup.Lease
	// Network is the topology the lease is on (bonds, VLANs, their NICs), for the image's
	// network config and the kexec'd kernel's parameters. Nil: netup.NewImageNet(Lease, nil),
	// what Lease says of its bonds and VLANs. Its Lease, when nil, is Lease.
	Network *netup.ImageNet
	// Hooks runs the operator's hooks; its Env is completed from the lease.
	Hooks hooks.Runner
	Logf  func(format string, args ...any)
	// SwitchRoot is the switch_root step (switchroot.SwitchRoot; a fake in tests).
	SwitchRoot func(newRoot, init string, args, env []string) error
	// Root is where a ramroot image is extracted (layout.NewRoot; a directory in tests, which
	// then is not mounted).
	Root string
	// KernelFiles is the tree whose lib/modules/<release> and lib/firmware are copied into an
	// image that lacks them ("/" in /init; "" copies nothing).
	KernelFiles string
	// MountRoot mounts a fresh tmpfs at Root for each attempt (true in /init).
	MountRoot bool
	// RetryFor is how long a download keeps retrying without progress (loader.Fetcher's
	// RetryFor: 0 its default, negative no time budget).
	RetryFor time.Duration
	// Entropy is called before a plan's fetches with its URLs: WaitEntropy waits for the
	// kernel's random pool when TLS will need it, saying so on the console. Nil: no wait.
	Entropy func(ctx context.Context, urls []string) error
	// Policy is the chain of trust's anchors: with keys, menus and files must be signed or
	// pinned (internal/trust). Nil: nothing is refused.
	Policy *trust.Policy
	// Carried is the initramfs's own files (its menus, embedded images and hooks): the only
	// local files trusted without a signature when Policy has anchors. New sets /init's; the
	// zero value carries nothing.
	Carried trust.Carried
	// Lock takes the password of trusted menus. Nil: menus' passwords are ignored.
	Lock *trust.Lock
	// TPM measures what is booted. Nil: nothing is measured.
	TPM *trust.Measurer
	// Refused is the last menu FindMenu refused because of the chain of trust (for the menu's
	// error screen); nil when none was.
	Refused error
	// Registry is how docker:// images are fetched: mirrors, plain-HTTP registries,
	// credentials (New: layout.RegistryAuth when the initramfs has one).
	Registry loader.Registry
	// Report receives the boot's events (fetches, extraction, the final step); nil: none.
	Report *report.Reporter
}

// New returns a Booter for /init.
func New(lease *netup.Lease, h hooks.Runner, logf func(string, ...any)) *Booter {
	b := &Booter{Lease: lease, Hooks: h, Logf: logf, SwitchRoot: switchroot.SwitchRoot,
		Root: layout.NewRoot, MountRoot: true, KernelFiles: "/", Entropy: WaitEntropy(logf),
		Carried: trust.Carried{Root: "/", Files: layout.Menus(), Dirs: []string{layout.RootfsDir, layout.HooksDir}}}
	if _, err := os.Stat(layout.RegistryAuth); err == nil {
		b.Registry.AuthFile = layout.RegistryAuth
	}
	return b
}

// imageNet is the network to write into an image and pass to a kexec'd kernel; nil without
// a lease.
func (b *Booter) imageNet() *netup.ImageNet {
	if b.Network == nil {
		if b.Lease == nil {
			return nil
		}
		return netup.NewImageNet(b.Lease, nil)
	}
	n := *b.Network
	if n.Lease == nil {
		n.Lease = b.Lease
	}
	if n.Lease == nil {
		return nil
	}
	return &n
}

// Env is the hooks' environment: PATH, the new root, the boot NIC.
func (b *Booter) Env() []string {
	env := []string{"PATH=/bin:/sbin:/usr/bin:/usr/sbin", "RAMBOOT_ROOT=" + b.Root}
	if l := b.Lease; l != nil {
		env = append(env, "RAMBOOT_IFACE="+l.Iface, "RAMBOOT_MAC="+l.MAC.String(), "RAMBOOT_ADDR="+l.Prefix())
	}
	return env
}

// RunHooks runs one stage of the operator's hooks with the boot's environment.
func (b *Booter) RunHooks(ctx context.Context, stage string) error {
	h := b.Hooks
	h.Env = append(b.Env(), h.Env...)
	if h.Logf == nil {
		h.Logf = b.Logf
	}
	return h.Run(ctx, stage)
}

// Prepare does everything for p that can still be abandoned and returns the irreversible step.
// A panic inside becomes the returned error, its stack logged.
func (b *Booter) Prepare(ctx context.Context, p Plan, progress func(loader.Progress)) (exec Exec, err error) {
	defer func() {
		if v := recover(); v != nil {
			b.logf("internal error preparing %s: %v\n%s", p.Name, v, debug.Stack())
			exec, err = nil, fmt.Errorf("%s: internal error: %v", p.Name, v)
		}
	}()
	if b.Entropy != nil {
		if err := b.Entropy(ctx, p.URLs()); err != nil {
			return nil, err
		}
	}
	if p, err = b.checkPlan(ctx, p); err != nil {
		return nil, err
	}
	switch {
	case p.Ramroot != nil:
		return b.prepareRamroot(ctx, p.Ramroot, progress)
	case p.Kexec != nil:
		return b.prepareKexec(ctx, p.Kexec, progress)
	}
	return nil, fmt.Errorf("%s: nothing to boot", p.Name)
}

func (b *Booter) logf(format string, args ...any) {
	if b.Logf != nil {
		b.Logf(format, args...)
	}
}

// IsNoReturn reports whether err came after the point of no return.
func IsNoReturn(err error) bool { return errors.Is(err, ErrNoReturn) }
