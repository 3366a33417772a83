#!/bin/sh
# /etc/rc of the demo image, run by busybox init (see scripts/demo.sh's inittab).
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
hostname ramboot-demo
echo
echo "Welcome to the ramboot demo image: this root file system is a tmpfs filled over HTTP."
echo "Root: $(grep ' / ' /proc/mounts | head -n1)"
echo "Kernel command line: $(cat /proc/cmdline)"
ifconfig eth0 2>/dev/null | head -n 2
echo "Type 'poweroff' to stop the VM."
