package serve

import (
	"errors"
	"net/http"
	"net/url"
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
	f, err := h.root.Open(name)
	if err != nil {
		code := errStatus(err)
		http.Error(w, http.StatusText(code), code)
		return
	}
	defer f.Close()
	// Stat the open file, not the name: the validators then describe the bytes being sent
	// even if the file is replaced meanwhile.
	st, err := f.Stat()
	if err != nil {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
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
	case st.Mode().IsRegular():
		w.Header().Set("ETag", etag(st))
		// Revalidate every time: lab images are rebuilt in place, and the ETag makes a
		// revalidation cheap.
		w.Header().Set("Cache-Control", "no-cache")
		http.ServeContent(w, r, st.Name(), st.ModTime(), f)
	default:
		// Devices, FIFOs and sockets: reading one could block or never end.
		http.Error(w, "forbidden", http.StatusForbidden)
	}
}
