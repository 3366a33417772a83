package bootmenu

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ramboot/ramboot/internal/cmdline"
)

// The YAML schema. Every mapping's keys are listed: an unknown key is an error, so a typo does
// not silently drop a setting.
var (
	menuKeys    = []string{"title", "default", "timeout", "entries", "password", "report"}
	entryKeys   = []string{"name", "title", "ramroot", "kexec", "menu", "action", "locked", "network"}
	ramrootKeys = []string{"init", "size", "cmdline"} // besides fileKeys
	kexecKeys   = []string{"kernel", "initrd", "cmdline", "ipappend", "bootif"}
	fileKeys    = []string{"url", "sha256", "mirrors"}
	// kindKeys are the entry keys of which exactly one is set.
	kindKeys = []string{"ramroot", "kexec", "menu", "action"}
)

// ParseYAML parses and validates a YAML menu. source names the menu in errors and, when it is
// a URL or an absolute path, is what relative URLs resolve against.
//
//	title: Lab rescue          # optional
//	default: rescue            # optional; else the first ramroot or kexec entry
//	timeout: 10s               # or 10 (seconds); 0 boots the default at once; absent waits
//	entries:
//	  - name: rescue           # required, unique, [A-Za-z0-9._-]
//	    title: Debian rescue   # optional, defaults to name
//	    ramroot: {url: rescue.tar.zst, sha256: HEX, mirrors: [URL], init: /sbin/init, size: 75%, cmdline: quiet}
//	  - name: maint
//	    kexec:
//	      kernel: vmlinuz      # a URL, or {url, sha256, mirrors}
//	      initrd: [a.cpio.gz, {url: b.cpio, sha256: HEX}]   # or one URL
//	      cmdline: console=ttyS0
//	      ipappend: true       # add ip= of the lease; bootif: false drops BOOTIF=
//	  - {name: more, menu: other.yaml}
//	  - name: vlan
//	    ramroot: rescue.tar.zst
//	    network:               # the network it boots over, as the command line's
//	      bond: "bond0:eth0,eth1:mode=802.3ad"   # ip=, vlan=, bond=, ifname=, rd.route=,
//	      vlan: vlan42:bond0                     # nameserver= and rd.net.timeout.*
//	      ip: vlan42:dhcp                        # (see networkKeys)
//	  - {name: shell, action: shell}   # or reboot, poweroff
//	    locked: true           # booting it needs the password
//	password: HASH             # optional: bcrypt or argon2id (ramboot passwd); honoured
//	                           # only in a signed menu or one inside the initramfs
func ParseYAML(data []byte, source string) (*Menu, error) {
	return parseYAML(data, source, source)
}

func parseYAML(data []byte, source, base string) (m *Menu, err error) {
	d := &yamlDecoder{src: source, res: newResolver(base)}
	var doc yaml.Node
	if err := unmarshalYAML(data, &doc); err != nil {
		return nil, d.yamlError(data, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return nil, &Error{Source: source, Err: errors.New("empty menu")}
	}
	m, err = d.menu(doc.Content[0])
	if err != nil {
		return nil, err
	}
	// The decoder checks everything with the line it concerns; this is the last line of
	// defence, so that a returned menu always validates.
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// unmarshalYAML is yaml.Unmarshal that turns a panic of the YAML library into an error: the
// menu comes from the network, and /init must not die of it.
func unmarshalYAML(data []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return yaml.Unmarshal(data, n)
}

type yamlDecoder struct {
	src string
	res resolver
}

// yamlError places an error of the YAML library ("yaml: line 3: did not find expected key").
// The library names the line where the enclosing block starts (its "context"), not the line
// at fault: a mis-indented key on line 4 of a list starting on line 2 was reported on line 2.
// problemLine finds the line at fault.
func (d *yamlDecoder) yamlError(data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "\n", "; ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(n); err == nil {
				line, msg = l, after
			}
		}
	}
	if l := problemLine(data, line, msg); l > 0 {
		line = l
	}
	for _, m := range indentationErrors {
		if strings.HasPrefix(msg, m) {
			msg += " (check this line's indentation against the lines above)"
			break
		}
	}
	return &Error{Source: d.src, Line: line, Err: fmt.Errorf("invalid YAML: %s", msg)}
}

// maxSearched bounds the menus problemLine searches: a real menu is a few KiB, and a huge
// broken one (up to MaxMenuSize) would cost /init seconds of parsing on a slow machine.
const maxSearched = 256 << 10

// indentationErrors are the YAML library's messages that mostly mean a line indented wrongly.
var indentationErrors = []string{
	"did not find expected key",
	"did not find expected '-' indicator",
	"mapping values are not allowed in this context",
	"found a tab character that violates indentation",
	"found character that cannot start any token",
}

// problemLine returns the first line, from line from on, at which data stops parsing with the
// error msg: the shortest prefix of whole lines that fails so. The library's line is where the
// block holding the error starts, so the search starts there; 0 when no prefix fails so. The
// search is a bisection (a prefix that fails keeps failing when lines are added): a few
// parses of at most the whole menu, which is not searched beyond maxSearched bytes.
func problemLine(data []byte, from int, msg string) int {
	if len(data) > maxSearched {
		return 0
	}
	var ends []int // ends[i]: the offset after line i+1
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		ends = append(ends, len(data))
	}
	fails := func(n int) bool {
		var doc yaml.Node
		err := unmarshalYAML(data[:ends[n-1]], &doc)
		if err == nil {
			return false
		}
		got := strings.TrimPrefix(err.Error(), "yaml: ")
		if rest, ok := strings.CutPrefix(got, "line "); ok {
			if _, after, ok := strings.Cut(rest, ": "); ok {
				got = after
			}
		}
		return strings.ReplaceAll(got, "\n", "; ") == msg
	}
	if strings.Contains(msg, "end of stream") {
		from = 1 // an unclosed quote or bracket: where it opens, which the library does not say
	}
	lo, hi := max(from, 1), len(ends)
	if lo > hi || !fails(hi) {
		return 0
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// at makes an error about node n (its line), in entry ctx, field field.
func (d *yamlDecoder) at(n *yaml.Node, ctx, field string, err error) error {
	return &Error{Source: d.src, Line: n.Line, Entry: ctx, Field: field, Err: err}
}

func (d *yamlDecoder) errf(n *yaml.Node, ctx, field, format string, a ...any) error {
	return d.at(n, ctx, field, fmt.Errorf(format, a...))
}

// kv is a key and its value in a mapping.
type kv struct{ key, val *yaml.Node }

// mapping returns the keys of mapping n, rejecting keys not in allowed, duplicates and
// aliases.
func (d *yamlDecoder) mapping(n *yaml.Node, ctx, field string, allowed []string) (map[string]kv, error) {
	if err := d.noAlias(n, ctx, field); err != nil {
		return nil, err
	}
	if n.Kind != yaml.MappingNode {
		return nil, d.errf(n, ctx, field, "want a mapping with %s", strings.Join(allowed, ", "))
	}
	out := make(map[string]kv, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if err := d.noAlias(k, ctx, field); err != nil {
			return nil, err
		}
		if k.Kind != yaml.ScalarNode {
			return nil, d.errf(k, ctx, field, "keys must be strings")
		}
		f := join(field, k.Value)
		if !contains(allowed, k.Value) {
			return nil, d.errf(k, ctx, "", "unknown key %q (want %s)%s", f, strings.Join(allowed, ", "), keyHint(n, i, allowed))
		}
		if _, dup := out[k.Value]; dup {
			return nil, d.errf(k, ctx, "", "duplicate key %q", f)
		}
		if err := d.noAlias(v, ctx, f); err != nil {
			return nil, err
		}
		out[k.Value] = kv{k, v}
	}
	return out, nil
}

// nestedKeys are the keys of the mappings that are values of these keys, for keyHint.
var nestedKeys = map[string][]string{
	"entries": entryKeys,
	"ramroot": append(append([]string{}, fileKeys...), ramrootKeys...),
	"kexec":   kexecKeys,
	"kernel":  fileKeys,
	"initrd":  fileKeys,
	"network": networkKeys,
}

// keyHint guesses what the unknown key n.Content[i] was meant to be: a key of an earlier
// sibling's mapping, indented too little ("; is it meant to be under ramroot (line 4)?"), or a
// typo of an allowed key ("; did you mean action?"); "" when nothing fits.
func keyHint(n *yaml.Node, i int, allowed []string) string {
	k := n.Content[i].Value
	for j := i - 2; j >= 0; j -= 2 {
		sib := n.Content[j]
		if contains(nestedKeys[sib.Value], k) {
			return fmt.Sprintf("; is it meant to be indented under %s (line %d)?", sib.Value, sib.Line)
		}
	}
	best, bestDist := "", 3
	for _, a := range allowed {
		if dist := editDistance(strings.ToLower(k), a); dist < bestDist {
			best, bestDist = a, dist
		}
	}
	if best != "" && bestDist < len(k) {
		return fmt.Sprintf("; did you mean %s?", best)
	}
	return ""
}

// editDistance is the Levenshtein distance of a and b (bytes; keys are ASCII).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64 // no typo of a schema key, and no quadratic work for a huge key
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// noAlias rejects YAML aliases: a menu has no use for them, and expanding them is how a small
// document becomes a huge one.
func (d *yamlDecoder) noAlias(n *yaml.Node, ctx, field string) error {
	if n.Kind == yaml.AliasNode {
		return d.errf(n, ctx, field, "YAML aliases are not supported")
	}
	return nil
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// str returns a scalar as a string; null is "".
func (d *yamlDecoder) str(n *yaml.Node, ctx, field string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", d.errf(n, ctx, field, "want a string")
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

// text returns a string shown on the console.
func (d *yamlDecoder) text(n *yaml.Node, ctx, field string) (string, error) {
	s, err := d.str(n, ctx, field)
	if err == nil {
		err = checkText(s)
		if err != nil {
			err = d.at(n, ctx, field, err)
		}
	}
	return s, err
}

// strs returns a string or a sequence of strings.
func (d *yamlDecoder) strs(n *yaml.Node, ctx, field string) ([]string, []*yaml.Node, error) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		return []string{n.Value}, []*yaml.Node{n}, nil
	}
	items, err := d.seq(n, ctx, field)
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for i, it := range items {
		s, err := d.str(it, ctx, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, nil, err
		}
		out = append(out, s)
	}
	return out, items, nil
}

// seq returns a sequence's items; null is empty.
func (d *yamlDecoder) seq(n *yaml.Node, ctx, field string) ([]*yaml.Node, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, d.errf(n, ctx, field, "want a list")
	}
	for _, it := range n.Content {
		if err := d.noAlias(it, ctx, field); err != nil {
			return nil, err
		}
	}
	return n.Content, nil
}

// url returns a resolved, checked URL.
func (d *yamlDecoder) url(n *yaml.Node, ctx, field string) (string, error) {
	s, err := d.str(n, ctx, field)
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", d.errf(n, ctx, field, "missing url")
	}
	if s, err = d.res.resolve(s); err == nil {
		err = checkURL(s)
	}
	if err != nil {
		return "", d.at(n, ctx, field, err)
	}
	return s, nil
}

// registryMirror returns a checked mirror of a registry image: a registry (HOST[:PORT] is not
// a relative URL to resolve) or another docker:// reference.
func (d *yamlDecoder) registryMirror(n *yaml.Node, ctx, field string) (string, error) {
	s, err := d.str(n, ctx, field)
	if err != nil {
		return "", err
	}
	if err := checkRegistryMirror(s); err != nil {
		return "", d.at(n, ctx, field, err)
	}
	return s, nil
}

func (d *yamlDecoder) menu(n *yaml.Node) (*Menu, error) {
	if n.Kind != yaml.MappingNode {
		return nil, d.errf(n, "", "", "want a mapping with entries")
	}
	keys, err := d.mapping(n, "", "", menuKeys)
	if err != nil {
		return nil, err
	}
	m := &Menu{Timeout: -1, Source: d.src, Format: FormatYAML}
	if v, ok := keys["title"]; ok {
		if m.Title, err = d.text(v.val, "", "title"); err != nil {
			return nil, err
		}
	}
	if v, ok := keys["timeout"]; ok {
		if m.Timeout, err = d.timeout(v.val); err != nil {
			return nil, err
		}
	}
	if v, ok := keys["password"]; ok {
		if m.Password, err = d.text(v.val, "", "password"); err != nil {
			return nil, err
		}
	}
	if v, ok := keys["report"]; ok {
		if m.Report, err = d.reportURL(v.val); err != nil {
			return nil, err
		}
	}
	v, ok := keys["entries"]
	if !ok {
		return nil, &Error{Source: d.src, Err: errors.New("missing entries")}
	}
	items, err := d.seq(v.val, "", "entries")
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, d.errf(v.key, "", "entries", "no entries")
	}
	seen := make(map[string]bool)
	for i, it := range items {
		e, err := d.entry(i, it)
		if err != nil {
			return nil, err
		}
		if seen[e.Name] {
			return nil, d.at(keyNode(it, "name"), entryContext(i, e.Name), "name", errDuplicate(e.Name))
		}
		seen[e.Name] = true
		m.Entries = append(m.Entries, e)
	}
	if v, ok := keys["default"]; ok {
		if m.Default, err = d.str(v.val, "", "default"); err != nil {
			return nil, err
		}
		if _, ok := m.Entry(m.Default); !ok && m.Default != "" {
			return nil, d.at(v.val, "", "default", m.noEntry(m.Default))
		}
	}
	return m, nil
}

// keyNode returns the value of key in mapping n, or n itself.
func keyNode(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return n
}

// timeout reads a Go duration ("10s", "1m30s") or a bare number of seconds.
func (d *yamlDecoder) timeout(n *yaml.Node) (time.Duration, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return -1, nil
	}
	bad := d.errf(n, "", "timeout", "%q is not a duration like 10s or a number of seconds", n.Value)
	if n.Kind != yaml.ScalarNode {
		return 0, bad
	}
	secs, err := strconv.ParseFloat(n.Value, 64)
	if err != nil {
		t, err := time.ParseDuration(n.Value)
		if err != nil {
			return 0, bad
		}
		secs = t.Seconds()
	}
	switch {
	case math.IsNaN(secs) || math.IsInf(secs, 0):
		return 0, bad
	case secs < 0:
		return 0, d.errf(n, "", "timeout", "must not be negative")
	case secs > maxTimeout:
		return 0, d.errf(n, "", "timeout", "too large")
	}
	return time.Duration(secs * float64(time.Second)), nil
}

func (d *yamlDecoder) entry(i int, n *yaml.Node) (Entry, error) {
	ctx := fmt.Sprintf("entries[%d]", i)
	keys, err := d.mapping(n, ctx, "", entryKeys)
	if err != nil {
		return Entry{}, err
	}
	e := Entry{Line: n.Line}
	v, ok := keys["name"]
	if !ok {
		return e, d.errf(n, ctx, "", "missing name")
	}
	if e.Name, err = d.str(v.val, ctx, "name"); err != nil {
		return e, err
	}
	if err := checkName(e.Name); err != nil {
		return e, d.at(v.val, ctx, "name", err)
	}
	ctx = entryContext(i, e.Name)
	e.Title = e.Name
	if v, ok := keys["title"]; ok {
		if e.Title, err = d.text(v.val, ctx, "title"); err != nil {
			return e, err
		}
		if e.Title == "" {
			e.Title = e.Name
		}
	}
	if v, ok := keys["locked"]; ok {
		if v.val.Kind != yaml.ScalarNode || v.val.Tag != "!!bool" || v.val.Decode(&e.Locked) != nil {
			return e, d.errf(v.val, ctx, "locked", "want true or false")
		}
	}
	if v, ok := keys["network"]; ok {
		if e.Network, err = d.network(v.val, ctx); err != nil {
			return e, err
		}
		if keys["action"].val != nil {
			return e, d.errf(v.key, ctx, "network", "only ramroot, kexec and menu entries have a network")
		}
	}
	var kind string
	for _, k := range kindKeys {
		v, ok := keys[k]
		if !ok {
			continue
		}
		if kind != "" {
			return e, d.errf(v.key, ctx, k, "only one of %s per entry (also has %s)", strings.Join(kindKeys, ", "), kind)
		}
		kind = k
	}
	switch kind {
	case "":
		return e, d.errf(n, ctx, "", "want one of %s", strings.Join(kindKeys, ", "))
	case "ramroot":
		e.Kind = KindRamroot
		e.Ramroot, err = d.ramroot(keys[kind].key, keys[kind].val, ctx)
	case "kexec":
		e.Kind = KindKexec
		e.Kexec, err = d.kexec(keys[kind].key, keys[kind].val, ctx)
	case "menu":
		e.Kind = KindMenu
		e.Menu, err = d.url(keys[kind].val, ctx, "menu")
	case "action":
		v := keys[kind].val
		var a string
		if a, err = d.str(v, ctx, "action"); err != nil {
			break
		}
		switch k := Kind(a); k {
		case KindShell, KindReboot, KindPoweroff:
			e.Kind = k
		default:
			err = d.errf(v, ctx, "action", "%q is not shell, reboot or poweroff", a)
		}
	}
	return e, err
}

// file reads a File: a plain URL or {url, sha256, mirrors}. at is the key the file is the
// value of: its line is where a missing url is reported (a block mapping's own line is that
// of its first key).
func (d *yamlDecoder) file(at, n *yaml.Node, ctx, field string, extra ...string) (File, map[string]kv, error) {
	var f File
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return f, nil, d.errf(at, ctx, field, "missing url")
	}
	if n.Kind == yaml.ScalarNode {
		u, err := d.url(n, ctx, field)
		f.URL = u
		return f, nil, err
	}
	keys, err := d.mapping(n, ctx, field, append(fileKeys[:len(fileKeys):len(fileKeys)], extra...))
	if err != nil {
		return f, nil, err
	}
	v, ok := keys["url"]
	if !ok {
		return f, nil, d.errf(at, ctx, field, "missing url")
	}
	if f.URL, err = d.url(v.val, ctx, join(field, "url")); err != nil {
		return f, nil, err
	}
	if v, ok := keys["sha256"]; ok {
		if f.SHA256, err = d.str(v.val, ctx, join(field, "sha256")); err != nil {
			return f, nil, err
		}
		if f.SHA256 != "" {
			if err := checkSHA256(f.SHA256); err != nil {
				return f, nil, d.at(v.val, ctx, join(field, "sha256"), err)
			}
			f.SHA256 = strings.ToLower(f.SHA256)
		}
	}
	if v, ok := keys["mirrors"]; ok {
		mf := join(field, "mirrors")
		_, nodes, err := d.strs(v.val, ctx, mf)
		if err != nil {
			return f, nil, err
		}
		for i, it := range nodes {
			var u string
			if strings.HasPrefix(f.URL, registryScheme) {
				u, err = d.registryMirror(it, ctx, fmt.Sprintf("%s[%d]", mf, i))
			} else {
				u, err = d.url(it, ctx, fmt.Sprintf("%s[%d]", mf, i))
			}
			if err != nil {
				return f, nil, err
			}
			f.Mirrors = append(f.Mirrors, u)
		}
	}
	return f, keys, nil
}

func (d *yamlDecoder) ramroot(at, n *yaml.Node, ctx string) (*Ramroot, error) {
	f, keys, err := d.file(at, n, ctx, "ramroot", ramrootKeys...)
	if err != nil {
		return nil, err
	}
	r := &Ramroot{File: f}
	if v, ok := keys["init"]; ok {
		if r.Init, err = d.str(v.val, ctx, "ramroot.init"); err != nil {
			return nil, err
		}
		if err := checkInit(r.Init); err != nil && r.Init != "" {
			return nil, d.at(v.val, ctx, "ramroot.init", err)
		}
	}
	if v, ok := keys["size"]; ok {
		if r.Size, err = d.str(v.val, ctx, "ramroot.size"); err != nil {
			return nil, err
		}
		if err := checkSize(r.Size); err != nil && r.Size != "" {
			return nil, d.at(v.val, ctx, "ramroot.size", err)
		}
	}
	if v, ok := keys["cmdline"]; ok {
		if r.Cmdline, err = d.cmdline(v.val, ctx, "ramroot.cmdline"); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (d *yamlDecoder) cmdline(n *yaml.Node, ctx, field string) (string, error) {
	s, err := d.str(n, ctx, field)
	if err != nil {
		return "", err
	}
	s = strings.TrimSpace(s)
	if err := checkCmdline(s); err != nil {
		return "", d.at(n, ctx, field, err)
	}
	return s, nil
}

func (d *yamlDecoder) kexec(at, n *yaml.Node, ctx string) (*Kexec, error) {
	keys, err := d.mapping(n, ctx, "kexec", kexecKeys)
	if err != nil {
		return nil, err
	}
	k := &Kexec{BootIF: true}
	v, ok := keys["kernel"]
	if !ok {
		return nil, d.errf(at, ctx, "kexec", "missing kernel")
	}
	if k.Kernel, _, err = d.file(v.key, v.val, ctx, "kexec.kernel"); err != nil {
		return nil, err
	}
	if v, ok := keys["initrd"]; ok {
		var items []*yaml.Node
		if v.val.Kind == yaml.SequenceNode {
			if items, err = d.seq(v.val, ctx, "kexec.initrd"); err != nil {
				return nil, err
			}
			for i, it := range items {
				f, _, err := d.file(it, it, ctx, fmt.Sprintf("kexec.initrd[%d]", i))
				if err != nil {
					return nil, err
				}
				k.Initrds = append(k.Initrds, f)
			}
		} else if v.val.Tag != "!!null" {
			f, _, err := d.file(v.key, v.val, ctx, "kexec.initrd")
			if err != nil {
				return nil, err
			}
			k.Initrds = []File{f}
		}
	}
	if v, ok := keys["cmdline"]; ok {
		if k.Cmdline, err = d.cmdline(v.val, ctx, "kexec.cmdline"); err != nil {
			return nil, err
		}
	}
	for _, b := range []struct {
		key string
		to  *bool
	}{{"ipappend", &k.IPAppend}, {"bootif", &k.BootIF}} {
		v, ok := keys[b.key]
		if !ok {
			continue
		}
		if v.val.Kind != yaml.ScalarNode || v.val.Tag != "!!bool" || v.val.Decode(b.to) != nil {
			return nil, d.errf(v.val, ctx, "kexec."+b.key, "want true or false")
		}
	}
	return k, nil
}

// reportURL is the menu's report: an http(s) URL, relative ones resolved against the menu's.
func (d *yamlDecoder) reportURL(n *yaml.Node) (string, error) {
	s, err := d.url(n, "", "report")
	if err != nil {
		return "", err
	}
	if !cmdline.IsHTTPURL(s) {
		return "", d.errf(n, "", "report", "%q is not an http:// or https:// URL", s)
	}
	return s, nil
}
