package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"syscall"
)

// cleanPath turns a request path into a name for os.Root: "." for the root, no leading or
// trailing slash. A path with a ".." element is refused outright rather than cleaned: no
// client of ours sends one (they resolve dot segments first), so it is a probe.
func cleanPath(p string) (string, bool) {
	for _, elem := range strings.Split(p, "/") {
		if elem == ".." {
			return "", false
		}
	}
	name := strings.TrimPrefix(path.Clean("/"+p), "/")
	if name == "" {
		name = "."
	}
	return name, true
}

func isNotDir(err error) bool {
	return errors.Is(err, syscall.ENOTDIR)
}

// serveFile serves a regular file (Range, conditional requests, HEAD) or a directory's index.
// Sidecars (NAME.sha256) are plain files: served when present, never made up (see the
// package doc for why).
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request) {
	name, ok := cleanPath(r.URL.Path)
	if !ok {
		http.Error(w, "forbidden", http.StatusForbidden)
		return
	}
	f, st, err := openFile(h.root, name)
	if err != nil {
		code := errStatus(err)
		http.Error(w, http.StatusText(code), code)
		return
	}
	defer f.Close()
	switch {
	case st.IsDir():
		if !strings.HasSuffix(r.URL.Path, "/") {
			// Relative links of the index need the slash; redirect to the cleaned path, so
			// that no "//host" can come out of it.
			target := (&url.URL{Path: "/" + strings.TrimPrefix(name+"/", "./")}).EscapedPath()
			if r.URL.RawQuery != "" {
				target += "?" + r.URL.RawQuery
			}
			http.Redirect(w, r, target, http.StatusMovedPermanently)
			return
		}
		h.serveIndex(w, r, f, name)
	default:
		w.Header().Set("ETag", etag(st))
		// Revalidate every time: lab images are rebuilt in place, and the ETag makes a
		// revalidation cheap.
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, withRange(r, st.Size()), st.Name(), st.ModTime(), f)
	}
}

// errNotServable is returned by openFile for what is neither a regular file nor a directory.
var errNotServable = errors.New("not a regular file or directory")

// openFile opens name in root if it is a regular file or a directory, and returns it with its
// FileInfo (of the open file: the validators then describe the bytes being sent even if the
// file is replaced meanwhile). Anything else is errNotServable, and is not even opened when
// it is that already at the stat: opening a FIFO blocks until a writer comes (each request
// would pin a thread), reading a device may never end. The open is non-blocking all the same,
// for a FIFO put in the file's place between the stat and the open; O_NONBLOCK changes
// nothing for regular files and directories.
//
// Symlinks are followed inside root only (os.Root), like every other access.
func openFile(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	st, err := root.Stat(name)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() && !st.IsDir() {
		return nil, nil, fmt.Errorf("%s: %w", name, errNotServable)
	}
	f, err := root.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	if st, err = f.Stat(); err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() && !st.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", name, errNotServable)
	}
	return f, st, nil
}
