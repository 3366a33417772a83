package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// TestVMRegistry boots the stock kernel with ramroot=docker://10.0.2.2:PORT/...: an image
// pushed by `ramboot image` to Debian's docker-registry on the host, pulled by /init over the
// registry protocol (plain HTTP after HTTPS failed: 10.0.2.2 is a private address), to the
// image's init.
func TestVMRegistry(t *testing.T) {
	setup(t)
	regBin := vmtest.Tool(t, "docker-registry")
	tools := t.TempDir()
	rb := filepath.Join(tools, "ramboot")
	if err := goBuild(rb, "github.com/ramboot/ramboot/cmd/ramboot"); err != nil {
		t.Fatal(err)
	}
	// The registry, on the host's loopback: QEMU's user network reaches it as 10.0.2.2.
	addr := startRegistry(t, regBin, tools)
	port := addr[strings.LastIndex(addr, ":")+1:]

	root := testinitRoot(t, filepath.Join(tools, "root"), "registry-ok")
	out, err := exec.Command(rb, "image", "-q", "dir:"+root, "docker://"+addr+"/lab/vm:v1").CombinedOutput()
	if err != nil {
		t.Fatalf("ramboot image: %v: %s", err, out)
	}
	digest, _, _ := strings.Cut(string(out), " ")

	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf("ramroot=docker://10.0.2.2:%s/lab/vm:v1 BOOTIF=%s ramboot.onerror=poweroff", port, bootif(mac1)),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`lab/vm:v1 is `+digest, bootTimeout) // the tag resolved once, its digest logged
	vm.Expect(`TESTINIT-MARKER registry-ok`, bootTimeout)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
}
