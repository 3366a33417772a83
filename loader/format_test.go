package loader

import (
	"bytes"
	"testing"
)

func TestSniff(t *testing.T) {
	plain := tarOf(t, randomTree(9, 1000))
	for _, tt := range []struct {
		name string
		head []byte
		want Format
	}{
		{"tar", plain, FormatTar},
		{"xz", xzOf(t, plain), FormatXZ},
		{"zstd", zstdOf(t, plain), FormatZstd},
		{"zstd skippable", []byte{0x50, 0x2A, 0x4D, 0x18, 4, 0, 0, 0}, FormatZstd},
		{"gzip", gzipOf(t, plain), FormatGzip},
		{"bzip2", []byte("BZh91AY&SY\x00\x00"), FormatBzip2},
		{"empty", nil, FormatUnknown},
		{"html", []byte("<html><body>404</body></html>"), FormatUnknown},
		{"short tar", plain[:300], FormatUnknown},
		{"zeros", make([]byte, 512), FormatUnknown},
		{"bzip2 lookalike", []byte("BZh9 hello world"), FormatUnknown},
	} {
		head := tt.head[:min(len(tt.head), sniffLen)]
		if got := Sniff(head); got != tt.want {
			t.Errorf("%s: Sniff = %v, want %v", tt.name, got, tt.want)
		}
	}
	// v7 tar: no ustar magic, valid checksum.
	v7 := bytes.Clone(plain[:512])
	copy(v7[257:265], make([]byte, 8))
	var sum int
	for i, c := range v7 {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int(c)
	}
	copy(v7[148:156], []byte(fmtOctal(sum)))
	if Sniff(v7) != FormatTar {
		t.Errorf("v7 tar header not recognised")
	}
}

func fmtOctal(n int) string {
	s := ""
	for ; n > 0; n /= 8 {
		s = string(rune('0'+n%8)) + s
	}
	for len(s) < 6 {
		s = "0" + s
	}
	return s + "\x00 "
}

func FuzzSniff(f *testing.F) {
	f.Add([]byte{0xFD, '7', 'z', 'X', 'Z', 0})
	f.Add([]byte{0x28, 0xB5, 0x2F, 0xFD})
	f.Add([]byte{0x1F, 0x8B, 8})
	f.Add(tarOf(f, randomTree(10, 100))[:512])
	f.Fuzz(func(t *testing.T, b []byte) {
		got := Sniff(b)
		if got.String() == "" {
			t.Fatalf("format %d has no name", got)
		}
		// A format is only claimed with its magic present.
		switch got {
		case FormatXZ:
			if len(b) < 6 {
				t.Fatal("xz claimed on short input")
			}
		case FormatTar:
			if len(b) < 512 {
				t.Fatal("tar claimed on short input")
			}
		}
	})
}
