#!/usr/bin/env bash
# make demo: on a fresh Debian/Ubuntu machine, install what is missing, get a stock kernel,
# build the initramfs and a small demo image, serve them with `ramboot serve`, and boot QEMU
# on this terminal with the menu up. Quit QEMU with Ctrl-A X.
#
# DEMO_DIR (default /tmp/ramboot-demo) keeps the build; DEMO_PORT the server's port;
# DEMO_KVM=1 uses KVM.
# DEMO_SMOKE=1 boots without a terminal and checks that the menu appears (used by a test).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DEMO_DIR:-/tmp/ramboot-demo}
port=${DEMO_PORT:-8089}
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v zstd >/dev/null || need+=(zstd)
command -v depmod >/dev/null || [ -x /sbin/depmod ] || need+=(kmod)
[ -x /bin/busybox ] && /bin/busybox --list | grep -qx cttyhack || need+=(busybox-static)
if ((${#need[@]})); then
	say "installing ${need[*]}"
	if [ "$(id -u)" != 0 ]; then
		echo "make demo: run as root, or install: ${need[*]}" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

say "building ramboot"
make -s build
kdir=$(bash scripts/get-kernel.sh)
ver=$(ls "$kdir/lib/modules" | head -n1)
mkdir -p "$dir/srv"

say "building the initramfs for Debian's kernel $ver"
bin/ramboot initramfs --modules "$kdir/lib/modules/$ver" --busybox /bin/busybox -o "$dir/srv/ramboot.cpio.zst"
cp "$kdir/boot/vmlinuz-$ver" "$dir/srv/vmlinuz"

say "making the demo image (busybox) with ramboot image"
root="$dir/root"
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,root}
cp /bin/busybox "$root/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
done
# busybox init runs the banner, then a shell on the console (respawned when it exits).
ln -sf ../bin/busybox "$root/sbin/init"
install -m 0755 demo/init.sh "$root/etc/rc"
printf '::sysinit:/etc/rc\n::respawn:-/bin/cttyhack /bin/sh\n::shutdown:/bin/umount -a -r\n' > "$root/etc/inittab"
echo "root:x:0:0:root:/root:/bin/sh" > "$root/etc/passwd"
bin/ramboot image --force "dir:$root" "$dir/srv/demo.tar.zst"

say "serving $dir/srv on 127.0.0.1:$port (the VM sees it at 10.0.2.2:$port)"
bin/ramboot serve --addr "127.0.0.1:$port" --menu assets/demo.yaml "$dir/srv" 2>"$dir/serve.log" &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do
	curl -fs "http://127.0.0.1:$port/menu.yaml" >/dev/null && break
	sleep 0.1
done

qemu=(qemu-system-x86_64 -machine q35 -cpu max -m 1G -smp 2 -nographic -no-reboot
	-kernel "$dir/srv/vmlinuz" -initrd "$dir/srv/ramboot.cpio.zst"
	-append "console=ttyS0 ramboot.menu=http://10.0.2.2:$port/menu.yaml"
	-nic user,model=virtio-net-pci,mac=52:54:00:12:34:56)
# KVM is opt-in (DEMO_KVM=1): a /dev/kvm that opens is not always one that works (nested
# virtualisation), and software emulation boots in seconds anyway.
[ -n "${DEMO_KVM:-}" ] && qemu+=(-enable-kvm -cpu host)
if [ -n "${DEMO_SMOKE:-}" ]; then
	say "smoke test: booting until the menu shows"
	timeout 180 "${qemu[@]}" </dev/null >"$dir/console.log" 2>&1 &
	vm=$!
	for _ in $(seq 900); do
		if grep -aq "Demo rescue image" "$dir/console.log"; then
			kill $vm
			say "the menu is up"
			exit 0
		fi
		sleep 0.2
	done
	kill $vm 2>/dev/null
	echo "make demo: the menu did not appear; console:" >&2
	tail -n 30 "$dir/console.log" >&2
	exit 1
fi
say "booting QEMU: the menu comes up on this terminal (Ctrl-A X quits)"
"${qemu[@]}"
