package boot

import (
	"strings"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/internal/cmdline"
	"github.com/ramboot/ramboot/loader"
)

// Image is one file to fetch: a URL with its mirrors, and the expected checksum.
type Image struct {
	URLs   []string
	SHA256 string
	// Verify are the signatures checked while it streams (set by Prepare from the chain of
	// trust).
	Verify []loader.Verifier
}

// Plan is what to boot, from the kernel command line or a menu entry: exactly one of Ramroot
// and Kexec is set.
type Plan struct {
	Name    string
	Ramroot *RamrootPlan
	Kexec   *KexecPlan
	// Pinned: the plan comes from a trusted (signed) menu, whose sha256s and @sha256: digests
	// vouch for its files.
	Pinned bool
}

// RamrootPlan streams an image into a tmpfs and switches into it.
type RamrootPlan struct {
	Image      Image
	Size, Init string   // tmpfs size= ("" for the default), init in the image
	Args       []string // for init: parameters handed to the image
}

// KexecPlan fetches a kernel and initrds and kexecs into them.
type KexecPlan struct {
	Kernel   Image
	Initrds  []Image
	Cmdline  string
	IPAppend bool // add ip= of the lease
}

// URLs lists every URL the plan fetches, mirrors included.
func (p Plan) URLs() []string {
	var out []string
	if r := p.Ramroot; r != nil {
		out = append(out, r.Image.URLs...)
	}
	if k := p.Kexec; k != nil {
		out = append(out, k.Kernel.URLs...)
		for _, f := range k.Initrds {
			out = append(out, f.URLs...)
		}
	}
	return out
}

// FromCmdline is the unattended boot the kernel command line asks for, if any.
func FromCmdline(c *cmdline.Config) (Plan, bool) {
	switch {
	case c.Kernel != "":
		k := &KexecPlan{Kernel: Image{URLs: []string{c.Kernel}}, Cmdline: c.Append}
		for _, u := range c.Initrds {
			k.Initrds = append(k.Initrds, Image{URLs: []string{u}})
		}
		return Plan{Name: "ramboot.kernel", Kexec: k}, true
	case len(c.Ramroot) > 0:
		return Plan{Name: "ramroot", Ramroot: &RamrootPlan{Image: Image{URLs: c.Ramroot, SHA256: c.SHA256}, Size: c.Size, Init: c.Init}}, true
	}
	return Plan{}, false
}

// FromEntry turns a menu entry (with its possibly edited command line) into a plan.
func FromEntry(e bootmenu.Entry, cmdline string) Plan {
	p := Plan{Name: e.Name, Pinned: e.Pinned}
	switch {
	case e.Ramroot != nil:
		r := e.Ramroot
		p.Ramroot = &RamrootPlan{Image: Image{URLs: r.URLs(), SHA256: r.SHA256}, Size: r.Size, Init: r.Init, Args: strings.Fields(cmdline)}
	case e.Kexec != nil:
		k := e.Kexec
		kp := &KexecPlan{Kernel: Image{URLs: k.Kernel.URLs(), SHA256: k.Kernel.SHA256}, Cmdline: cmdline, IPAppend: k.IPAppend}
		for _, f := range k.Initrds {
			kp.Initrds = append(kp.Initrds, Image{URLs: f.URLs(), SHA256: f.SHA256})
		}
		p.Kexec = kp
	}
	return p
}

// NeedNetwork reports whether the command line needs the network: only images embedded in the
// initramfs boot without it.
func NeedNetwork(c *cmdline.Config) bool {
	for _, u := range append(append(append([]string{}, c.Ramroot...), c.Kernel), c.Initrds...) {
		if !loader.IsLocal(u) {
			return true
		}
	}
	return c.BootIF != nil || c.IP != nil
}
