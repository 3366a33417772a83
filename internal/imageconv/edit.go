package imageconv

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// edit applies the rescue options to the tree. Entries it makes or changes get time now (the
// clamp or the tree's newest mtime), so that the image stays reproducible.
func edit(t *tree, opts Options, now time.Time) error {
	if opts.DropModules {
		n := 0
		for _, d := range []string{"lib/modules", "usr/lib/modules"} {
			if dn := t.nodes[d]; dn != nil && dn.hdr.Typeflag == tar.TypeDir {
				n += t.removeBelow(d)
			}
		}
		t.logf("dropped %d entries of lib/modules", n)
	}
	if opts.RootPasswordEmpty {
		if err := emptyRootPassword(t, now); err != nil {
			return fmt.Errorf("emptying root's password: %w", err)
		}
	}
	if len(opts.SSHKeys) > 0 {
		if err := addSSHKeys(t, opts.SSHKeys, now); err != nil {
			return fmt.Errorf("adding ssh keys: %w", err)
		}
	}
	return nil
}

// readFile returns a regular file of the tree and its node (hard links followed).
func (t *tree) readFile(name string) ([]byte, *node, error) {
	n := t.nodes[name]
	if n == nil {
		return nil, nil, nil
	}
	if n.hdr.Typeflag == tar.TypeLink && n.target != nil {
		n = n.target
	}
	if n.hdr.Typeflag != tar.TypeReg {
		return nil, nil, fmt.Errorf("/%s is not a regular file", name)
	}
	r, err := t.open(n)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return b, n, err
}

// putFile replaces (or makes) name with data, keeping the metadata of old if there was one.
// A hard link to the old file keeps the old content.
func (t *tree) putFile(name string, data []byte, old *node, mode int64, now time.Time) {
	h := tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, ModTime: now, Format: tar.FormatPAX}
	if old != nil {
		h = old.hdr
		h.Name, h.ModTime = name, now
	}
	h.Size = int64(len(data))
	t.put(name, &node{hdr: h, mem: data})
}

// emptyRootPassword empties root's password field in etc/shadow, or in etc/passwd when the
// image has no shadow file.
func emptyRootPassword(t *tree, now time.Time) error {
	for _, f := range []string{"etc/shadow", "etc/passwd"} {
		b, n, err := t.readFile(f)
		if err != nil {
			return err
		}
		if n == nil {
			continue
		}
		lines := strings.SplitAfter(string(b), "\n")
		found := false
		for i, l := range lines {
			fields := strings.Split(l, ":")
			if fields[0] == "root" && len(fields) > 2 {
				fields[1] = ""
				lines[i], found = strings.Join(fields, ":"), true
			}
		}
		if !found {
			return fmt.Errorf("/%s has no root entry", f)
		}
		t.putFile(f, []byte(strings.Join(lines, "")), n, 0, now)
		t.logf("emptied root's password in /%s", f)
		return nil
	}
	return fmt.Errorf("the image has neither /etc/shadow nor /etc/passwd")
}

// addSSHKeys adds keys to root's authorized_keys (lines already there are not repeated).
func addSSHKeys(t *tree, keys []byte, now time.Time) error {
	home, uid, gid := rootHome(t)
	if err := t.ensureDir(home, 0o700, uid, gid, now, false); err != nil {
		return err
	}
	ssh := path.Join(home, ".ssh")
	if err := t.ensureDir(ssh, 0o700, uid, gid, now, true); err != nil {
		return err
	}
	ak := path.Join(ssh, "authorized_keys")
	b, _, err := t.readFile(ak)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for l := range strings.Lines(string(b)) {
		have[strings.TrimSpace(l)] = true
	}
	if len(b) > 0 && !bytes.HasSuffix(b, []byte("\n")) {
		b = append(b, '\n')
	}
	added := 0
	for l := range strings.Lines(string(keys)) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || have[l] {
			continue
		}
		have[l] = true
		b = append(b, l+"\n"...)
		added++
	}
	if added == 0 && len(b) == 0 {
		return fmt.Errorf("no key in the key file")
	}
	t.putFile(ak, b, nil, 0o600, now)
	n := t.nodes[ak]
	n.hdr.Uid, n.hdr.Gid = uid, gid
	t.logf("added %d ssh key(s) to /%s", added, ak)
	return nil
}

// rootHome reads root's home and ids from etc/passwd; /root, 0, 0 when it cannot.
func rootHome(t *tree) (home string, uid, gid int) {
	home = "root"
	b, _, err := t.readFile("etc/passwd")
	if err != nil {
		return home, 0, 0
	}
	for l := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimSpace(l), ":")
		if len(f) >= 7 && f[0] == "root" && f[2] == "0" {
			if h := strings.Trim(path.Clean("/"+f[5]), "/"); h != "" {
				home = h
			}
			var g int
			if _, err := fmt.Sscan(f[3], &g); err == nil {
				gid = g
			}
			break
		}
	}
	return home, 0, gid
}

// ensureDir makes dir with mode and owner, or (force) sets them on the directory there.
func (t *tree) ensureDir(dir string, mode int64, uid, gid int, now time.Time, force bool) error {
	n := t.nodes[dir]
	switch {
	case n == nil:
		h := dirHeader(dir, mode, now)
		h.Uid, h.Gid = uid, gid
		t.nodes[dir] = &node{hdr: h}
	case n.hdr.Typeflag != tar.TypeDir:
		return fmt.Errorf("/%s is not a directory", dir)
	case force:
		n.hdr.Mode, n.hdr.Uid, n.hdr.Gid = mode, uid, gid
	}
	return nil
}
