package kmod

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// NewLinuxLoader returns the Loader /init uses: finit_module(2) on modulesDir/path for a plain
// .ko, init_module(2) on the decompressed image for .ko.xz, .ko.zst and .ko.gz (the kernel's
// own in-kernel decompression is a build option we cannot count on). A module that is already
// loaded (EEXIST) counts as loaded. It also lists loaded modules from /proc/modules.
func NewLinuxLoader(modulesDir string) Loader {
	return linuxLoader{dir: modulesDir}
}

type linuxLoader struct{ dir string }

func (l linuxLoader) Load(path, params string) error {
	err := loadFile(filepath.Join(l.dir, filepath.FromSlash(path)), params)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}

func loadFile(name, params string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	if strings.HasSuffix(name, ".ko") {
		if err := unix.FinitModule(int(f.Fd()), params, 0); err != nil {
			return fmt.Errorf("finit_module %s: %w", name, err)
		}
		return nil
	}
	rc, err := decompress(f, name)
	if err != nil {
		return fmt.Errorf("decompressing %s: %w", name, err)
	}
	defer rc.Close()
	image, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("decompressing %s: %w", name, err)
	}
	if err := unix.InitModule(image, params); err != nil {
		return fmt.Errorf("init_module %s: %w", name, err)
	}
	return nil
}

// Loaded returns the names of the loaded modules, from /proc/modules.
func (linuxLoader) Loaded() (map[string]bool, error) {
	f, err := os.Open("/proc/modules")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseProcModules(f)
}
