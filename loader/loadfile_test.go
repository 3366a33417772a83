package loader

import (
	"context"
	"os"
	"testing"
)

// TestLoadFile loads the image named by $RAMBOOT_LOAD_FILE (a local path or a URL) into a
// temporary directory (under $RAMBOOT_LOAD_DIR if set, e.g. a tmpfs), for profiling the loader
// with -cpuprofile and -memprofile on real images such as bench/run.sh's.
func TestLoadFile(t *testing.T) {
	name := os.Getenv("RAMBOOT_LOAD_FILE")
	if name == "" {
		t.Skip("RAMBOOT_LOAD_FILE not set")
	}
	dir, err := os.MkdirTemp(os.Getenv("RAMBOOT_LOAD_DIR"), "load")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	res, err := Load(context.Background(), dir, []string{name}, Options{NoSidecar: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d entries, %d bytes in %v (%.1f MB/s)", name, res.Entries, res.Uncompressed, res.Duration,
		float64(res.Uncompressed)/res.Duration.Seconds()/1e6)
}
