// Package atomicfile replaces a file so that a reader sees either the old content or the new,
// never a half-written file, and nothing is left behind when the write fails. /init writes the
// booted system's resolv.conf, boot report and TPM event log with it, and the network files it
// writes into a booted image (WriteIn, confined to the image's root).
package atomicfile

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
)

// WriteFile writes data to name through a temporary file in the same directory and a rename,
// creating the directory (0755) when it is missing. The file gets perm exactly (no umask). On
// any error the temporary file is removed and name is left as it was.
func WriteFile(name string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer r.Close()
	return WriteIn(r, filepath.Base(name), data, perm)
}

// WriteIn is WriteFile for a slash-separated name inside r: nothing outside r is touched, and a
// symlink at name is replaced, not followed.
func WriteIn(r *os.Root, name string, data []byte, perm os.FileMode) error {
	if err := r.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	// A name of its own per write (math/rand/v2 never waits for the kernel's random pool), so
	// that two writers of one file cannot remove each other's temporary file.
	tmp := path.Join(path.Dir(name), fmt.Sprintf(".%s.%016x.ramboot-tmp", path.Base(name), rand.Uint64()))
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(perm) // whatever the umask
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, name)
	}
	if err != nil {
		r.Remove(tmp)
	}
	return err
}
