package xzpar

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests compress generated data with the system's xz and pixz, so they
// exercise the decoder on what those encoders really produce.

var (
	dataOnce sync.Once
	data     []byte
)

// testData returns about 3 MB of mixed data: Go source, machine code,
// zeros and incompressible bytes (which LZMA2 stores as uncompressed
// chunks).
func testData(t testing.TB) []byte {
	dataOnce.Do(func() {
		var buf bytes.Buffer
		var files []string
		root := goroot()
		filepath.WalkDir(filepath.Join(root, "src", "net", "http"), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".go") {
				files = append(files, path)
			}
			return nil
		})
		sort.Strings(files)
		for _, f := range files {
			if buf.Len() > 1500000 {
				break
			}
			b, _ := os.ReadFile(f)
			buf.Write(b)
		}
		if exe, err := os.ReadFile(filepath.Join(root, "bin", "gofmt")); err == nil {
			buf.Write(exe[:min(len(exe), 1000000)])
		}
		buf.Write(make([]byte, 200000))
		rnd := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < 300000; i++ {
			buf.WriteByte(byte(rnd.Uint32()))
		}
		buf.WriteString(strings.Repeat("abcabcabd", 20000))
		data = buf.Bytes()
	})
	if len(data) == 0 {
		t.Fatal("no test data")
	}
	return data
}

// goroot returns the Go installation, whose sources and binaries make
// realistic test data.
func goroot() string {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return "/usr/local/go"
	}
	return strings.TrimSpace(string(out))
}

func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (.ci/run must install it)", name)
		}
		t.Skipf("%s not installed", name)
	}
	return p
}

var (
	compressMu    sync.Mutex
	compressCache = map[string][]byte{}
)

// compress runs tool with args, feeding it in on stdin, and caches the
// result by key.
func compress(t testing.TB, in []byte, tool string, args ...string) []byte {
	t.Helper()
	key := fmt.Sprintf("%s %q %d", tool, args, len(in))
	compressMu.Lock()
	defer compressMu.Unlock()
	if b, ok := compressCache[key]; ok {
		return b
	}
	cmd := exec.Command(needTool(t, tool), args...)
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", tool, strings.Join(args, " "), err, stderr.String())
	}
	compressCache[key] = out.Bytes()
	return out.Bytes()
}

func xzc(t testing.TB, in []byte, args ...string) []byte {
	return compress(t, in, "xz", append([]string{"-c", "-q"}, args...)...)
}

func decode(in []byte, workers int) ([]byte, error) {
	return decodeOptions(in, Options{Workers: workers})
}

func decodeOptions(in []byte, o Options) ([]byte, error) {
	r, err := NewReaderOptions(bytes.NewReader(in), o)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

// oneByteReader returns input one byte per Read, to exercise short reads.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

// shortReader returns input in short reads of 1, 2, ... 61 bytes in turn: short reads
// at shifting boundaries, in far fewer calls than oneByteReader.
type shortReader struct {
	r io.Reader
	n *int
}

func (s shortReader) Read(p []byte) (int, error) {
	*s.n = *s.n%61 + 1
	if len(p) > *s.n {
		p = p[:*s.n]
	}
	return s.r.Read(p)
}

type testCase struct {
	name string
	// input returns the compressed input and the data it decodes to.
	input func(t testing.TB) (in, want []byte)
}

func xzCase(name string, args ...string) testCase {
	return testCase{name, func(t testing.TB) ([]byte, []byte) {
		d := testData(t)
		return xzc(t, d, args...), d
	}}
}

func pixzCase(name string, args ...string) testCase {
	return testCase{name, func(t testing.TB) ([]byte, []byte) {
		d := testData(t)
		return compress(t, d, "pixz", args...), d
	}}
}

var validCases = []testCase{
	xzCase("xz single block", "-T1", "-6"),
	xzCase("xz -0 sliding window", "-T1", "-0"),
	xzCase("xz -T1 blocks without sizes", "-T1", "--block-size=700KiB"),
	xzCase("xz multi-block crc64", "-T2", "--block-size=512KiB"),
	xzCase("xz multi-block crc32", "-T2", "--block-size=512KiB", "--check=crc32"),
	xzCase("xz multi-block sha256", "-T2", "--block-size=512KiB", "--check=sha256"),
	xzCase("xz multi-block none", "-T2", "--block-size=512KiB", "--check=none"),
	xzCase("xz tiny blocks", "-T2", "--block-size=20000", "-1"),
	xzCase("xz lc1 lp3 pb0", "-T2", "--block-size=1MiB", "--lzma2=preset=6,lc=1,lp=3,pb=0"),
	xzCase("xz lc0 lp0 pb4", "-T2", "--block-size=1MiB", "--lzma2=preset=6,lc=0,lp=0,pb=4"),
	xzCase("xz lc4 pb1 small dict", "-T1", "--lzma2=preset=6,lc=4,pb=1,dict=4KiB"),
	pixzCase("pixz -9", "-9"),
	pixzCase("pixz -1", "-1"),
	{"empty", func(t testing.TB) ([]byte, []byte) {
		return xzc(t, nil), []byte{}
	}},
	{"empty multi-threaded", func(t testing.TB) ([]byte, []byte) {
		return xzc(t, nil, "-T2", "--block-size=1MiB"), []byte{}
	}},
	{"concatenated streams with padding", func(t testing.TB) ([]byte, []byte) {
		d := testData(t)
		a, b, c := d[:len(d)/3], d[len(d)/3:len(d)/2], d[len(d)/2:]
		var in bytes.Buffer
		in.Write(xzc(t, a, "-T2", "--block-size=300KiB", "--check=sha256"))
		in.Write(make([]byte, 8))
		in.Write(xzc(t, nil))
		in.Write(xzc(t, b, "-T1", "--check=crc32"))
		in.Write(compress(t, c, "pixz", "-6"))
		in.Write(make([]byte, 4))
		return in.Bytes(), d
	}},
}

func TestNewReader(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			in, want := tc.input(t)
			for _, workers := range []int{1, 2, 4, 0} {
				got, err := decode(in, workers)
				if err != nil {
					t.Fatalf("workers %d: %v", workers, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("workers %d: got %d bytes, want %d (first difference at %d)",
						workers, len(got), len(want), firstDiff(got, want))
				}
			}
		})
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestSlowConsumer reads in small pieces with pauses and one byte of input
// at a time, so decoders run ahead of the consumer and wait for it.
func TestSlowConsumer(t *testing.T) {
	for _, tc := range []testCase{validCases[1], validCases[3]} {
		t.Run(tc.name, func(t *testing.T) {
			in, want := tc.input(t)
			r, err := NewReader(oneByteReader{bytes.NewReader(in)}, 3)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got []byte
			buf := make([]byte, 100000)
			for i := 0; ; i++ {
				n, err := r.Read(buf[:1+i%len(buf)])
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if i%50 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

func TestClose(t *testing.T) {
	d := testData(t)
	for _, in := range [][]byte{xzc(t, d, "-T2", "--block-size=100KiB"), xzc(t, d, "-T1", "-0")} {
		r, err := NewReader(bytes.NewReader(in), 2)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Read(buf); err == nil {
			t.Fatal("Read after Close succeeded")
		}
	}
}

func TestNewReaderErrors(t *testing.T) {
	d := testData(t)[:100000]
	tests := []struct {
		name   string
		input  func(t testing.TB) []byte
		want   error
		detail string // substring of the error message
	}{
		{"empty input", func(testing.TB) []byte { return nil }, ErrFormat, ""},
		{"text", func(testing.TB) []byte { return []byte("hello, world\n") }, ErrFormat, ""},
		{"gzip", func(testing.TB) []byte { return []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3} }, ErrFormat, ""},
		{"lzma alone", func(t testing.TB) []byte { return xzc(t, d, "--format=lzma") }, ErrFormat, ""},
		{"delta filter", func(t testing.TB) []byte { return xzc(t, d, "--delta=dist=4", "--lzma2") }, ErrFormat, "0x3 (delta)"},
		{"x86 filter", func(t testing.TB) []byte { return xzc(t, d, "--x86", "--lzma2") }, ErrFormat, "0x4 (x86)"},
		{"truncated header", func(t testing.TB) []byte { return xzc(t, d)[:9] }, ErrCorrupt, "truncated"},
		{"trailing garbage", func(t testing.TB) []byte { return append(xzc(t, d), "garbage!"...) }, ErrCorrupt, "trailing"},
		{"odd stream padding", func(t testing.TB) []byte { return append(xzc(t, d), 0, 0) }, ErrCorrupt, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.input(t)
			_, err := decode(in, 2)
			if !errors.Is(err, tt.want) || !strings.Contains(fmt.Sprint(err), tt.detail) {
				t.Fatalf("got error %v, want %v containing %q", err, tt.want, tt.detail)
			}
		})
	}
}

// robotBlock is a block as listed by xz --robot --list -vv.
type robotBlock struct {
	offset, total, header, check int
}

// listBlocks lists the blocks of a single-stream file with xz itself, so
// that corruption tests do not depend on this package's parser.
func listBlocks(t testing.TB, in []byte) []robotBlock {
	t.Helper()
	f := filepath.Join(t.TempDir(), "in.xz")
	if err := os.WriteFile(f, in, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(needTool(t, "xz"), "--robot", "--list", "-vv", f).Output()
	if err != nil {
		t.Fatal(err)
	}
	var blocks []robotBlock
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fl := strings.Split(sc.Text(), "\t")
		if fl[0] != "block" {
			continue
		}
		atoi := func(s string) int {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("xz --robot: %v", err)
			}
			return n
		}
		sizes := map[string]int{"None": 0, "CRC32": 4, "CRC64": 8, "SHA-256": 32}
		blocks = append(blocks, robotBlock{
			offset: atoi(fl[4]),
			total:  atoi(fl[6]),
			check:  sizes[fl[9]],
			header: atoi(fl[11]),
		})
	}
	return blocks
}

func TestCorruption(t *testing.T) {
	// Each corrupt byte costs a decode, and there are more of them in more data: under
	// the race detector, a quarter of the data in blocks a quarter the size, so the
	// same number of blocks.
	size, bs := 600000, "--block-size=128KiB"
	if raceEnabled {
		size, bs = 150000, "--block-size=32KiB"
	}
	d := testData(t)[:size]
	inputs := []struct {
		name   string
		in     []byte
		budget int64
	}{
		{"multi-block crc64", xzc(t, d, "-T2", bs), 0},
		{"multi-block sha256", xzc(t, d, "-T2", bs, "--check=sha256"), 0},
		{"single block crc32", xzc(t, d, "-T1", "--check=crc32"), 0},
		{"blocks without sizes", xzc(t, d, "-T1", bs), 0},
		// Blocks with sizes, decoded as they are read.
		{"multi-block crc64 over budget", xzc(t, d, "-T2", bs), 1},
	}
	for _, input := range inputs {
		in := input.in
		blocks := listBlocks(t, in)
		last := blocks[len(blocks)-1]
		indexStart := last.offset + last.total
		tests := []struct {
			name string
			pos  []int
			want error
		}{
			{"stream header", span(0, 12), ErrCorrupt},
			{"block header", span(blocks[0].offset, blocks[0].header), ErrCorrupt},
			{"last block header", span(last.offset, last.header), ErrCorrupt},
			{"check", span(last.offset+last.total-last.check, last.check), ErrCheck},
			{"index", span(indexStart, len(in)-12-indexStart), ErrCorrupt},
			{"stream footer", span(len(in)-12, 12), ErrCorrupt},
			{"data", stride(blocks[0].offset+blocks[0].header, indexStart, 397), nil},
		}
		for _, tt := range tests {
			t.Run(input.name+"/"+tt.name, func(t *testing.T) {
				for _, pos := range tt.pos {
					for _, flip := range []byte{0x01, 0x80} {
						bad := bytes.Clone(in)
						bad[pos] ^= flip
						got, err := decodeOptions(bad, Options{Workers: 2, MemoryBudget: input.budget})
						if err == nil {
							t.Fatalf("flip %#x at %d: no error (%d bytes)", flip, pos, len(got))
						}
						if tt.want != nil && !errors.Is(err, tt.want) && !errors.Is(err, ErrFormat) {
							t.Fatalf("flip %#x at %d: got %v, want %v", flip, pos, err, tt.want)
						}
						if tt.want == nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrCheck) && !errors.Is(err, ErrFormat) {
							t.Fatalf("flip %#x at %d: got %v, want a sentinel error", flip, pos, err)
						}
					}
				}
			})
		}
	}
}

func span(start, n int) []int {
	var p []int
	for i := start; i < start+n; i++ {
		p = append(p, i)
	}
	return p
}

func stride(start, end, step int) []int {
	var p []int
	for i := start; i < end; i += step {
		p = append(p, i)
	}
	return p
}

func TestTruncation(t *testing.T) {
	d := testData(t)[:300000]
	for _, tc := range []struct {
		name   string
		in     []byte
		budget int64
	}{
		{"multi-block", xzc(t, d, "-T2", "--block-size=64KiB"), 0},
		{"single block", xzc(t, d, "-T1"), 0},
		{"pixz", compress(t, d, "pixz", "-6"), 0},
		{"multi-block over budget", xzc(t, d, "-T2", "--block-size=64KiB"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cuts := append(span(0, 300), stride(300, len(tc.in)-300, 97)...)
			cuts = append(cuts, span(len(tc.in)-300, 300)...)
			for _, n := range cuts {
				got, err := decodeOptions(tc.in[:n], Options{Workers: 2, MemoryBudget: tc.budget})
				if err == nil {
					t.Fatalf("truncated to %d of %d bytes: no error (%d bytes out)", n, len(tc.in), len(got))
				}
				if n >= 12 && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("truncated to %d: got %v, want ErrCorrupt", n, err)
				}
			}
		})
	}
}

func TestUncompressedSize(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			in, want := tc.input(t)
			got, err := UncompressedSize(bytes.NewReader(in), int64(len(in)))
			if err != nil {
				t.Fatal(err)
			}
			if got != int64(len(want)) {
				t.Fatalf("got %d, want %d", got, len(want))
			}
		})
	}
}

func TestUncompressedSizeErrors(t *testing.T) {
	in := xzc(t, testData(t)[:100000], "-T2", "--block-size=30000")
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"not xz", []byte("this is not an xz file at all, no")},
		{"truncated", in[:len(in)-1]},
		{"missing header", in[4:]},
		{"corrupt footer", flip(in, len(in)-7)},
		{"corrupt index", flip(in, len(in)-14)},
		{"only padding", make([]byte, 64)},
		{"garbage before", append([]byte("abcd"), in...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if n, err := UncompressedSize(bytes.NewReader(tt.in), int64(len(tt.in))); err == nil {
				t.Fatalf("got %d, want an error", n)
			}
		})
	}
}

func flip(b []byte, pos int) []byte {
	c := bytes.Clone(b)
	c[pos] ^= 0x10
	return c
}
