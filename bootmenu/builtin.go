package bootmenu

import "github.com/ramboot/ramboot/assets"

// BuiltinConfig is what the built-in menu is made of, taken from the kernel command line and
// the initramfs.
type BuiltinConfig struct {
	// Ramroot lists ramroot= in order: the image and its mirrors. Empty for no ramroot entry.
	Ramroot []string
	// SHA256, Size, Init: ramroot.sha256=, ramroot.size=, init= ("" for the defaults).
	SHA256, Size, Init string
	// HasShell adds a shell entry (the initramfs has one).
	HasShell bool
}

// Builtin returns the menu used when no ramboot.menu= is given: a "ramroot" entry booting
// ramroot= (with its mirrors, checksum, size and init) when the command line has one, "shell"
// when the initramfs has a shell, "reboot" and "poweroff".
//
// With ramroot= the timeout is 0 (the seed's `boot=ramdisk ramroot=URL` boots unattended);
// without it -1 (wait for a key). ramboot.timeout= overrides either through Override.
//
// The menu is not validated: a bad ramroot= is reported when it is fetched, as the seed did,
// and the power entries must stay reachable whatever the command line says.
func Builtin(c BuiltinConfig) *Menu {
	m, err := Parse(assets.BuiltinMenu, "built-in menu")
	if err != nil {
		// assets/builtin.yaml is tested to parse; keep the power entries reachable anyway.
		m = &Menu{Title: "ramboot", Timeout: -1, Source: "built-in menu", Format: FormatYAML, Entries: []Entry{
			{Name: "reboot", Title: "Reboot", Kind: KindReboot},
			{Name: "poweroff", Title: "Power off", Kind: KindPoweroff}}}
	}
	var entries []Entry
	if len(c.Ramroot) > 0 {
		r := &Ramroot{File: File{URL: c.Ramroot[0], SHA256: c.SHA256, Mirrors: append([]string(nil), c.Ramroot[1:]...)}, Size: c.Size, Init: c.Init}
		entries = append(entries, Entry{Name: "ramroot", Title: "Boot " + c.Ramroot[0] + " in RAM", Kind: KindRamroot, Ramroot: r})
		m.Default = "ramroot"
		m.Timeout = 0
	}
	for _, e := range m.Entries {
		if e.Kind == KindShell && !c.HasShell {
			continue
		}
		entries = append(entries, e)
	}
	m.Entries = entries
	return m
}
