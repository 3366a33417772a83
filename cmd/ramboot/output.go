package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// createOutput creates a temporary file beside out, to be renamed over it once complete (so
// that out is never a partial file), with mode perm less the umask: the mode out would have
// had if created in place. os.CreateTemp makes files 0600, and an initramfs served by nginx
// running as www-data was answered with 403.
func createOutput(out string, perm fs.FileMode) (*os.File, error) {
	dir, base := filepath.Split(out)
	if dir == "" {
		dir = "."
	}
	for range 100 {
		name := filepath.Join(dir, "."+base+".tmp"+strconv.FormatUint(rand.Uint64()%1e9, 10))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("creating %s: %w", out, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("creating a temporary file beside %s: too many exist", out)
}
