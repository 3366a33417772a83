#!/usr/bin/env bash
# Build (once) a small Debian bookworm root file system with systemd, udev and systemd-networkd
# for the VM test that checks the network config ramboot writes into an image (TestVMDebianUdev).
# It boots, waits for the network, prints what the booted system sees on the serial console as
# DEBIAN-* lines (links, addresses, networkctl, network config files, udev's names), and powers
# off.
#
# Output: ${RAMBOOT_DEBIAN_DIR:-/var/cache/ramboot/debian-rootfs.tar.zst} and its .sha256
# (sha256sum format); the path is printed on stdout. Nothing is done when both exist.
# Needs root and debootstrap; the mirror is ${RAMBOOT_DEBIAN_MIRROR:-http://deb.debian.org/debian}.
set -euo pipefail
out=${RAMBOOT_DEBIAN_DIR:-/var/cache/ramboot/debian-rootfs.tar.zst}
mirror=${RAMBOOT_DEBIAN_MIRROR:-http://deb.debian.org/debian}
if [ -s "$out" ] && [ -s "$out.sha256" ]; then
	echo "$out"
	exit 0
fi
export PATH="$PATH:/usr/sbin:/sbin"
die() {
	echo "debian-rootfs: $*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, device nodes); $out is not built yet"
command -v debootstrap >/dev/null || die "debootstrap missing: apt-get install debootstrap"
command -v zstd >/dev/null || die "zstd missing: apt-get install zstd"

start=$(date +%s)
mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.debian-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root

# minbase: essential packages and apt only. systemd-sysv makes systemd /sbin/init; udev names
# the NICs; systemd-networkd is part of systemd in bookworm; dbus, which networkctl needs (as
# a Debian system using networkd has it); iproute2 for "ip". No ifupdown: with networkd also
# managing the NIC it would run a second DHCP client (see below).
debootstrap --variant=minbase --include=systemd-sysv,udev,dbus,iproute2 \
	bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

echo ramboot-debian >"$root/etc/hostname"
# debootstrap copies the build host's resolver config: the booted system's comes from ramboot.
rm -f "$root/etc/resolv.conf"
# An empty machine-id: systemd makes a transient one at each boot (no first-boot setup).
: >"$root/etc/machine-id"
# ifupdown's directory without ifupdown: ramboot then writes its name-based config too
# (WriteImageConfig), and the report checks the name it wrote against the booted system's.
mkdir -p "$root/etc/network/interfaces.d"

chroot "$root" systemctl enable systemd-networkd.service systemd-networkd-wait-online.service >/dev/null 2>&1 ||
	die "enabling systemd-networkd in the image failed"
# Nothing here should run during a test boot.
chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
	fstrim.timer dpkg-db-backup.timer systemd-tmpfiles-clean.timer >/dev/null 2>&1 || true

mkdir -p "$root/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat >"$root/etc/systemd/system/systemd-networkd-wait-online.service.d/timeout.conf" <<'EOF'
# Report within a bounded time even when the NIC never gets configured.
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --timeout=45
EOF

cat >"$root/usr/local/sbin/ramboot-net-report" <<'EOF'
#!/bin/sh
# Print what the booted system's network looks like as DEBIAN-* lines, then power off.
p() { printf '%s\n' "$*"; }
p "DEBIAN-BEGIN $(systemctl is-system-running 2>&1) wait-online=$(systemctl is-active systemd-networkd-wait-online.service)"
ip -br link | while read -r name state mac rest; do
	p "DEBIAN-LINK ${name%@*} $mac $state"
done
ip -br -4 addr | while read -r name state addrs; do
	p "DEBIAN-ADDR ${name%@*} $state $addrs"
done
# network-online only needs an address; let networkd finish setting up (DHCPv6 after the
# router advertisement, say) so the setup state is final, for at most 30s.
for _ in $(seq 30); do
	networkctl list --no-pager --no-legend 2>/dev/null | grep -q configuring || break
	sleep 1
done
networkctl list --no-pager --no-legend 2>&1 | sed 's/^ */DEBIAN-NETWORKCTL /'
for f in /etc/systemd/network/* /etc/network/interfaces.d/* /etc/udev/rules.d/*; do
	[ -f "$f" ] || continue
	sed "s|^|DEBIAN-FILE $f: |" "$f"
done
for d in /sys/class/net/*; do
	i=${d##*/}
	[ "$i" = lo ] && continue
	p "DEBIAN-SYSFS $i name_assign_type=$(cat "$d/name_assign_type" 2>/dev/null) address=$(cat "$d/address")"
	udevadm info -q property "$d" | grep -E '^(INTERFACE|ID_NET_NAME[A-Z_]*|ID_NET_NAMING_SCHEME|ID_NET_LINK_FILE|ID_NET_DRIVER|ID_PATH)=' |
		sed "s|^|DEBIAN-UDEV $i |"
	networkctl status --no-pager "$i" 2>&1 | sed "s|^|DEBIAN-STATUS $i |"
	# networkd's own record of the link, should networkctl fail.
	sed "s|^|DEBIAN-NETIF $i |" "/run/systemd/netif/links/$(cat "$d/ifindex")" 2>/dev/null
done
journalctl -b --no-pager -o cat -u systemd-udevd -u systemd-networkd 2>&1 | grep -iE 'renam|eth|ens|enp|busy|fail' |
	sed 's/^/DEBIAN-JOURNAL /'
p "DEBIAN-DONE"
systemctl poweroff --no-block
EOF
chmod 755 "$root/usr/local/sbin/ramboot-net-report"

cat >"$root/etc/systemd/system/ramboot-net-report.service" <<'EOF'
[Unit]
Description=Report the network as the booted system sees it (ramboot VM test)
Wants=network-online.target
After=network-online.target systemd-networkd-wait-online.service
# agetty vhangup()s the serial line when it starts, which kills our output to it mid-report.
Before=getty.target serial-getty@ttyS0.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/ramboot-net-report
StandardOutput=tty
StandardError=tty
TTYPath=/dev/ttyS0
TTYReset=no
TTYVHangup=no
# Power off even if the report hangs.
TimeoutStartSec=120
ExecStopPost=/bin/systemctl poweroff --no-block

[Install]
WantedBy=multi-user.target
EOF
chroot "$root" systemctl enable ramboot-net-report.service >/dev/null 2>&1 ||
	die "enabling the report unit failed"

# Keep it small: package caches and lists, documentation, locales.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/* \
	"$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
	"$root"/var/log/* "$root"/tmp/*
rm -f "$root"/var/cache/debconf/*-old

tar --numeric-owner --xattrs -C "$root" -cf - . | zstd -q -T0 -3 >"$work/rootfs.tar.zst"
sum=$(sha256sum "$work/rootfs.tar.zst" | cut -d' ' -f1)
mv "$work/rootfs.tar.zst" "$out"
echo "$sum  $(basename "$out")" >"$out.sha256"
echo "debian-rootfs: built $out ($(du -h "$out" | cut -f1), $(du -sh "$root" | cut -f1) unpacked) in $(($(date +%s) - start))s" >&2
echo "$out"
