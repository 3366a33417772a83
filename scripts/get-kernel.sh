#!/usr/bin/env bash
# Fetch a Debian stock kernel for the VM tests and the demo: apt-get download, dpkg -x, depmod.
# Prints the directory (the package root: boot/, lib/).
#   get-kernel.sh [cloud]   linux-image-cloud-amd64 (its NIC drivers are modules), in
#                           $RAMBOOT_KERNEL_DIR, default /var/cache/ramboot/kernel
#   get-kernel.sh generic   linux-image-amd64, the kernel bare metal boots (every driver), in
#                           $RAMBOOT_GENERIC_KERNEL_DIR, default /var/cache/ramboot/kernel-generic
set -euo pipefail
flavour=${1:-cloud}
case "$flavour" in
cloud)
	meta=linux-image-cloud-amd64
	dir=${RAMBOOT_KERNEL_DIR:-/var/cache/ramboot/kernel}
	;;
generic)
	meta=linux-image-amd64
	dir=${RAMBOOT_GENERIC_KERNEL_DIR:-/var/cache/ramboot/kernel-generic}
	;;
*)
	echo "get-kernel: unknown kernel $flavour (want cloud or generic)" >&2
	exit 2
	;;
esac
if ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1 && ls "$dir"/lib/modules/*/modules.dep >/dev/null 2>&1; then
	echo "$dir"
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cd "$work"
# The meta package depends on the versioned image package: resolve it, then download that.
pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || { echo "get-kernel: cannot resolve $meta (run apt-get update)" >&2; exit 1; }
apt-get download "$pkg" >&2
mkdir -p "$dir"
dpkg -x ./*.deb "$dir"
ver=$(ls "$dir/lib/modules" | head -n1)
depmod -b "$dir" "$ver"
echo "$dir"
