package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// TestVMImageServe boots an image made by `ramboot image` from a directory and served by
// `ramboot serve`: the host tools and /init end to end, no container engine, no nginx.
func TestVMImageServe(t *testing.T) {
	setup(t)
	tools := t.TempDir()
	rb := filepath.Join(tools, "ramboot")
	if err := goBuild(rb, "github.com/ramboot/ramboot/cmd/ramboot"); err != nil {
		t.Fatal(err)
	}
	root := testinitRoot(t, filepath.Join(tools, "root"), "image-serve-ok")

	srv := filepath.Join(tools, "srv")
	os.Mkdir(srv, 0o755)
	out, err := exec.Command(rb, "image", "-q", "dir:"+root, filepath.Join(srv, "made.tar.zst")).CombinedOutput()
	if err != nil {
		t.Fatalf("ramboot image: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(srv, "made.tar.zst.sha256")); err != nil {
		t.Fatalf("no .sha256 beside the image: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, rb, "serve", "--addr", "127.0.0.1:0", srv)
	stdout, _ := cmd.StdoutPipe()
	var logBuf strings.Builder
	cmd.Stderr = &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	port := ""
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := regexp.MustCompile(`http://127\.0\.0\.1:(\d+)/`).FindStringSubmatch(sc.Text()); m != nil {
			port = m[1]
			break
		}
	}
	if port == "" {
		t.Fatal("ramboot serve printed no URL")
	}
	go func() {
		for sc.Scan() {
		}
	}()
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: built.initrd,
		Append: fmt.Sprintf("boot=ramdisk ramroot=http://10.0.2.2:%s/made.tar.zst BOOTIF=%s ramboot.onerror=poweroff", port, bootif(mac1)),
		NICs:   []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`sha256 [0-9a-f]+… verified`, bootTimeout) // from the .sha256 ramboot image wrote
	vm.Expect(`TESTINIT-MARKER image-serve-ok`, bootTimeout)
	vm.Expect(`TESTINIT-DONE`, time.Minute)
	cancel()
	if !strings.Contains(logBuf.String(), "GET /made.tar.zst 200") {
		t.Errorf("ramboot serve's log does not show the download:\n%s", logBuf.String())
	}
}

// testinitRoot makes a root directory at root for `ramboot image dir:`: testinit as /sbin/init
// (through an absolute symlink) and /etc/marker saying marker.
func testinitRoot(t *testing.T, root, marker string) string {
	t.Helper()
	for _, d := range []string{"sbin", "lib", "etc/systemd/network", "proc", "sys", "dev", "run", "tmp"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	bin, err := os.ReadFile(filepath.Join(built.dir, "testinit"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "lib/testinit"), bin, 0o755)
	os.Symlink("/lib/testinit", filepath.Join(root, "sbin/init"))
	os.WriteFile(filepath.Join(root, "etc/marker"), []byte(marker+"\n"), 0o644)
	return root
}
