package serve

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"regexp"
	"strings"
	"syscall"
	"time"

	"aead.dev/minisign"
	"go.yaml.in/yaml/v3"

	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/internal/trust"
)

// Placeholder is the host a lab writes in its menu's URLs, "http://SERVER/rescue.tar.zst";
// the served menu has the address the client used in its place.
const Placeholder = "SERVER"

// placeholderURL matches the placeholder as the host of an http(s) URL anywhere in the menu
// (file URLs, and URLs inside command lines such as ramroot=http://SERVER/x.tar.zst), with
// any port written after it (the client's Host header carries the port), followed by the end
// of the host. "http://SERVERFARM/" and "http://server/" are left alone.
var placeholderURL = regexp.MustCompile(`((?i:https?)://)` + Placeholder + `(:[0-9]*)?([^A-Za-z0-9._\-]|$)`)

// menu is a menu file, read and validated once, served rewritten for each client: with the
// client's address for the placeholder and, under rollback, a default of its own.
//
// Signed menus. With FILE.minisig beside the file, the menu is served byte for byte with that
// signature at MenuPath+".minisig", and nothing in it is rewritten: the operator's signature
// stays valid. With a signing key (`--sign-key`), every rendition the server makes is signed
// with it instead, so that an initramfs trusting that key boots it; a rendition equal to the
// file is served with the operator's own signature when there is one.
type menu struct {
	path     string // "/menu.yaml" for YAML, "/menu.cfg" for pxelinux
	file     []byte // the file as read
	template []byte // the file, relative URLs of a YAML menu made http://SERVER/...
	modTime  time.Time
	sample   *bootmenu.Menu // parsed from the template, for tests
	// sig is FILE.minisig (nil when there is none): it signs file.
	sig []byte
	// key signs the renditions (nil: no key; then a signed menu is served verbatim).
	key *minisign.PrivateKey
}

// verbatim reports whether the menu is served byte for byte: signed, with no key to sign a
// rendition of it.
func (m *menu) verbatim() bool { return m.sig != nil && m.key == nil }

// loadMenu reads and validates a menu file, and its signature FILE.minisig when there is one.
// Relative URLs in it resolve against the root of the served directory, where the menu is
// served: rescue.tar.zst is DIR/rescue.tar.zst, as /init resolves them against the menu's
// URL. pxelinux includes are read from the directory. key (nil: none) signs what is served.
func loadMenu(file string, root *os.Root, key *minisign.PrivateKey) (*menu, error) {
	data, st, err := readMenuFile(file)
	if err != nil {
		return nil, err
	}
	base := "http://" + Placeholder + "/menu"
	opt := bootmenu.Options{Base: base, Include: includeFrom(root)}
	m, err := bootmenu.ParseWith(data, file, opt)
	if err != nil {
		return nil, err
	}
	mm := &menu{file: data, template: data, modTime: st.ModTime(), key: key}
	mm.path = "/menu.cfg"
	if m.Format == bootmenu.FormatYAML {
		mm.path = "/menu.yaml"
	}
	if err := mm.loadSig(file); err != nil {
		return nil, err
	}
	switch {
	case mm.verbatim():
		// Relative URLs need no rewriting: /init resolves them against the menu's URL.
		if placeholderURL.Match(data) {
			return nil, fmt.Errorf("%s: signed, so served as it is, but its http://%s/ URLs must be rewritten for each client: give a key to sign what is served (--sign-key), or write the server's address in the menu", file, Placeholder)
		}
	case m.Format == bootmenu.FormatYAML:
		if mm.template, err = absoluteYAML(data); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
	default:
		// pxelinux paths are relative to the server's root already (the directory
		// pxelinux.0 came from), which /init resolves against the menu's URL: nothing to
		// rewrite but the placeholder.
	}
	// What clients get must be a valid menu too.
	const sampleHost = "127.0.0.1:8080"
	if mm.sample, err = bootmenu.ParseWith(mm.render(sampleHost), "http://"+sampleHost+mm.path, opt); err != nil {
		return nil, fmt.Errorf("%s: the rewritten menu does not parse: %w", file, err)
	}
	return mm, nil
}

// includeFrom reads pxelinux includes from the served directory, as a client would fetch them.
func includeFrom(root *os.Root) func(string) ([]byte, error) {
	return func(ref string) ([]byte, error) {
		u, err := url.Parse(ref)
		if err != nil {
			return nil, err
		}
		name, ok := cleanPath(u.Path)
		if !ok {
			return nil, fmt.Errorf("%s: a path with a .. element", ref)
		}
		f, st, err := openFile(root, name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if st.IsDir() {
			return nil, fmt.Errorf("%s: a directory, not a menu file", name)
		}
		data, err := bootmenu.ReadAll(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return data, nil
	}
}

// readMenuFile reads the menu file of Options.Menu: a regular file of at most
// bootmenu.MaxMenuSize. A FIFO or a device is refused without being read (a FIFO would block
// New in open(2) until a writer comes; /dev/zero would fill the memory).
func readMenuFile(file string) ([]byte, fs.FileInfo, error) {
	// Stat first, so that a device is not even opened, then open without blocking (for a
	// FIFO put in its place meanwhile) and check what was opened.
	st, err := os.Stat(file)
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", file)
	}
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if st, err = f.Stat(); err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: not a regular file", file)
	}
	data, err := bootmenu.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	return data, st, nil
}

// maxSigSize bounds FILE.minisig: a real one is about 300 bytes.
const maxSigSize = 4 << 10

// loadSig reads FILE.minisig when there is one. Its trusted comment must name the file the menu
// is served as (menu.yaml or menu.cfg), or /init refuses it: without a key that is an error;
// with one the server signs what it serves itself.
func (m *menu) loadSig(file string) error {
	f, err := os.Open(file + trust.SigSuffix)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSigSize+1))
	if err != nil {
		return err
	}
	var sig minisign.Signature
	if len(b) > maxSigSize {
		err = fmt.Errorf("larger than %d bytes", maxSigSize)
	} else {
		err = sig.UnmarshalText(b)
	}
	if err != nil {
		return fmt.Errorf("%s%s: %w", file, trust.SigSuffix, err)
	}
	served := path.Base(m.path)
	if name := trust.CommentFile(sig.TrustedComment); name != served {
		if m.key != nil {
			return nil // the key signs every rendition, this one too
		}
		return fmt.Errorf("%s%s: the signature is for file %q but the menu is served as %s, which /init would refuse: sign it as %s (a copy named %s; minisign -t 'file:%s'), or give a key to sign what is served (--sign-key)", file, trust.SigSuffix, name, served, served, served, served)
	}
	m.sig = b
	return nil
}

// render returns the menu for a client that reached the server at host ("10.0.2.2:8080").
// host must be valid (validHost): it is spliced in as is. A menu served verbatim is the file.
func (m *menu) render(host string) []byte {
	if m.verbatim() {
		return m.file
	}
	return placeholderURL.ReplaceAll(m.template, []byte("${1}"+host+"${3}"))
}

// owns reports whether path is the menu's or its signature's.
func (m *menu) owns(path string) bool {
	return path == m.path || path == m.path+trust.SigSuffix
}

// signature returns the signature of body, a rendition of the menu for host: the operator's
// when body is the file, else one made with the key; nil when neither signs it.
func (m *menu) signature(body []byte, host string) []byte {
	if m.sig != nil && bytes.Equal(body, m.file) {
		return m.sig
	}
	if m.key == nil {
		return nil
	}
	r := minisign.NewReader(bytes.NewReader(body))
	io.Copy(io.Discard, r) // a bytes.Reader does not fail
	// minisign's own form of trusted comment, with the file name /init checks. The timestamp
	// is the file's: the same rendition gets the same signature (and ETag).
	comment := fmt.Sprintf("timestamp:%d\tfile:%s\thashed\tramboot serve: rendition for %s", m.modTime.Unix(), path.Base(m.path), host)
	return append(r.SignWithComments(*m.key, comment, "signature from ramboot serve"), '\n')
}

// serve serves the menu rendered for the host the client asked, or its signature.
func (m *menu) serve(w http.ResponseWriter, r *http.Request) {
	m.serveEdited(w, r, "Host", nil)
}

// serveEdited serves the menu rendered for the host the client asked, changed by edit when it
// is set, or (at MenuPath+".minisig") that rendition's signature; vary names the request
// headers the answer depends on.
func (m *menu) serveEdited(w http.ResponseWriter, r *http.Request, vary string, edit func([]byte) []byte) {
	host := r.Host
	if host == "" {
		// HTTP/1.0 without Host: the address the connection came in on.
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = a.String()
		}
	}
	if !validHost(host) {
		http.Error(w, "bad Host header", http.StatusBadRequest)
		return
	}
	body := m.render(host)
	if edit != nil && !m.verbatim() {
		body = edit(body)
	}
	if r.URL.Path != m.path {
		if body = m.signature(body, host); body == nil {
			http.Error(w, "the menu is not signed", http.StatusNotFound)
			return
		}
	}
	sum := sha256.Sum256(body)
	w.Header().Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Vary", vary)
	http.ServeContent(w, r, "", m.modTime, bytes.NewReader(body))
}

var (
	hostName = regexp.MustCompile(`^[A-Za-z0-9._\-]+(:[0-9]{1,5})?$`)
	hostIPv6 = regexp.MustCompile(`^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$`)
)

// validHost reports whether a Host header is a host name or address with an optional port,
// and nothing that could change the meaning of the URLs it is spliced into.
func validHost(h string) bool {
	return hostName.MatchString(h) || hostIPv6.MatchString(h)
}

// absoluteYAML makes the relative URLs of a YAML menu absolute on the placeholder host, so
// that the served menu means the same wherever it is saved or embedded. Only the fields that
// are URLs are touched (ramroot, kexec kernel and initrd, their url and mirrors, menu);
// "/path" stays a path inside the initramfs, as /init reads it. A menu without relative URLs
// is returned as is, comments and layout included; otherwise it is re-encoded, which keeps
// comments but not necessarily the layout.
func absoluteYAML(data []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	changed := false
	abs := func(n *yaml.Node) {
		if n == nil || n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			return
		}
		if s, ok := absoluteURL(n.Value); ok {
			n.Value, n.Tag, changed = s, "!!str", true
		}
	}
	file := func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.ScalarNode {
			abs(n)
			return
		}
		abs(value(n, "url"))
		if ms := value(n, "mirrors"); ms != nil {
			for _, it := range ms.Content {
				abs(it)
			}
		}
	}
	if len(doc.Content) == 0 {
		return data, nil
	}
	if entries := value(doc.Content[0], "entries"); entries != nil {
		for _, e := range entries.Content {
			file(value(e, "ramroot"))
			abs(value(e, "menu"))
			if k := value(e, "kexec"); k != nil {
				file(value(k, "kernel"))
				if in := value(k, "initrd"); in != nil && in.Kind == yaml.SequenceNode {
					for _, it := range in.Content {
						file(it)
					}
				} else {
					file(in)
				}
			}
		}
	}
	if !changed {
		return data, nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// value returns the value of key in mapping n, nil when n is no mapping or has no such key.
func value(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// absoluteURL resolves a relative reference against the placeholder server's root; false for
// absolute URLs, "/paths" and what does not parse (validation reported that already).
func absoluteURL(ref string) (string, bool) {
	if ref == "" || strings.HasPrefix(ref, "/") {
		return "", false
	}
	u, err := url.Parse(ref)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "", false
	}
	base := &url.URL{Scheme: "http", Host: Placeholder, Path: "/"}
	return base.ResolveReference(u).String(), true
}
