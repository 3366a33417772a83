package loader

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// walked is what the extractor sees of an archive through tarEntries: every entry's header
// (the fields archive/tar sets, but Format and the deprecated Xattrs) and data, and how the
// walk ended.
type walked struct {
	entries []string
	end     string
	fast    int
}

func walkEntries(r io.Reader, noFast bool) walked {
	es := newTarEntries(r)
	es.noFast = noFast
	var w walked
	for len(w.entries) < 10000 {
		hdr, data, sp, err := es.next()
		if err != nil {
			w.end = fmt.Sprintf("end: %v (lone %v at %d)", err, es.lone, es.loneAt)
			break
		}
		limit := int64(1 << 20)
		var frags string
		if sp != nil {
			frags = fmt.Sprint(sp.frags, sp.physical)
			limit = sp.physical // read raw: the rest is the archive's
		}
		b, rerr := io.ReadAll(io.LimitReader(data, limit))
		w.entries = append(w.entries, fmt.Sprintf("%q %q %c mode %o uid %d gid %d size %d mtime %d atime %d ctime %d dev %d,%d user %q group %q pax %q | sparse %s | %d bytes %x, %v",
			hdr.Name, hdr.Linkname, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid, hdr.Size,
			hdr.ModTime.UnixNano(), unixNano(hdr.AccessTime), unixNano(hdr.ChangeTime), hdr.Devmajor, hdr.Devminor,
			hdr.Uname, hdr.Gname, paxString(hdr.PAXRecords), frags, len(b), sha(b), rerr))
		if err := es.done(); err != nil {
			w.end = fmt.Sprintf("done: %v", err)
			break
		}
	}
	w.fast = es.fastN
	return w
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// paxString renders records in a stable order, telling a missing map from an empty one.
func paxString(m map[string]string) string {
	if m == nil {
		return "nil"
	}
	var ks []string
	for k, v := range m {
		ks = append(ks, fmt.Sprintf("%q=%q", k, v))
	}
	return fmt.Sprint(len(m), sortStrings(ks))
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

// tarWith writes entries in one archive/tar format.
func tarWith(t testing.TB, format tar.Format, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.Format = format
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("writing header %s: %v", h.Name, err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	return buf.Bytes()
}

// tarCorpus is archives of every kind the fast path takes or declines: archive/tar's formats,
// GNU tar's, and hand-edited headers.
func tarCorpus(t testing.TB) map[string][]byte {
	c := map[string][]byte{
		"pax":   tarOf(t, everyType()),
		"tree":  tarOf(t, randomTree(7, 300<<10)),
		"ustar": tarWith(t, tar.FormatUSTAR, []entry{regE("a", "x"), dirE("d/", 1), regE(strings.Repeat("p", 120)+"/"+strings.Repeat("n", 90), "prefixed")}),
		"gnu": tarWith(t, tar.FormatGNU, []entry{regE("a", "gnu"), {hdr: tar.Header{Name: strings.Repeat("L", 200), Typeflag: tar.TypeReg, Mode: 0o644}, data: []byte("long")},
			{hdr: tar.Header{Name: "big-uid", Typeflag: tar.TypeReg, Uid: 1 << 30, Mode: 0o644}, data: []byte("b")},
			{hdr: tar.Header{Name: "times", Typeflag: tar.TypeReg, Mode: 0o644, AccessTime: epoch, ChangeTime: epoch}, data: []byte("t")}}),
		"pax-fields": tarOf(t, []entry{
			{hdr: tar.Header{Name: "uid", Typeflag: tar.TypeReg, Uid: 1 << 22, Gid: 1 << 23, Uname: "someone-with-a-very-long-user-name-indeed", ModTime: epoch, AccessTime: epoch.Add(time.Second), Format: tar.FormatPAX}, data: []byte("u")},
			{hdr: tar.Header{Name: "link", Typeflag: tar.TypeSymlink, Linkname: strings.Repeat("t", 150), Format: tar.FormatPAX}},
			{hdr: tar.Header{Name: "old", Typeflag: tar.TypeReg, ModTime: time.Unix(-1234, 5), Format: tar.FormatPAX}, data: []byte("o")},
			{hdr: tar.Header{Name: "global", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "g"}}},
			{hdr: tar.Header{Name: "empty-pax", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"comment": ""}}, data: []byte("e")},
		}),
	}
	// Hand-made variants of one header (a regular file "f" with data "hello").
	base := tarWith(t, tar.FormatUSTAR, []entry{regE("f", "hello"), regE("g", "world")})
	edit := func(name string, f func(b []byte), resum bool) {
		b := bytes.Clone(base)
		f(b)
		if resum {
			copy(b[hChksum:hChksum+8], fmt.Sprintf("%06o\x00 ", unsignedSum(b)))
		}
		c[name] = b
	}
	edit("regA", func(b []byte) { b[156] = 0 }, true)
	edit("regA dir", func(b []byte) { b[156] = 0; copy(b, "f/\x00") }, true)
	edit("v7", func(b []byte) { copy(b[hMagic:], make([]byte, 8)) }, true)
	edit("star", func(b []byte) { copy(b[508:], "tar\x00") }, true)
	edit("signed sum", func(b []byte) {
		b[hName+90] = 0xe9
		var s int64
		for i, c := range b[:blockSize] {
			if i >= hChksum && i < hChksum+8 {
				c = ' '
			}
			s += int64(int8(c))
		}
		copy(b[hChksum:hChksum+8], fmt.Sprintf("%06o\x00 ", s))
	}, false)
	edit("bad sum", func(b []byte) { b[hName+1] = 'x' }, false)
	edit("base-256 size", func(b []byte) { copy(b[hSize:hSize+12], "\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x05") }, true)
	edit("octal NUL inside", func(b []byte) { copy(b[hMode:hMode+8], "064\x004  ") }, true)
	edit("octal 9", func(b []byte) { copy(b[hMode:hMode+8], "0000649\x00") }, true)
	edit("size spaces", func(b []byte) { copy(b[hSize:hSize+12], "  5        ") }, true)
	edit("link with size", func(b []byte) { b[156] = tar.TypeLink; copy(b[hLink:], "g\x00") }, true)
	edit("truncated data", func(b []byte) {}, false)
	c["truncated data"] = base[:blockSize+3]
	c["truncated header"] = base[:300]
	c["cut after header"] = base[:blockSize]
	// PAX records of every shape, before a file "f".
	pax := func(name, recs string) {
		var buf bytes.Buffer
		x := make([]byte, blockSize)
		copy(x, "PaxHeaders/f")
		copy(x[hMode:], "0000644\x00")
		copy(x[hUID:], "0000000\x00")
		copy(x[hGID:], "0000000\x00")
		copy(x[hSize:], fmt.Sprintf("%011o\x00", len(recs)))
		copy(x[hMtime:], "00000000000\x00")
		x[156] = tar.TypeXHeader
		copy(x[hMagic:], "ustar\x0000")
		copy(x[hChksum:], fmt.Sprintf("%06o\x00 ", unsignedSum(x)))
		buf.Write(x)
		buf.WriteString(recs)
		buf.Write(make([]byte, -len(recs)&(blockSize-1)))
		buf.Write(base)
		c["pax "+name] = buf.Bytes()
	}
	rec := func(k, v string) string {
		n := len(k) + len(v) + 3
		for len(fmt.Sprintf("%d %s=%s\n", n, k, v)) != n {
			n++
		}
		return fmt.Sprintf("%d %s=%s\n", n, k, v)
	}
	pax("path", rec("path", "renamed/f"))
	pax("mtime", rec("mtime", "1700000000.1234567891")+rec("atime", "1700000001.5")+rec("ctime", "1700000002."))
	pax("negative mtime", rec("mtime", "-5.25"))
	pax("signed uid", rec("uid", "+5"))
	pax("size", rec("size", "3"))
	pax("size big", rec("size", "99999999"))
	pax("empty value", rec("uid", "")+rec("path", ""))
	pax("dup", rec("path", "a")+rec("path", "b"))
	pax("sparse", rec("GNU.sparse.major", "1")+rec("GNU.sparse.minor", "0"))
	pax("bad length", "7 a=b\n")
	pax("no equals", "6 abc\n")
	pax("NUL path", rec("path", "a\x00b"))
	pax("NUL key", rec("a\x00b", "c"))
	pax("xattr", rec("SCHILY.xattr.user.x", "v\x00w")+rec("LIBARCHIVE.xattr.user.y", "dg"))
	pax("big", rec("comment", strings.Repeat("c", maxFastPAX)))
	if tarBin, err := exec.LookPath("tar"); err == nil {
		dir := t.TempDir()
		src := filepath.Join(dir, "src")
		os.MkdirAll(filepath.Join(src, "sub", strings.Repeat("d", 120)), 0o755)
		os.WriteFile(filepath.Join(src, "sub", strings.Repeat("d", 120), strings.Repeat("f", 100)), []byte("deep"), 0o644)
		os.WriteFile(filepath.Join(src, "file"), bytes.Repeat([]byte("data"), 1000), 0o600)
		os.Symlink("file", filepath.Join(src, "sym"))
		os.Link(filepath.Join(src, "file"), filepath.Join(src, "hard"))
		sp, _ := os.Create(filepath.Join(src, "sparse"))
		sp.WriteAt([]byte("end"), 1<<20)
		sp.Close()
		for _, f := range []string{"posix", "gnu"} {
			out, err := exec.Command(tarBin, "--format="+f, "--sparse", "-C", src, "-cf", "-", ".").Output()
			if err != nil {
				t.Fatalf("tar --format=%s: %v", f, err)
			}
			c["GNU tar "+f] = out
		}
	} else if os.Getenv("CI") != "" {
		t.Fatal("GNU tar is missing")
	}
	return c
}

// TestTarFastMatchesArchiveTar: on every archive of the corpus, the extractor sees the same
// entries, data and end with the fast path as with archive/tar alone, and the fast path takes
// the common archives' entries.
func TestTarFastMatchesArchiveTar(t *testing.T) {
	for name, b := range tarCorpus(t) {
		t.Run(name, func(t *testing.T) {
			slow := walkEntries(bytes.NewReader(b), true)
			fast := walkEntries(bytes.NewReader(b), false)
			if !reflect.DeepEqual(slow.entries, fast.entries) || slow.end != fast.end {
				t.Errorf("archive/tar:\n%s\n%s\nfast path:\n%s\n%s", strings.Join(slow.entries, "\n"), slow.end,
					strings.Join(fast.entries, "\n"), fast.end)
			}
			want := 0
			switch name {
			case "pax", "tree", "GNU tar posix":
				want = len(slow.entries) - 1 // all but the sparse file in GNU tar's
				if name != "GNU tar posix" {
					want++
				}
			case "regA dir":
				want = 1 // a directory: its data is read as the next header, which is not one
			case "ustar":
				want = 3
			case "regA", "pax path", "pax mtime", "pax size", "pax dup", "pax xattr", "pax empty value":
				want = 2
			}
			if want > 0 && fast.fast != want {
				t.Errorf("the fast path read %d of %d entries, want %d", fast.fast, len(fast.entries), want)
			}
			t.Logf("%d entries, %d fast; %s", len(fast.entries), fast.fast, fast.end)
		})
	}
}

// TestTarFastMatchesPlainArchiveTar ties the walk to archive/tar's own reader on the valid
// archives: the same headers and data.
func TestTarFastMatchesPlainArchiveTar(t *testing.T) {
	c := tarCorpus(t)
	for _, name := range []string{"pax", "tree", "ustar", "gnu", "pax-fields", "GNU tar posix", "GNU tar gnu"} {
		b, ok := c[name]
		if !ok {
			continue
		}
		tr := tar.NewReader(bytes.NewReader(b))
		es := newTarEntries(bytes.NewReader(b))
		for i := 0; ; i++ {
			want, werr := tr.Next()
			got, data, sp, gerr := es.next()
			if werr == io.EOF && gerr == io.EOF {
				break
			}
			if werr != nil || gerr != nil {
				t.Fatalf("%s entry %d: archive/tar %v, walk %v", name, i, werr, gerr)
			}
			//lint:ignore SA1019 compared without the deprecated field, which the walk does not set
			want.Format, want.Xattrs = 0, nil
			got.Format = 0
			if !reflect.DeepEqual(want, got) {
				t.Errorf("%s entry %d:\narchive/tar %+v\nwalk        %+v", name, i, want, got)
			}
			wb, _ := io.ReadAll(tr)
			if sp != nil {
				io.CopyN(io.Discard, data, sp.physical)
			} else if gb, _ := io.ReadAll(data); !bytes.Equal(wb, gb) {
				t.Errorf("%s %s: data differs", name, want.Name)
			}
			if err := es.done(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzTarFast: on any input, the fast path changes nothing the extractor sees.
func FuzzTarFast(f *testing.F) {
	for _, b := range tarCorpus(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		slow := walkEntries(bytes.NewReader(b), true)
		fast := walkEntries(bytes.NewReader(b), false)
		if !reflect.DeepEqual(slow.entries, fast.entries) || slow.end != fast.end {
			t.Fatalf("archive/tar:\n%s\n%s\nfast path:\n%s\n%s", strings.Join(slow.entries, "\n"), slow.end,
				strings.Join(fast.entries, "\n"), fast.end)
		}
	})
}

// TestTarSourceErrors: a read error of the stream under the fast path is the extraction's
// error, as under archive/tar.
func TestTarSourceErrors(t *testing.T) {
	b := tarOf(t, everyType())
	boom := errors.New("boom")
	for _, cut := range []int{0, 100, blockSize, 3 * blockSize, len(b) / 2} {
		r := io.MultiReader(bytes.NewReader(b[:cut]), iotestErr{boom})
		w := walkEntries(r, false)
		if !strings.Contains(w.end, "boom") {
			t.Errorf("cut at %d: %s, want the stream's error", cut, w.end)
		}
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

// TestUnsignedSum: the word-wise checksum is the byte-wise one.
func TestUnsignedSum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, blockSize)
	for i := range 1000 {
		for j := range b {
			b[j] = byte(r.Uint32())
			if i%3 == 0 {
				b[j] |= 0xf0 // high bytes: the lanes' worst case
			}
		}
		var want int64
		for j, c := range b {
			if j >= hChksum && j < hChksum+8 {
				c = ' '
			}
			want += int64(c)
		}
		if got := unsignedSum(b); got != want {
			t.Fatalf("unsignedSum = %d, want %d", got, want)
		}
	}
}
