package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// leftoverHooks are hooks that leave processes behind, as operators' hooks do.
var leftoverHooks = map[string]string{
	// An orphan that exits a second later: reparented to /init, a zombie unless reaped.
	"pre-network/10-orphan": `(sleep 1; exit 7) >/dev/null 2>&1 &
echo $! >> /tmp/orphans
echo "left orphan $!"`,
	// Fails the first attempt, succeeds the next: exit statuses reach /init with orphans
	// being reaped all around.
	"pre-network/20-flaky": `if [ ! -e /tmp/flaky ]; then : > /tmp/flaky; echo "BMC unreachable" >&2; exit 3; fi
echo "BMC ok"`,
	// The daemon: it keeps the hook's stdout, and outlives the SIGHUP the hook's group
	// gets as the hook exits (once it ignores it: the hook waits for that).
	"pre-fetch/10-daemon": `(trap "" HUP; : > /tmp/daemon-ready; exec sleep 300) &
while [ ! -e /tmp/daemon-ready ]; do sleep 0.1; done
echo "daemon $! started"`,
	// Waits until the orphans have exited, then counts the zombies PID 1 has.
	"post-extract/10-zombies": `running() {
	for p in $(cat /tmp/orphans); do
		[ -e /proc/$p/stat ] || continue
		read -r pid comm state rest < /proc/$p/stat
		[ "$state" != Z ] && return 0
	done
	return 1
}
zombies() {
	z=0
	for f in /proc/[0-9]*/stat; do
		read -r pid comm state ppid rest < $f 2>/dev/null || continue
		[ "$state" = Z ] && [ "$ppid" = 1 ] && z=$((z+1))
	done
}
i=0
while running && [ $i -lt 40 ]; do sleep 0.25; i=$((i+1)); done
running && echo "orphans still running"
i=0
zombies
while [ $z != 0 ] && [ $i -lt 12 ]; do sleep 0.25; i=$((i+1)); zombies; done
echo "orphans $(wc -l < /tmp/orphans) exited; zombies of PID 1: $z"`,
}

// TestVMHookLeftovers boots with hooks that leave processes behind (issue 17 items 3 to 5).
// The orphans are reaped and the hooks' exit statuses are right; a daemon that holds a hook's
// stdout does not hold the boot, and lives on into the booted system; and nothing /init mounted
// stays mounted on the old root (a process with the old root, the daemon, would see it).
func TestVMHookLeftovers(t *testing.T) {
	setup(t)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		vmtest.Missing(t, "busybox (busybox-static)")
	}
	hooks := t.TempDir()
	for name, body := range leftoverHooks {
		p := filepath.Join(hooks, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	initrd := filepath.Join(t.TempDir(), "hooks.cpio.zst")
	if err := writeInitramfs(initrd, initramfs.Spec{Init: filepath.Join(built.dir, "ramboot-init"), Modules: built.kernel.Modules, Busybox: bb, Hooks: hooks}); err != nil {
		t.Fatal(err)
	}
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: initrd,
		Append: fmt.Sprintf("ramroot=%s/rootfs.tar.zst BOOTIF=%s", built.base, bootif(mac1)),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	// Item 3: a failing hook fails the attempt, with its name and status; the next succeeds.
	vm.Expect(`10-orphan: left orphan \d+`, bootTimeout)
	vm.Expect(`boot failed: hook pre-network/20-flaky failed: exit status 3: BMC unreachable`, time.Minute)
	vm.Expect(`retrying in 5s`, time.Minute)
	vm.Expect(`10-orphan: left orphan \d+`, time.Minute)
	vm.Expect(`20-flaky: BMC ok`, time.Minute)
	// Item 4: the daemon holds the hook's stdout; the boot goes on at once.
	vm.Expect(`hook pre-fetch/10-daemon`, bootTimeout)
	vm.Expect(`10-daemon: daemon \d+ started`, time.Minute)
	vm.Expect(`fetching http`, time.Minute)
	// Item 3: the orphans of both attempts exited and were reaped.
	vm.Expect(`10-zombies: orphans 2 exited; zombies of PID 1: 0`, time.Minute)
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	t.Logf("QEMU start → marker: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	vm.Wait(time.Minute)
	c := vm.Console()
	if strings.Contains(c, "no child processes") || strings.Contains(c, "orphans still running") {
		t.Error("a hook's status was lost, or the orphans did not exit")
	}
	// Item 5: the daemon, whose root is still the initramfs, sees the old root ("rootfs");
	// nothing /init mounted is left on it. (The kernel's kdevtmpfs thread sees its devtmpfs
	// as "/".)
	other := regexp.MustCompile(`TESTINIT-OTHER-MOUNT (\S+) (\S+)`).FindAllStringSubmatch(c, -1)
	oldRoot := false
	for _, m := range other {
		t.Logf("a process in the booted system sees %s (%s), which its init does not", m[1], m[2])
		if m[1] == "/" {
			oldRoot = oldRoot || m[2] == "rootfs"
			continue
		}
		t.Errorf("left mounted on the old root: %s (%s)", m[1], m[2])
	}
	if !oldRoot {
		t.Errorf("no process with the old root in the booted system (the daemon is gone?): %q", other)
	}
}
