package kmod

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/ramboot/ramboot/internal/xzpar"
)

// scan builds the index from the .modinfo section of every module under fsys, as depmod
// does: "alias=", "depends=" (direct dependencies, by name) and "softdep=". Modules under
// updates/ win over others of the same name, as in depmod's default search order; "build"
// and "source" (links to kernel headers) are skipped.
func (ix *Index) scan(fsys fs.FS) error {
	var paths []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (p == "build" || p == "source") {
			return fs.SkipDir
		}
		if d.Type().IsRegular() && isModuleFile(d.Name()) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.SliceStable(paths, func(i, j int) bool {
		return strings.HasPrefix(paths[i], "updates/") && !strings.HasPrefix(paths[j], "updates/")
	})
	depends := map[*module][]string{}
	for _, p := range paths {
		info, err := readModinfo(fsys, p)
		if err != nil {
			return err
		}
		m := ix.add(p)
		if ix.modules[m.name] != m {
			continue // shadowed by an earlier module of the same name
		}
		for _, kv := range info {
			key, val, _ := strings.Cut(kv, "=")
			switch key {
			case "alias":
				if val != "" {
					ix.addAlias(val, m.name, false)
				}
			case "depends":
				for _, d := range strings.Split(val, ",") {
					if d != "" {
						depends[m] = append(depends[m], d)
					}
				}
			case "softdep":
				m.addSoftdep(strings.Fields(val))
			}
		}
	}
	for m, names := range depends {
		for _, n := range names {
			d := ix.modules[normalise(n)]
			if d == nil {
				return fmt.Errorf("module %s depends on %s: %w", m.path, n, ErrUnknownModule)
			}
			m.deps = append(m.deps, d.path)
		}
	}
	return nil
}

// readModinfo returns the NUL-separated "key=value" strings of a module's .modinfo section.
func readModinfo(fsys fs.FS, p string) ([]string, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ra io.ReaderAt
	if r, ok := f.(io.ReaderAt); ok && strings.HasSuffix(p, ".ko") {
		ra = r // read only the section, not the whole module
	} else {
		rc, err := decompress(f, p)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		ra = bytes.NewReader(b)
	}
	b, err := modinfoSection(ra)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	var out []string
	for _, kv := range bytes.Split(b, []byte{0}) {
		if len(kv) > 0 {
			out = append(out, string(kv))
		}
	}
	return out, nil
}

// Vermagic returns the "vermagic" of the module at p in fsys (.ko, .ko.xz, .ko.zst or
// .ko.gz), e.g. "6.1.0-31-cloud-amd64 SMP preempt mod_unload modversions": its first word is
// the kernel release the module was built for, which the kernel checks before loading it.
func Vermagic(fsys fs.FS, p string) (string, error) {
	info, err := readModinfo(fsys, p)
	if err != nil {
		return "", err
	}
	for _, kv := range info {
		if v, ok := strings.CutPrefix(kv, "vermagic="); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("reading %s: no vermagic in .modinfo", p)
}

// Firmware returns the firmware files the module at p in fsys says it may request (its
// "firmware=" .modinfo lines, paths relative to /lib/firmware), in .modinfo order.
func Firmware(fsys fs.FS, p string) ([]string, error) {
	info, err := readModinfo(fsys, p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, kv := range info {
		if v, ok := strings.CutPrefix(kv, "firmware="); ok && v != "" {
			out = append(out, v)
		}
	}
	return out, nil
}

// Limits that keep a corrupt module from making modinfoSection allocate much: a read (the
// section header table, the section names, .modinfo) is at most maxModinfo bytes.
const (
	maxSectionHeaders = 1 << 20
	maxModinfo        = 1 << 24
)

// modinfoSection returns the contents of the .modinfo section of the ELF file r. It reads the
// section headers and the section-name table only; debug/elf would do, but costs /init about
// 200 KB for this one lookup.
func modinfoSection(r io.ReaderAt) ([]byte, error) {
	var ident [16]byte
	if _, err := r.ReadAt(ident[:], 0); err != nil || string(ident[:4]) != "\x7fELF" {
		return nil, errors.New("not an ELF file")
	}
	var bo binary.ByteOrder
	switch ident[5] {
	case 1:
		bo = binary.LittleEndian
	case 2:
		bo = binary.BigEndian
	default:
		return nil, errors.New("bad ELF data encoding")
	}
	// Where the fields are: ELF64 (class 2) or ELF32 (class 1).
	var hdr []byte
	var shoff uint64
	var shentsize, shnum, shstrndx uint16
	var shSize int
	switch ident[4] {
	case 2:
		hdr = make([]byte, 64)
		if _, err := r.ReadAt(hdr, 0); err != nil {
			return nil, fmt.Errorf("reading ELF header: %w", err)
		}
		shoff = bo.Uint64(hdr[40:])
		shentsize, shnum, shstrndx = bo.Uint16(hdr[58:]), bo.Uint16(hdr[60:]), bo.Uint16(hdr[62:])
		shSize = 64
	case 1:
		hdr = make([]byte, 52)
		if _, err := r.ReadAt(hdr, 0); err != nil {
			return nil, fmt.Errorf("reading ELF header: %w", err)
		}
		shoff = uint64(bo.Uint32(hdr[32:]))
		shentsize, shnum, shstrndx = bo.Uint16(hdr[46:]), bo.Uint16(hdr[48:]), bo.Uint16(hdr[50:])
		shSize = 40
	default:
		return nil, errors.New("bad ELF class")
	}
	if int(shentsize) < shSize || shentsize > 1024 || shoff > 1<<40 {
		return nil, errors.New("bad ELF section header table")
	}
	// readHeaders reads n section headers; section returns the name offset, link, file offset
	// and size of header i.
	var sh []byte
	readHeaders := func(n int) error {
		if int(shentsize)*n > maxModinfo {
			return errors.New("ELF section header table too large")
		}
		sh = make([]byte, int(shentsize)*n)
		if _, err := r.ReadAt(sh, int64(shoff)); err != nil {
			return fmt.Errorf("reading ELF section headers: %w", err)
		}
		return nil
	}
	section := func(i int) (name, link uint32, off, size uint64) {
		e := sh[i*int(shentsize):]
		if shSize == 64 {
			return bo.Uint32(e), bo.Uint32(e[40:]), bo.Uint64(e[24:]), bo.Uint64(e[32:])
		}
		return bo.Uint32(e), bo.Uint32(e[24:]), uint64(bo.Uint32(e[16:])), uint64(bo.Uint32(e[20:]))
	}
	n, strndx := int(shnum), int(shstrndx)
	if n == 0 || strndx == 0xffff {
		// Extended numbering: the real values are in section header 0.
		if err := readHeaders(1); err != nil {
			return nil, err
		}
		_, link, _, size := section(0)
		if n == 0 {
			if size > maxSectionHeaders {
				return nil, errors.New("too many ELF sections")
			}
			n = int(size)
		}
		if strndx == 0xffff {
			strndx = int(link)
		}
	}
	if strndx >= n {
		return nil, errors.New("bad ELF section header table")
	}
	if err := readHeaders(n); err != nil {
		return nil, err
	}
	read := func(off, size uint64) ([]byte, error) {
		if size == 0 {
			return nil, nil
		}
		if size > maxModinfo || off > 1<<40 {
			return nil, errors.New("ELF section too large")
		}
		b := make([]byte, size)
		if _, err := r.ReadAt(b, int64(off)); err != nil {
			return nil, fmt.Errorf("reading ELF section: %w", err)
		}
		return b, nil
	}
	_, _, off, size := section(strndx)
	names, err := read(off, size)
	if err != nil {
		return nil, err
	}
	for i := range n {
		name, _, off, size := section(i)
		if uint64(name) < uint64(len(names)) && bytes.HasPrefix(names[name:], []byte(".modinfo\x00")) {
			return read(off, size)
		}
	}
	return nil, errors.New("no .modinfo section")
}

// Open returns a reader of the ELF image of the module at p in fsys (.ko, .ko.xz, .ko.zst or
// .ko.gz), decompressed as it is read: ramboot initramfs reads a module's ELF header with it.
func Open(fsys fs.FS, p string) (io.ReadCloser, error) {
	f, err := fsys.Open(p)
	if err != nil {
		return nil, err
	}
	rc, err := decompress(f, p)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return closeBoth{rc, f}, nil
}

// closeBoth closes a decompressor and the file below it.
type closeBoth struct {
	io.ReadCloser
	file io.Closer
}

func (c closeBoth) Close() error {
	err := c.ReadCloser.Close()
	if ferr := c.file.Close(); err == nil {
		err = ferr
	}
	return err
}

// decompress returns a reader of the module image in r, decompressing by the file name's
// extension: .ko as is, .ko.xz, .ko.zst or .ko.gz.
func decompress(r io.Reader, name string) (io.ReadCloser, error) {
	switch {
	case strings.HasSuffix(name, ".ko"):
		return io.NopCloser(r), nil
	case strings.HasSuffix(name, ".ko.xz"):
		return xzpar.NewReader(r, 1)
	case strings.HasSuffix(name, ".ko.zst"):
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case strings.HasSuffix(name, ".ko.gz"):
		return gzip.NewReader(r)
	}
	return nil, errors.New("not a kernel module file name")
}
