#!/usr/bin/env bash
# Fetch a Debian stock kernel for the VM tests and the demo: apt-get download, dpkg -x, depmod.
# Prints the directory (the package root: boot/, lib/).
#   get-kernel.sh [cloud]   linux-image-cloud-amd64 (its NIC drivers are modules), in
#                           $RAMBOOT_KERNEL_DIR, default /var/cache/ramboot/kernel
#   get-kernel.sh generic   linux-image-amd64, the kernel bare metal boots (every driver), in
#                           $RAMBOOT_GENERIC_KERNEL_DIR, default /var/cache/ramboot/kernel-generic
#   get-kernel.sh cloud-arm64
#                           linux-image-cloud-arm64, Debian's arm64 cloud kernel, in
#                           $RAMBOOT_ARM64_KERNEL_DIR, default /var/cache/ramboot/kernel-arm64,
#                           with arm64's systemd-boot-efi beside it (usr/lib/systemd/boot/efi/
#                           linuxaa64.efi.stub: the arm64 UKI's stub)
# The arm64 package comes from the host's own Debian sources, through an apt state of its own
# (package lists for arm64 in a temporary directory): the host's dpkg architectures and apt
# lists are left as they are, and no `dpkg --add-architecture` is needed.
set -euo pipefail
flavour=${1:-cloud}
arch=
extra=
case "$flavour" in
cloud)
	meta=linux-image-cloud-amd64
	dir=${RAMBOOT_KERNEL_DIR:-/var/cache/ramboot/kernel}
	;;
generic)
	meta=linux-image-amd64
	dir=${RAMBOOT_GENERIC_KERNEL_DIR:-/var/cache/ramboot/kernel-generic}
	;;
cloud-arm64)
	meta=linux-image-cloud-arm64
	arch=arm64
	extra=systemd-boot-efi
	dir=${RAMBOOT_ARM64_KERNEL_DIR:-/var/cache/ramboot/kernel-arm64}
	;;
*)
	echo "get-kernel: unknown kernel $flavour (want cloud, generic or cloud-arm64)" >&2
	exit 2
	;;
esac
if ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1 && ls "$dir"/lib/modules/*/modules.dep >/dev/null 2>&1 &&
	{ [ -z "$extra" ] || ls "$dir"/usr/lib/systemd/boot/efi/*.efi.stub >/dev/null 2>&1; }; then
	echo "$dir"
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cd "$work"
apt=()
if [ -n "$arch" ] && [ "$arch" != "$(dpkg --print-architecture)" ]; then
	# Another architecture's package lists, fetched into $work only (signatures checked
	# against the host's keyrings as usual).
	mkdir -p lists/partial cache/archives/partial
	apt=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o "Dir::State::Lists=$work/lists"
		-o "Dir::Cache=$work/cache" -o Dir::State::status=/dev/null)
	apt-get -q "${apt[@]}" update >&2
fi
# The meta package depends on the versioned image package: resolve it, then download that.
pkg=$(apt-cache "${apt[@]}" depends "$meta" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || { echo "get-kernel: cannot resolve $meta (run apt-get update)" >&2; exit 1; }
apt-get "${apt[@]}" download "$pkg" ${extra:+"$extra"} >&2
mkdir -p "$dir"
for deb in ./*.deb; do
	dpkg -x "$deb" "$dir"
done
# Debian 13's packages ship their modules under usr/lib (merged /usr): lib is usr/lib there.
if [ ! -e "$dir/lib" ] && [ -d "$dir/usr/lib/modules" ]; then
	ln -s usr/lib "$dir/lib"
fi
ver=$(ls "$dir/lib/modules" | head -n1)
depmod -b "$dir" "$ver"
echo "$dir"
