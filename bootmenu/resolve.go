package bootmenu

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// resolver turns the references of a menu into what the loader fetches. Absolute URLs stay as
// they are; relative ones are resolved against the directory of the base, which is a URL
// (http, https, file) or an absolute local path. Without a base they stay relative, and
// validation reports them.
type resolver struct {
	dir     *url.URL // the base's directory, ending in "/"; nil for a local path or no base
	dirPath string   // the base's directory when it is a local path
	// hostRoot makes "/x" relative to the server's root when the base is a URL, as pxelinux
	// reads paths (relative to the TFTP/HTTP root); YAML menus keep "/x" as a local path.
	hostRoot bool
}

// newResolver returns a resolver for references in a menu read from base. base is
// "http://boot/menus/lab.yaml" (references resolve beside it), "/etc/ramboot/menu.yaml", or
// anything else (no resolution).
func newResolver(base string) resolver {
	if strings.HasPrefix(base, "/") {
		return resolver{dirPath: path.Dir(base)}
	}
	u, err := url.Parse(base)
	if err != nil {
		return resolver{}
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		if u.Host == "" {
			return resolver{}
		}
	case "file":
		if u.Opaque != "" || u.Path == "" {
			return resolver{}
		}
	default:
		return resolver{}
	}
	return resolver{dir: u.ResolveReference(&url.URL{Path: "."})}
}

// pxelinuxResolver resolves as lpxelinux does: relative to the config's directory minus a
// trailing pxelinux.cfg/, that is relative to the directory pxelinux.0 came from.
func pxelinuxResolver(base string) resolver {
	r := newResolver(base)
	r.hostRoot = true
	if r.dir != nil {
		if p, ok := strings.CutSuffix(r.dir.Path, "/pxelinux.cfg/"); ok {
			d := *r.dir
			d.Path, d.RawPath = p+"/", ""
			r.dir = &d
		}
	}
	if p, ok := strings.CutSuffix(r.dirPath, "/pxelinux.cfg"); ok {
		r.dirPath = p
		if r.dirPath == "" {
			r.dirPath = "/"
		}
	}
	return r
}

// resolve returns ref made absolute. ref "" stays "" (the caller reports a missing URL).
func (r resolver) resolve(ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	if r.hostRoot {
		// pxelinux's "::path" is relative to the server's root.
		if p, ok := strings.CutPrefix(ref, "::"); ok {
			ref = "/" + strings.TrimPrefix(p, "/")
		}
	}
	if strings.HasPrefix(ref, "/") && !(r.hostRoot && r.dir != nil) {
		return ref, nil
	}
	u, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("invalid URL %q", ref)
	}
	if u.Scheme != "" || u.Host != "" {
		return ref, nil
	}
	switch {
	case r.dir != nil:
		return r.dir.ResolveReference(u).String(), nil
	case r.dirPath != "":
		// A local path: no URL escaping, a query or fragment would be part of the name.
		return path.Join(r.dirPath, ref), nil
	}
	return ref, nil
}
