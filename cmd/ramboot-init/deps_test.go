package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostOnly are packages /init must never link: builders, servers and converters for the host,
// test tooling, and anything that would drag them in.
var hostOnly = []string{
	"github.com/ramboot/ramboot/internal/initramfs",
	"github.com/ramboot/ramboot/internal/vmtest",
	"github.com/ramboot/ramboot/internal/ptytest",
	"github.com/ramboot/ramboot/internal/imageconv",
	"github.com/ramboot/ramboot/internal/serve",
	"github.com/ramboot/ramboot/cmd/ramboot",
	// UKI building and Secure Boot signing happen on the host; /init only reads efivarfs.
	"github.com/ramboot/ramboot/internal/uki",
	"github.com/ramboot/ramboot/internal/peimage",
	"github.com/ramboot/ramboot/internal/authenticode",
	"github.com/ramboot/ramboot/internal/pemkey",
	// /init speaks the registry protocol with go-containerregistry's transport (ping, tokens,
	// credentials), name and v1 (manifests); not its image readers and writers, which pull
	// in tarball, layout and daemon code.
	"github.com/google/go-containerregistry/pkg/v1/tarball",
	"github.com/google/go-containerregistry/pkg/v1/layout",
	"github.com/google/go-containerregistry/pkg/v1/daemon",
	"github.com/google/go-containerregistry/pkg/v1/mutate",
	"github.com/google/go-containerregistry/pkg/v1/remote$", // its transport/ is allowed
	"github.com/google/go-containerregistry/pkg/registry",
	"github.com/google/go-containerregistry/pkg/crane",
	"github.com/chromedp",
	// Router advertisements are parsed by netup's own code; ndp (with x/net's ICMP and IDNA
	// and x/text's tables, 220 KiB) is only the fuzz test's reference.
	"github.com/mdlayher/ndp",
	"net/http/httptest",
	"testing",
}

// TestInitDependencies is the guard: /init is PID 1 of every machine, and stays small and free
// of host-only code.
func TestInitDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, bad := range hostOnly {
			exact, only := strings.CutSuffix(bad, "$")
			if dep == exact || (!only && strings.HasPrefix(dep, bad+"/")) {
				t.Errorf("/init links host-only package %s", dep)
			}
		}
	}
}

// initBudget is the size the stripped static /init may reach. It is about 11.4 MiB now (make
// bench prints it; built without HTTP/2), most of it net/http with TLS, netlink, DHCP, the decompressors, the menu,
// the chain of trust (minisign, bcrypt, go-tpm: 0.7 MiB) and the registry client
// (go-containerregistry's transport, name and v1: 0.6 MiB).
const initBudget = 12 << 20

func TestInitSize(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "init")
	if err := goBuild(bin, "github.com/ramboot/ramboot/cmd/ramboot-init"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("/init: %.1f MiB stripped, budget %d MiB", float64(st.Size())/(1<<20), initBudget>>20)
	if st.Size() > initBudget {
		t.Errorf("/init is %d bytes, over the %d byte budget", st.Size(), initBudget)
	}
	// Static: no interpreter, no dynamic section.
	if b, _ := os.ReadFile(bin); strings.Contains(string(b[:min(len(b), 4096)]), "ld-linux") {
		t.Error("/init is dynamically linked")
	}
	// Started by hand on a running system it touches nothing: it says what it is and exits
	// (before, it mounted, ran DHCP on the host's NICs and would have rebooted it at the end).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = []string{"PATH=/nonexistent"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "runs only as PID 1") {
		t.Errorf("/init run outside PID 1: %v, output %q; want exit status 2 and the PID 1 notice", err, out)
	}
}
