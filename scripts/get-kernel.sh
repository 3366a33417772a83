#!/usr/bin/env bash
# Fetch Debian's stock cloud kernel (its NIC drivers are modules) for the VM tests and the demo:
# apt-get download, dpkg -x, depmod. Prints the directory (the package root: boot/, lib/).
set -euo pipefail
dir=${RAMBOOT_KERNEL_DIR:-/var/cache/ramboot/kernel}
if ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1 && ls "$dir"/lib/modules/*/modules.dep >/dev/null 2>&1; then
	echo "$dir"
	exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
cd "$work"
# The meta package depends on the versioned image package: resolve it, then download that.
pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || { echo "get-kernel: cannot resolve linux-image-cloud-amd64 (run apt-get update)" >&2; exit 1; }
apt-get download "$pkg" >&2
mkdir -p "$dir"
dpkg -x ./*.deb "$dir"
ver=$(ls "$dir/lib/modules" | head -n1)
depmod -b "$dir" "$ver"
echo "$dir"
