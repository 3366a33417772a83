package kexec

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// arm64ImageBytes is a synthetic arm64 Image of n bytes: the 64-byte header with the magic
// at 0x38 ("MZ" first, as an EFI-stub kernel has), then a counting pattern.
func arm64ImageBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	copy(b, "MZ")
	copy(b[arm64MagicOff:], arm64Magic)
	return b
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t testing.TB, b []byte) []byte {
	e, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return e.EncodeAll(b, nil)
}

// zbootBytes is an EFI zboot image as zboot-header.S lays it out: "MZ\0\0zimg", the payload's
// offset and size, the compression's name, LINUX_PE_MAGIC at 0x38, then (after a stand-in
// for the PE decompressor) the payload, followed by the 4-byte size the build appends.
func zbootBytes(comp string, payload []byte) []byte {
	const off = 0x200
	b := make([]byte, off, off+len(payload)+4)
	copy(b, "MZ\x00\x00"+zbootMagic)
	binary.LittleEndian.PutUint32(b[zbootOffOff:], off)
	binary.LittleEndian.PutUint32(b[zbootSizeOff:], uint32(len(payload)))
	copy(b[zbootCompOff:], comp)
	binary.LittleEndian.PutUint32(b[0x38:], 0x818223cd)
	binary.LittleEndian.PutUint32(b[0x3c:], 0x40)
	copy(b[0x40:], "PE\x00\x00")
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, 0x12345)
}

func TestARM64Image(t *testing.T) {
	img := arm64ImageBytes(100_000)
	zb, gz := zbootBytes("gzip", gzipBytes(t, img)), gzipBytes(t, img)
	bz := make([]byte, 0x400)
	copy(bz[0x202:], "HdrS")
	for _, tt := range []struct {
		name string
		in   []byte
		kind string // "" when refused
		err  string
	}{
		{"Image", img, "Image", ""},
		{"gzip", gzipBytes(t, img), "gzip", ""},
		{"zboot gzip", zbootBytes("gzip", gzipBytes(t, img)), "zboot", ""},
		{"zboot zstd", zbootBytes("zstd", zstdBytes(t, img)), "zboot", ""},
		{"zboot xz", zbootBytes("xz", []byte("\xfd7zXZ\x00")), "", `EFI zboot image compressed with "xz": ramboot unpacks gzip and zstd`},
		{"zboot payload past the end", zb[:len(zb)-10], "", "lies outside the file"},
		{"gzip of something else", gzipBytes(t, []byte(strings.Repeat("not a kernel ", 10))), "", "the payload is not an arm64 Image"},
		{"zboot of something else", zbootBytes("zstd", zstdBytes(t, make([]byte, 4096))), "", "the payload is not an arm64 Image"},
		{"truncated gzip", gz[:len(gz)/2], "", "unexpected EOF"},
		{"x86 bzImage", bz, "", "not an arm64 kernel: neither an Image, a gzip-compressed Image nor an EFI zboot image (it is an x86 bzImage)"},
		{"empty", nil, "", ErrNotARM64Image.Error()},
		{"text", []byte("#!/bin/sh\necho not a kernel\n"), "", ErrNotARM64Image.Error()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "vmlinuz")
			if err := os.WriteFile(p, tt.in, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var logged []string
			out, err := arm64Image(f, dir, func(format string, a ...any) { logged = append(logged, format) })
			if tt.kind == "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				if left, _ := os.ReadDir(dir); len(left) != 1 {
					t.Errorf("files left in the temporary directory: %v", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			got, err := io.ReadAll(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, img) {
				t.Errorf("got %d bytes, want the %d of the Image", len(got), len(img))
			}
			if (out == f) != (tt.kind == "Image") {
				t.Errorf("kind %s: the file itself returned = %v", tt.kind, out == f)
			}
			if tt.kind != "Image" {
				if len(logged) != 1 {
					t.Errorf("logged %q, want one line on unpacking", logged)
				}
				if left, _ := os.ReadDir(dir); len(left) != 1 {
					t.Errorf("the unpacked Image is not unlinked: %v", left)
				}
			}
		})
	}
}

// TestARM64ImageLimit: an Image that unpacks past the limit is refused, not written out whole.
func TestARM64ImageLimit(t *testing.T) {
	img := arm64ImageBytes(1 << 20)
	gz := gzipBytes(t, img)
	k, err := sniffARM64(bytes.NewReader(gz), int64(len(gz)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := k.unpack(&out, 512<<10); err == nil || !strings.Contains(err.Error(), "the Image is larger than 0 MiB") {
		t.Errorf("unpack past the limit: %v", err)
	}
	if out.Len() > 512<<10+1 {
		t.Errorf("wrote %d bytes past a limit of %d", out.Len(), 512<<10)
	}
}

// TestLoadARM64 unpacks a gzip'd kernel before kexec_file_load on arm64, and hands over an
// Image as it is; a file that is no arm64 kernel is refused before any syscall.
func TestLoadARM64(t *testing.T) {
	img := arm64ImageBytes(70_000)
	for _, tt := range []struct {
		name   string
		kernel []byte
		err    string
	}{
		{"Image", img, ""},
		{"gzip", gzipBytes(t, img), ""},
		{"zboot", zbootBytes("zstd", zstdBytes(t, img)), ""},
		{"bzImage", []byte("MZ kernel"), "kexec: http://10.0.2.2/vmlinuz: not an arm64 kernel"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			calls := fakeKernel(t, "none", false, nil)
			kernelArch = "arm64"
			var loaded []byte
			fileLoad = func(kernel, initrd *os.File, cmdline string) error {
				*calls = append(*calls, "kexec_file_load")
				var err error
				loaded, err = io.ReadAll(kernel)
				return err
			}
			im := testImage(t)
			if err := os.WriteFile(im.Kernel, tt.kernel, 0o644); err != nil {
				t.Fatal(err)
			}
			err := Load(im, t.TempDir(), t.Logf)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrNotARM64Image) {
					t.Errorf("Load: %v, want %q", err, tt.err)
				}
				if len(*calls) != 0 {
					t.Errorf("calls %q, want none", *calls)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(loaded, img) {
				t.Errorf("kexec_file_load got %d bytes, want the %d of the Image", len(loaded), len(img))
			}
		})
	}
}

// FuzzARM64Image: any kernel file is unpacked or refused, never a panic, never more than the
// limit written; what is unpacked is an arm64 Image.
func FuzzARM64Image(f *testing.F) {
	img := arm64ImageBytes(4096)
	f.Add(img)
	f.Add(gzipBytes(f, img))
	f.Add(zbootBytes("gzip", gzipBytes(f, img)))
	f.Add(zbootBytes("zstd", zstdBytes(f, img)))
	f.Add(zbootBytes("lz4", nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := sniffARM64(bytes.NewReader(b), int64(len(b)))
		if err != nil || k.Kind == "Image" {
			return
		}
		const limit = 1 << 20
		var out bytes.Buffer
		n, err := k.unpack(&out, limit)
		if out.Len() > limit+1 || int64(out.Len()) != n && err == nil {
			t.Fatalf("wrote %d bytes, said %d, limit %d", out.Len(), n, limit)
		}
		if err == nil && !bytes.HasPrefix(out.Bytes()[arm64MagicOff:], []byte(arm64Magic)) {
			t.Fatalf("unpacked something without the Image magic")
		}
	})
}
