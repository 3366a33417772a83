// Package layout names the paths inside ramboot's initramfs that the builder writes and /init
// reads: the contract between the two, in a package small enough for /init to import.
package layout

// Paths inside the initramfs.
const (
	Init         = "/init"
	CA           = "/etc/ssl/certs/ca-certificates.crt"
	HooksDir     = "/etc/ramboot/hooks"
	Menu         = "/etc/ramboot/menu"
	TrustDir     = "/etc/ramboot/trust" // minisign public keys (*.pub): the trust anchors
	PasswordHash = "/etc/ramboot/password-hash"
	RootfsDir    = "/rootfs"
	ModulesRoot  = "/lib/modules"
	FirmwareRoot = "/lib/firmware"
	Busybox      = "/bin/busybox"
	NewRoot      = "/newroot"
	// RegistryAuth is the docker config.json of `ramboot initramfs --registry-auth`.
	RegistryAuth = "/etc/ramboot/registry-auth.json"
)

// Menus are the paths the embedded menu (`ramboot initramfs --menu`) may have, by format.
func Menus() []string {
	return []string{Menu + ".yaml", Menu + ".yml", Menu + ".cfg"}
}
