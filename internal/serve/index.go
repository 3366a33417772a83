package serve

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

// listing is one line of a directory index.
type listing struct {
	Name  string // with a trailing "/" for directories
	Size  int64  // -1 for directories
	MTime time.Time
}

// Href is the entry's link, relative to the directory.
func (l listing) Href() string {
	return (&url.URL{Path: "./" + l.Name}).EscapedPath()
}

// SizeText is the size in bytes, "-" for directories.
func (l listing) SizeText() string {
	if l.Size < 0 {
		return "-"
	}
	return strconv.FormatInt(l.Size, 10)
}

// Time is the modification time, UTC, to the second.
func (l listing) Time() string {
	return l.MTime.UTC().Format(time.RFC3339)
}

// readListing lists directory f (name inside the root), sorted by name. Symlinks are listed as
// what they point to; those that dangle or leave the directory are left out, as they cannot be
// fetched. Other special files are left out too.
func (h *Handler) readListing(f *os.File, name string) ([]listing, error) {
	ents, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var out []listing
	for _, e := range ents {
		var st fs.FileInfo
		if e.Type()&fs.ModeSymlink != 0 {
			st, err = h.root.Stat(path.Join(name, e.Name()))
		} else {
			st, err = e.Info()
		}
		if err != nil {
			continue
		}
		switch {
		case st.IsDir():
			out = append(out, listing{Name: e.Name() + "/", Size: -1, MTime: st.ModTime()})
		case st.Mode().IsRegular():
			out = append(out, listing{Name: e.Name(), Size: st.Size(), MTime: st.ModTime()})
		}
	}
	slices.SortFunc(out, func(a, b listing) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

var indexHTML = template.Must(template.New("index").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Index of {{.Path}}</title></head>
<body><h1>Index of {{.Path}}</h1>
<table>
<tr><th align="left">Name</th><th align="right">Size</th><th align="left">Modified (UTC)</th></tr>
{{- if ne .Path "/"}}
<tr><td><a href="../">../</a></td><td></td><td></td></tr>
{{- end}}
{{- range .Entries}}
<tr><td><a href="{{.Href}}">{{.Name}}</a></td><td align="right">{{.SizeText}}</td><td>{{.Time}}</td></tr>
{{- end}}
</table></body></html>
`))

// serveIndex writes the index of directory f: HTML, or for a client that prefers text/plain
// one line per entry, "NAME\tSIZE\tMTIME" (directories end in "/" and have size "-", times
// are RFC 3339 UTC), for scripts.
func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request, f *os.File, name string) {
	entries, err := h.readListing(f, name)
	if err != nil {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if prefersPlain(r.Header.Values("Accept")) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for _, e := range entries {
			fmt.Fprintf(&buf, "%s\t%s\t%s\n", e.Name, e.SizeText(), e.Time())
		}
	} else {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		p := "/"
		if name != "." {
			p += name + "/"
		}
		if err := indexHTML.Execute(&buf, struct {
			Path    string
			Entries []listing
		}{p, entries}); err != nil {
			http.Error(w, "internal server error", http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Vary", "Accept")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(buf.Bytes())
}

// prefersPlain reports whether an Accept header ranks text/plain above text/html (which
// text/* or */* stand for when it is not named). Without Accept, HTML.
func prefersPlain(accept []string) bool {
	plain, html, text, all := -1.0, -1.0, -1.0, -1.0
	for _, v := range accept {
		for _, part := range strings.Split(v, ",") {
			typ, params, _ := strings.Cut(part, ";")
			q := 1.0
			for _, p := range strings.Split(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(k, "q") {
					if f, err := strconv.ParseFloat(val, 64); err == nil {
						q = f
					}
				}
			}
			switch strings.ToLower(strings.TrimSpace(typ)) {
			case "text/plain":
				plain = max(plain, q)
			case "text/html":
				html = max(html, q)
			case "text/*":
				text = max(text, q)
			case "*/*":
				all = max(all, q)
			}
		}
	}
	if html < 0 {
		html = text
	}
	if html < 0 {
		html = all
	}
	return plain > 0 && plain > html
}
