package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"time"
)

// entry is one member of the archive. Content is generated only when it is written, from a
// generator seeded by the name, so the tree costs little memory however large the image.
type entry struct {
	name     string // clean, relative, without "./"
	typ      byte   // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeChar
	mode     int64
	uid, gid int
	gen      gen
	size     int    // wanted content size; generators may differ slightly (gzip)
	link     string // symlink target, or hard link target name
	major    int64
	minor    int64
	mtime    time.Time
	pkg      *pkg
	xattrs   map[string]string // extended attributes, by name (security.capability, user.*)
}

// pkg is a simulated Debian package: dpkg's database lists its files and their MD5 sums.
type pkg struct {
	name  string
	files []*entry
}

type tree struct {
	seed    uint64
	r       *rand.Rand
	lx      *lexicon
	entries map[string]*entry
	pkgs    []*pkg
	cur     *pkg  // package that new entries belong to
	bytes   int64 // content bytes planned so far
	names   map[string]bool
	epoch   time.Time
	status  string // dpkg's status file
}

func newTree(seed uint64) *tree {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	return &tree{
		seed: seed, r: r, lx: newLexicon(r),
		entries: map[string]*entry{}, names: map[string]bool{},
		epoch: time.Date(2025, 1, 15, 0, 0, 0, 0, time.UTC),
	}
}

func (t *tree) add(e *entry) *entry {
	if old, ok := t.entries[e.name]; ok {
		if old.typ == tar.TypeDir && e.typ == tar.TypeDir {
			return old
		}
		return nil // first one wins: a generated name collided
	}
	t.mkdirAll(path.Dir(e.name))
	if e.mtime.IsZero() {
		// Whole seconds within the last three years, like files from many package builds.
		e.mtime = t.epoch.Add(-time.Duration(t.r.IntN(3*365*86400)) * time.Second)
	}
	t.entries[e.name] = e
	if t.cur != nil && e.typ != tar.TypeDir {
		e.pkg = t.cur
		t.cur.files = append(t.cur.files, e)
	}
	t.bytes += int64(e.size)
	return e
}

func (t *tree) mkdirAll(dir string) {
	if dir == "." {
		return
	}
	if _, ok := t.entries[dir]; !ok {
		t.add(&entry{name: dir, typ: tar.TypeDir, mode: 0o755})
	}
}

func (t *tree) dir(name string, mode int64, uid, gid int) *entry {
	e := t.add(&entry{name: name, typ: tar.TypeDir, mode: mode})
	e.mode, e.uid, e.gid = mode, uid, gid
	return e
}

func (t *tree) file(name string, mode int64, g gen, size int) *entry {
	return t.add(&entry{name: name, typ: tar.TypeReg, mode: mode, gen: g, size: size})
}

func (t *tree) symlink(name, target string) *entry {
	return t.add(&entry{name: name, typ: tar.TypeSymlink, mode: 0o777, link: target})
}

// hardlink makes name a second name of target, which must be a regular file already.
func (t *tree) hardlink(name, target string) *entry {
	return t.add(&entry{name: name, typ: tar.TypeLink, link: target})
}

// uniq returns a fresh package-like name: pronounceable, distinct from earlier ones.
func (t *tree) uniq(prefix string) string {
	for {
		n := prefix + t.lx.words[100+t.r.IntN(4000)]
		if t.r.IntN(3) == 0 {
			n += t.lx.words[100+t.r.IntN(4000)]
		}
		if t.r.IntN(4) == 0 {
			n += fmt.Sprint(t.r.IntN(20))
		}
		if !t.names[n] {
			t.names[n] = true
			return n
		}
	}
}

// buildTree lays out a root file system whose regular files hold about budget bytes.
func buildTree(seed uint64, budget int64) *tree {
	t := newTree(seed)
	t.base()
	t.zoneinfo()
	t.certificates()
	t.privileged()
	t.capabilities()
	t.downloads()

	// A few large libraries (the LLVMs, ICUs and browsers of a real root): 15% of the budget.
	for i, share := range []float64{0.05, 0.04, 0.03, 0.03} {
		t.cur = &pkg{name: t.uniq("lib")}
		t.pkgs = append(t.pkgs, t.cur)
		so := fmt.Sprintf("usr/lib/x86_64-linux-gnu/%s.so.%d.0.%d", t.cur.name, 1+i, t.r.IntN(10))
		t.file(so, 0o644, genELF, int(share*float64(budget)))
		t.symlink(soname(so), baseName(so))
		t.docs()
	}
	// Firmware-like blobs: incompressible, 3% of the budget.
	t.cur = &pkg{name: "firmware-misc-nonfree"}
	t.pkgs = append(t.pkgs, t.cur)
	for fw := int64(0); fw < budget*3/100; {
		e := t.file(fmt.Sprintf("usr/lib/firmware/%s/%s.bin", t.lx.word(t.r), t.lx.ident(t.r)), 0o644,
			genRandom, logNormal(t.r, 150e3, 1.2, 1000, 4e6))
		if e != nil {
			fw += int64(e.size)
		}
	}
	t.docs()

	for t.bytes < budget {
		t.addPackage()
	}
	t.cur = nil
	t.dpkgStatus()
	return t
}

// base lays out the skeleton that debootstrap creates: usrmerge links, the API file systems'
// mount points, sticky and setgid directories, device nodes, the files of base-files and passwd.
func (t *tree) base() {
	t.add(&entry{name: ".", typ: tar.TypeDir, mode: 0o755})
	for _, d := range []string{"boot", "etc", "home", "media", "mnt", "opt", "run", "srv", "usr", "var",
		"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/share", "usr/local/bin", "var/cache", "var/lib",
		"var/log", "var/spool", "var/backups", "var/opt", "run/lock"} {
		t.dir(d, 0o755, 0, 0)
	}
	t.dir("proc", 0o555, 0, 0)
	t.dir("sys", 0o555, 0, 0)
	t.dir("root", 0o700, 0, 0)
	t.dir("tmp", 0o1777, 0, 0)
	t.dir("var/tmp", 0o1777, 0, 0)
	t.dir("var/mail", 0o2775, 0, 8)
	t.dir("var/local", 0o2775, 0, 50)
	t.dir("var/spool/cron/crontabs", 0o1730, 0, 101)
	t.dir("var/log/journal", 0o2755, 0, 101)
	for _, l := range [][2]string{{"bin", "usr/bin"}, {"sbin", "usr/sbin"}, {"lib", "usr/lib"},
		{"lib64", "usr/lib64"}, {"var/run", "/run"}, {"var/lock", "/run/lock"},
		{"etc/mtab", "../proc/self/mounts"}, {"etc/localtime", "/usr/share/zoneinfo/Etc/UTC"},
		{"etc/os-release", "../usr/lib/os-release"},
		{"usr/lib64/ld-linux-x86-64.so.2", "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"}} {
		t.symlink(l[0], l[1])
	}
	for _, d := range []struct {
		name         string
		mode         int64
		major, minor int64
		gid          int
	}{{"null", 0o666, 1, 3, 0}, {"zero", 0o666, 1, 5, 0}, {"full", 0o666, 1, 7, 0},
		{"random", 0o666, 1, 8, 0}, {"urandom", 0o666, 1, 9, 0}, {"tty", 0o666, 5, 0, 5},
		{"console", 0o600, 5, 1, 0}, {"ptmx", 0o666, 5, 2, 5}} {
		t.add(&entry{name: "dev/" + d.name, typ: tar.TypeChar, mode: d.mode, major: d.major, minor: d.minor, gid: d.gid})
	}
	t.symlink("dev/fd", "/proc/self/fd")
	t.dir("dev/pts", 0o755, 0, 0)

	t.cur = &pkg{name: "base-files"}
	t.pkgs = append(t.pkgs, t.cur)
	for _, f := range []string{"etc/passwd", "etc/group", "etc/hostname", "etc/hosts", "etc/fstab",
		"etc/issue", "etc/debian_version", "usr/lib/os-release", "etc/profile", "etc/bash.bashrc"} {
		t.file(f, 0o644, genConfig, logNormal(t.r, 600, 1, 10, 4000))
	}
	for _, f := range []string{"etc/shadow", "etc/gshadow"} {
		e := t.file(f, 0o640, genConfig, 900)
		e.gid = 42
	}
	t.file("etc/ld.so.cache", 0o644, genELF, 60000)
	t.file("usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", 0o755, genELF, 210000)
	t.file("etc/machine-id", 0o444, genEmpty, 0)
	t.file("var/lib/dpkg/lock", 0o640, genEmpty, 0)
	t.file("usr/lib/locale/C.utf8/LC_CTYPE", 0o644, genMO, 340000)
	// A user's home, owned by the user.
	t.dir("home/user", 0o750, 1000, 1000)
	for _, f := range []string{".bashrc", ".profile", ".bash_logout"} {
		e := t.file("home/user/"+f, 0o644, genShell, logNormal(t.r, 900, 0.8, 100, 5000))
		e.uid, e.gid = 1000, 1000
	}
	// man's cache, owned by man:man.
	t.dir("var/cache/man", 0o2755, 6, 12)
	for _, s := range []string{"", "fr", "de", "ja", "ru"} {
		d := path.Join("var/cache/man", s)
		t.dir(d, 0o2755, 6, 12)
		e := t.file(d+"/index.db", 0o644, genMO, logNormal(t.r, 200000, 0.5, 1000, 2e6))
		e.uid, e.gid = 6, 12
	}
	e := t.file("var/log/apt/eipp.log.xz", 0o600, genRandom, 20000)
	e.gid = 4
	// Names that need PAX headers: non-ASCII, and longer than ustar's 100+155 split allows.
	t.file("usr/share/doc/base-files/README.español", 0o644, genProse, 3000)
	t.file("usr/share/doc/base-files/Привет мир.txt", 0o644, genProse, 1500)
	long := "usr/lib/python3/dist-packages/" + strings.Repeat("very_long_package_name_component_", 4) +
		"/" + strings.Repeat("deeply_nested_module_", 6) + "/" + strings.Repeat("x", 120) + ".py"
	t.file(long, 0o644, genPython, 5000)
	t.cur = nil
}

// zoneinfo is tzdata: hundreds of small binary files, and a posix/ tree of hard links to them.
func (t *tree) zoneinfo() {
	t.cur = &pkg{name: "tzdata"}
	t.pkgs = append(t.pkgs, t.cur)
	var zones []string
	for _, region := range []string{"Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific", "Etc"} {
		for range 10 + t.r.IntN(60) {
			z := path.Join("usr/share/zoneinfo", region, strings.ToUpper(t.lx.word(t.r)[:1])+t.lx.word(t.r))
			if t.file(z, 0o644, genTZif, logNormal(t.r, 1500, 0.6, 120, 4000)) != nil {
				zones = append(zones, z)
			}
		}
	}
	t.file("usr/share/zoneinfo/Etc/UTC", 0o644, genTZif, 114)
	zones = append(zones, "usr/share/zoneinfo/Etc/UTC")
	for _, z := range zones {
		t.hardlink(strings.Replace(z, "zoneinfo/", "zoneinfo/posix/", 1), z)
		t.file(strings.Replace(z, "zoneinfo/", "zoneinfo/right/", 1), 0o644, genTZif, logNormal(t.r, 2000, 0.5, 200, 5000))
	}
	t.file("usr/share/zoneinfo/tzdata.zi", 0o644, genConfig, 110000)
	t.symlink("usr/share/zoneinfo/UTC", "Etc/UTC")
	t.cur = nil
}

// certificates is ca-certificates: PEM files, symlinks under /etc/ssl/certs (by name and by
// hash) and the bundle that concatenates them.
func (t *tree) certificates() {
	t.cur = &pkg{name: "ca-certificates"}
	t.pkgs = append(t.pkgs, t.cur)
	for range 140 {
		n := t.lx.ident(t.r) + "_Root_CA"
		src := "usr/share/ca-certificates/mozilla/" + n + ".crt"
		if t.file(src, 0o644, genPEM, logNormal(t.r, 1900, 0.3, 700, 3000)) == nil {
			continue
		}
		t.symlink("etc/ssl/certs/"+n+".pem", "/"+src)
		t.symlink(fmt.Sprintf("etc/ssl/certs/%08x.0", t.r.Uint32()), n+".pem")
	}
	t.add(&entry{name: "etc/ssl/certs/ca-certificates.crt", typ: tar.TypeReg, mode: 0o644, gen: genDerived})
	t.cur = nil
}

// privileged adds the setuid and setgid programs of a Debian root (shadow, util-linux, sudo,
// openssh, dbus, cron).
func (t *tree) privileged() {
	t.cur = &pkg{name: "login"}
	t.pkgs = append(t.pkgs, t.cur)
	for _, p := range []struct {
		name     string
		mode     int64
		uid, gid int
	}{
		{"usr/bin/passwd", 0o4755, 0, 0}, {"usr/bin/su", 0o4755, 0, 0}, {"usr/bin/mount", 0o4755, 0, 0},
		{"usr/bin/umount", 0o4755, 0, 0}, {"usr/bin/chsh", 0o4755, 0, 0}, {"usr/bin/chfn", 0o4755, 0, 0},
		{"usr/bin/gpasswd", 0o4755, 0, 0}, {"usr/bin/newgrp", 0o4755, 0, 0}, {"usr/bin/sudo", 0o4755, 0, 0},
		{"usr/lib/openssh/ssh-keysign", 0o4755, 0, 0},
		{"usr/lib/dbus-1.0/dbus-daemon-launch-helper", 0o4754, 0, 102},
		{"usr/bin/chage", 0o2755, 0, 42}, {"usr/bin/expiry", 0o2755, 0, 42}, {"usr/sbin/unix_chkpwd", 0o2755, 0, 42},
		{"usr/bin/wall", 0o2755, 0, 5}, {"usr/bin/crontab", 0o2755, 0, 101},
	} {
		e := t.file(p.name, p.mode, genELF, logNormal(t.r, 60000, 0.8, 15000, 400000))
		e.uid, e.gid = p.uid, p.gid
	}
	t.cur = nil
}

// Capability numbers (linux/capability.h) of the programs capabilities() lists.
const (
	capDACReadSearch  = 2
	capSetUID         = 7
	capNetBindService = 10
	capNetAdmin       = 12
	capNetRaw         = 13
	capIPCLock        = 14
	capSysNice        = 23
)

// capabilities adds the programs that Debian packages ship with file capabilities instead of a
// setuid bit (iputils, mtr, wireshark, gstreamer, gnome-keyring, kwin, uidmap, ...): in the tar
// they are security.capability xattrs in PAX records, as `tar --xattrs` writes them.
func (t *tree) capabilities() {
	t.cur = &pkg{name: "iputils-ping"}
	t.pkgs = append(t.pkgs, t.cur)
	for _, p := range []struct {
		name        string
		caps        []int
		inheritable bool
	}{
		{"usr/bin/ping", []int{capNetRaw}, false},
		{"usr/bin/arping", []int{capNetRaw}, false},
		{"usr/bin/clockdiff", []int{capNetRaw}, false},
		{"usr/bin/tracepath", []int{capNetRaw}, false},
		{"usr/bin/mtr-packet", []int{capNetRaw}, false},
		{"usr/bin/fping", []int{capNetRaw}, false},
		{"usr/bin/dumpcap", []int{capNetAdmin, capNetRaw}, true},
		{"usr/bin/newuidmap", []int{capSetUID}, false},
		{"usr/bin/gnome-keyring-daemon", []int{capIPCLock}, false},
		{"usr/bin/kwin_wayland", []int{capSysNice}, false},
		{"usr/sbin/smartd-helper", []int{capDACReadSearch}, false},
		{"usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-ptp-helper", []int{capNetBindService, capNetAdmin}, false},
	} {
		e := t.file(p.name, 0o755, genELF, logNormal(t.r, 40000, 0.8, 8000, 300000))
		e.xattrs = map[string]string{"security.capability": string(vfsCap(p.caps, p.inheritable))}
	}
	t.docs()
	t.cur = nil
}

// vfsCap encodes a file capability as the kernel stores it in security.capability
// (struct vfs_cap_data, revision 2, little-endian): the effective flag, then the permitted and
// inheritable sets, low 32 bits first. caps are permitted and effective, as setcap CAPS+ep
// writes them; inheritable adds them to the inheritable set too (+eip).
func vfsCap(caps []int, inheritable bool) []byte {
	const rev2, effective = 0x02000000, 0x000001
	var perm [2]uint32
	for _, c := range caps {
		perm[c/32] |= 1 << (c % 32)
	}
	var inh [2]uint32
	if inheritable {
		inh = perm
	}
	b := binary.LittleEndian.AppendUint32(nil, rev2|effective)
	for i := range 2 {
		b = binary.LittleEndian.AppendUint32(b, perm[i])
		b = binary.LittleEndian.AppendUint32(b, inh[i])
	}
	return b
}

// downloads adds files a browser saved in the user's home, with the user.xdg.* attributes
// browsers set on them: user xattrs beside the security ones.
func (t *tree) downloads() {
	t.dir("home/user/Downloads", 0o755, 1000, 1000)
	for i := range 6 {
		name := fmt.Sprintf("home/user/Downloads/%s-%d.%s", t.lx.ident(t.r), i, []string{"pdf", "tar.gz", "deb"}[i%3])
		e := t.file(name, 0o644, genRandom, logNormal(t.r, 200000, 1, 5000, 2e6))
		e.uid, e.gid = 1000, 1000
		host := t.lx.word(t.r) + ".example.org"
		e.xattrs = map[string]string{
			"user.xdg.origin.url":   "https://" + host + "/" + path.Base(name),
			"user.xdg.referrer.url": "https://" + host + "/",
		}
	}
}

// docs adds the current package's /usr/share/doc directory.
func (t *tree) docs() {
	d := "usr/share/doc/" + t.cur.name
	// Copyright files repeat the same licence texts, as real ones quote the GPL.
	t.file(d+"/copyright", 0o644, genCopyright, logNormal(t.r, 1500, 0.9, 100, 30000))
	t.file(d+"/changelog.Debian.gz", 0o644, genDocGz, logNormal(t.r, 3000, 1, 300, 80000))
	if t.r.IntN(3) == 0 {
		t.file(d+"/"+[]string{"README", "README.Debian", "TODO"}[t.r.IntN(3)], 0o644, genProse, logNormal(t.r, 3000, 1, 100, 50000))
	}
}

// addPackage adds one ordinary package: documentation, maybe programs, a library, configuration and a
// tree of data files, as Debian packages of each kind ship them.
func (t *tree) addPackage() {
	r := t.r
	lib := r.IntN(10) < 3
	prefix := ""
	if lib {
		prefix = "lib"
	}
	name := t.uniq(prefix)
	t.cur = &pkg{name: name}
	t.pkgs = append(t.pkgs, t.cur)
	t.docs()
	if r.IntN(8) == 0 {
		// Some doc directories are symlinks to a sibling package's.
		t.symlink("usr/share/doc/"+name+"-common", name)
	}

	if lib {
		so := fmt.Sprintf("usr/lib/x86_64-linux-gnu/%s.so.%d.%d.%d", name, r.IntN(8), r.IntN(20), r.IntN(10))
		t.file(so, 0o644, genELF, logNormal(r, 180e3, 1.3, 8000, 12e6))
		t.symlink(soname(so), baseName(so))
		if r.IntN(3) == 0 {
			// The -dev package: headers and the unversioned link.
			t.symlink(so[:strings.Index(so, ".so.")+3], baseName(so))
			for range 1 + r.IntN(25) {
				t.file(fmt.Sprintf("usr/include/%s/%s.h", strings.TrimPrefix(name, "lib"), t.lx.ident(r)), 0o644, genHeader, logNormal(r, 4000, 1.1, 200, 120000))
			}
		}
	} else if r.IntN(10) < 6 {
		for range 1 + r.IntN(3) {
			cmd := t.uniq("")
			dir := []string{"usr/bin", "usr/bin", "usr/bin", "usr/sbin", "usr/lib/" + name}[r.IntN(5)]
			if e := t.file(dir+"/"+cmd, 0o755, genELF, logNormal(r, 70e3, 1.2, 6000, 8e6)); e == nil {
				continue
			}
			if r.IntN(30) == 0 {
				t.hardlink(dir+"/"+cmd+"5."+fmt.Sprint(r.IntN(40)), dir+"/"+cmd)
			}
			if r.IntN(10) == 0 {
				// update-alternatives: /usr/bin/x -> /etc/alternatives/x -> the real one.
				alt := t.uniq("")
				t.symlink("usr/bin/"+alt, "/etc/alternatives/"+alt)
				t.symlink("etc/alternatives/"+alt, "/"+dir+"/"+cmd)
			}
			t.file("usr/share/man/man1/"+cmd+".1.gz", 0o644, genManGz, logNormal(r, 2000, 0.9, 200, 40000))
		}
	}
	if r.IntN(10) < 3 {
		etc := "etc/" + name
		for range 1 + r.IntN(5) {
			t.file(etc+"/"+t.lx.ident(r)+".conf", 0o644, genConfig, logNormal(r, 1500, 1.1, 50, 40000))
		}
		if r.IntN(2) == 0 {
			t.file("etc/default/"+name, 0o644, genConfig, logNormal(r, 600, 0.7, 50, 5000))
			t.file("etc/init.d/"+name, 0o755, genShell, logNormal(r, 3000, 0.6, 500, 20000))
			t.file("usr/lib/systemd/system/"+name+".service", 0o644, genConfig, logNormal(r, 500, 0.5, 100, 3000))
			t.symlink("etc/systemd/system/multi-user.target.wants/"+name+".service", "/usr/lib/systemd/system/"+name+".service")
		}
	}
	if r.IntN(10) < 3 {
		t.dataTree(name)
	}
	if r.IntN(6) == 0 {
		for range 1 + r.IntN(30) {
			lang := locales[r.IntN(len(locales))]
			t.file("usr/share/locale/"+lang+"/LC_MESSAGES/"+name+".mo", 0o644, genMO, logNormal(r, 8000, 1, 200, 200000))
		}
	}
	t.file("var/lib/dpkg/info/"+name+".list", 0o644, genDerived, 0)
	t.file("var/lib/dpkg/info/"+name+".md5sums", 0o644, genDerived, 0)
	if r.IntN(4) == 0 {
		t.file("var/lib/dpkg/info/"+name+".postinst", 0o755, genShell, logNormal(r, 1500, 0.8, 100, 20000))
	}
}

var locales = strings.Fields("ar ast bg ca cs da de el en_GB eo es et eu fi fr ga gl he hr hu id it " +
	"ja ka ko lt lv ms nb nl pl pt pt_BR ro ru sk sl sr sr@latin sv tr uk vi zh_CN zh_TW")

// dataTree adds a deep tree of small text files: a Python or Perl library, a header tree or an
// application's data directory.
func (t *tree) dataTree(name string) {
	r := t.r
	kind := []gen{genPython, genPython, genPerl, genHeader, genProse, genConfig}[r.IntN(6)]
	root := map[gen]string{
		genPython: "usr/lib/python3/dist-packages/" + name,
		genPerl:   "usr/share/perl5/" + strings.ToUpper(name[:1]) + name[1:],
		genHeader: "usr/include/" + name,
		genProse:  "usr/share/" + name + "/doc",
		genConfig: "usr/share/" + name,
	}[kind]
	ext := map[gen]string{genPython: ".py", genPerl: ".pm", genHeader: ".h", genProse: ".txt", genConfig: ".xml"}[kind]
	dirs := []string{root}
	for range logNormal(r, 40, 1.1, 3, 1500) {
		d := dirs[r.IntN(len(dirs))]
		if strings.Count(d, "/") < 10 && r.IntN(5) == 0 {
			d += "/" + t.lx.ident(r)
			dirs = append(dirs, d)
		}
		t.file(d+"/"+t.lx.ident(r)+ext, 0o644, kind, logNormal(r, 2500, 1.2, 0, 300000))
	}
}

// dpkgStatus writes dpkg's status database, one stanza per package.
func (t *tree) dpkgStatus() {
	var sb strings.Builder
	for _, p := range t.pkgs {
		fmt.Fprintf(&sb, "Package: %s\nStatus: install ok installed\nPriority: optional\nSection: %s\n"+
			"Installed-Size: %d\nMaintainer: Debian %s Team <%s@lists.debian.org>\nArchitecture: amd64\n"+
			"Version: %d.%d-%d\nDescription: ", p.name, t.lx.word(t.r), 10+t.r.IntN(90000), t.lx.word(t.r),
			t.lx.word(t.r), t.r.IntN(9), t.r.IntN(40), 1+t.r.IntN(4))
		fill(&sb, t.lx, t.r, "{S}\n {S}\n {S}\n\n")
	}
	t.status = sb.String()
	t.file("var/lib/dpkg/status", 0o644, genDerived, len(t.status))
	t.file("var/lib/dpkg/status-old", 0o644, genDerived, len(t.status))
}

// order returns the entries as `tar -c` would meet them when walking sorted directories: every
// directory before what it holds, and the first name of each hard-linked file as the file.
func (t *tree) order() []*entry {
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		if a == "." || b == "." {
			return strings.Compare(strings.TrimPrefix(a, "."), strings.TrimPrefix(b, ".")) // "." first
		}
		return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
	})
	out := make([]*entry, len(names))
	first := map[string]*entry{} // hard link target name -> entry that carries the data
	for i, n := range names {
		e := t.entries[n]
		out[i] = e
		if e.typ != tar.TypeLink {
			continue
		}
		target := t.entries[e.link]
		if f, ok := first[target.name]; ok {
			e.link = f.name
			continue
		}
		// The link sorts before its target: it carries the data; the target links to it.
		first[target.name] = e
		if slices.Compare(strings.Split(e.name, "/"), strings.Split(target.name, "/")) < 0 {
			e.typ, e.mode, e.gen, e.size, e.link = target.typ, target.mode, target.gen, target.size, ""
			e.uid, e.gid = target.uid, target.gid
			target.typ, target.link, target.gen, target.size = tar.TypeLink, e.name, genEmpty, 0
			first[target.name] = e
		} else {
			first[target.name] = target
		}
	}
	return out
}

// posixTimes gives hdr the times GNU tar's POSIX format records (`tar --format=posix`, which
// `--xattrs` needs): an atime and a ctime in a PAX header before every entry, and the mtime there
// too when it has a fraction of a second (about one file in eight, as on a root that was
// installed rather than extracted). They come from the name's hash, so that adding them does not
// change the rest of the tree.
func posixTimes(hdr *tar.Header, name string) {
	h := nameHash("times:" + name)
	if h%8 == 0 {
		hdr.ModTime = hdr.ModTime.Add(time.Duration(1 + (h>>3)%999_999_999))
	}
	hdr.AccessTime = hdr.ModTime.Add(time.Duration((h>>8)%(400*86400)) * time.Second).Add(time.Duration(1 + (h>>40)%999_999))
	hdr.ChangeTime = hdr.AccessTime.Add(time.Duration((h>>20)%86400) * time.Second)
}

type stats struct {
	xattrs   int // xattr records written (security.capability included)
	entries  map[byte]int
	bytes    [numGens]int64
	files    [numGens]int
	tarBytes int64
	start    time.Time
}

// write writes the archive to w.
func (t *tree) write(ctx context.Context, w io.Writer) (*stats, error) {
	st := &stats{entries: map[byte]int{}, start: time.Now()}
	cw := &countWriter{w: bufio.NewWriterSize(w, 1<<20)}
	tw := tar.NewWriter(cw)
	sums := map[string][md5.Size]byte{}
	for _, e := range t.order() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr := &tar.Header{
			Name: "./" + e.name, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: e.mtime, Linkname: e.link, Devmajor: e.major, Devminor: e.minor,
			Format: tar.FormatPAX,
		}
		posixTimes(hdr, e.name)
		for _, k := range slices.Sorted(maps.Keys(e.xattrs)) {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords["SCHILY.xattr."+k] = e.xattrs[k]
			st.xattrs++
		}
		var data []byte
		switch e.typ {
		case tar.TypeDir:
			hdr.Name = strings.TrimSuffix("./"+e.name, ".") + "/"
			if e.name == "." {
				hdr.Name = "./"
			}
		case tar.TypeLink:
			// GNU tar records the file's metadata on a hard link too.
			f := t.entries[e.link]
			hdr.Linkname, hdr.Mode, hdr.Uid, hdr.Gid = "./"+e.link, f.mode, f.uid, f.gid
			sums[e.name] = sums[e.link]
		case tar.TypeReg:
			if e.gen == genDerived {
				data = t.derived(e, sums)
			} else {
				data = t.content(e)
			}
			hdr.Size = int64(len(data))
			sums[e.name] = md5.Sum(data)
			st.bytes[e.gen] += int64(len(data))
			st.files[e.gen]++
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		st.entries[e.typ]++
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := cw.w.(*bufio.Writer).Flush(); err != nil {
		return nil, err
	}
	st.tarBytes = cw.n
	return st, nil
}

// content generates a regular file's data, from a generator seeded by its name.
func (t *tree) content(e *entry) []byte {
	return content(t.lx, rand.New(rand.NewPCG(t.seed, nameHash(e.name))), e.gen, e.name, e.size)
}

// derived computes the files made from others: dpkg's database (a package's .md5sums needs the
// sums of its files, which come earlier in the archive under /usr) and the certificate bundle
// (which comes before the certificates, so they are generated again).
func (t *tree) derived(e *entry, sums map[string][md5.Size]byte) []byte {
	var sb strings.Builder
	switch {
	case strings.HasPrefix(e.name, "var/lib/dpkg/status"):
		return []byte(t.status)
	case strings.HasSuffix(e.name, ".crt"):
		for _, f := range e.pkg.files {
			if f.gen == genPEM {
				sb.Write(t.content(f))
			}
		}
	case strings.HasSuffix(e.name, ".list"):
		seen := map[string]bool{}
		for _, f := range e.pkg.files {
			if strings.HasPrefix(f.name, "var/lib/dpkg/") {
				continue
			}
			for d := path.Dir(f.name); d != "." && !seen[d]; d = path.Dir(d) {
				seen[d] = true
			}
			fmt.Fprintf(&sb, "/%s\n", f.name)
		}
		dirs := make([]string, 0, len(seen))
		for d := range seen {
			dirs = append(dirs, "/"+d+"\n")
		}
		slices.Sort(dirs)
		return []byte(strings.Join(dirs, "") + sb.String())
	case strings.HasSuffix(e.name, ".md5sums"):
		for _, f := range e.pkg.files {
			if s, ok := sums[f.name]; ok && strings.HasPrefix(f.name, "usr/") {
				fmt.Fprintf(&sb, "%x  %s\n", s, f.name)
			}
		}
	}
	return []byte(sb.String())
}

func nameHash(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (st *stats) print(w io.Writer, out string) {
	fmt.Fprintf(w, "%s: %.1f MB tar in %.1fs: %d entries: %d files, %d directories, %d symlinks, %d hard links, %d devices; %d xattrs\n",
		out, float64(st.tarBytes)/1e6, time.Since(st.start).Seconds(), st.total(), st.entries[tar.TypeReg], st.entries[tar.TypeDir],
		st.entries[tar.TypeSymlink], st.entries[tar.TypeLink], st.entries[tar.TypeChar], st.xattrs)
	for g := range numGens {
		if st.files[g] > 0 {
			fmt.Fprintf(w, "  %-9s %7d files %8.1f MB\n", g, st.files[g], float64(st.bytes[g])/1e6)
		}
	}
}

func (st *stats) total() int {
	n := 0
	for _, c := range st.entries {
		n += c
	}
	return n
}

// soname returns the name of a library's major-version link: lib.so.1 for lib.so.1.2.3.
func soname(so string) string {
	i := strings.Index(so, ".so.") + len(".so.")
	if j := strings.IndexByte(so[i:], '.'); j >= 0 {
		return so[:i+j]
	}
	return so
}
