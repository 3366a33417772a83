package vmtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium starts Debian's headless chromium for a test (Missing when there is none) and
// returns its chromedp context; the browser ends with the test. The flags keep it off the
// network (closed here and in CI) and out of a sandbox it cannot have as root. The first
// chromedp action on the context starts the browser: give that one no timeout.
func Chromium(t testing.TB) context.Context {
	t.Helper()
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		Missing(t, "chromium")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1500, 640),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// Artifact returns the path where a test saves a file for people to look at (a screenshot):
// $RAMBOOT_ARTIFACTS/name, else ramboot-artifacts/name in the temporary directory ($TMPDIR).
func Artifact(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("RAMBOOT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ramboot-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}
