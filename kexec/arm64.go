package kexec

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// arm64's kexec_file_load takes only the raw Image (arch/arm64/kernel/kexec_image.c probes
// for its magic), and so does the kexec_load fallback (u-root's arm64 loader parses the Image
// header; it is the one that runs on Debian 12, whose arm64 kernels lack CONFIG_KEXEC_FILE),
// while distributions ship it three ways: the Image itself (Debian 12, an
// EFI-stub PE whose Image header says "ARM\x64" at 0x38), gzipped (Ubuntu's vmlinuz, which
// GRUB unpacks), or as an EFI zboot image (newer kernels' CONFIG_EFI_ZBOOT: a small PE
// decompressor carrying the compressed Image, described by the header of
// drivers/firmware/efi/libstub/zboot-header.S). Load unpacks the last two first.

// Offsets and magics of the headers involved (Documentation/arch/arm64/booting.rst,
// zboot-header.S).
const (
	arm64MagicOff = 0x38
	arm64Magic    = "ARM\x64"
	arm64HdrLen   = 64

	zbootMagicOff = 4
	zbootMagic    = "zimg"
	zbootOffOff   = 8  // le32: payload offset from the start of the file
	zbootSizeOff  = 12 // le32: payload size
	zbootCompOff  = 24 // NUL-terminated compression name: "gzip", "zstd", ...
	zbootCompLen  = 32
)

// maxARM64Image bounds an unpacked Image: a kernel is tens of MB, and a corrupt or hostile
// file must not fill the tmpfs /init runs in.
const maxARM64Image = 256 << 20

// ErrNotARM64Image: the kernel file is none of the forms arm64's kexec can be given.
var ErrNotARM64Image = errors.New("not an arm64 kernel: neither an Image, a gzip-compressed Image nor an EFI zboot image")

// arm64Kernel is what an arm64 kernel file holds.
type arm64Kernel struct {
	// Kind is "Image" (load it as is), "gzip" or "zboot".
	Kind string
	// Compression is the compression of the payload: "gzip" or "zstd" ("" for an Image).
	Compression string
	// Payload is the compressed Image: the whole file for gzip, the zboot payload.
	Payload *io.SectionReader
}

func (k arm64Kernel) String() string {
	switch k.Kind {
	case "gzip":
		return "a gzip-compressed arm64 Image"
	case "zboot":
		return "an EFI zboot image (" + k.Compression + ")"
	}
	return "an arm64 Image"
}

// sniffARM64 tells what the arm64 kernel file r of size bytes is, from its headers. It reads
// nothing but them.
func sniffARM64(r io.ReaderAt, size int64) (arm64Kernel, error) {
	hdr := make([]byte, arm64HdrLen)
	n, err := r.ReadAt(hdr, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return arm64Kernel{}, fmt.Errorf("reading kernel header: %w", err)
	}
	hdr = hdr[:n]
	switch {
	case len(hdr) >= 2 && hdr[0] == 0x1f && hdr[1] == 0x8b:
		return arm64Kernel{Kind: "gzip", Compression: "gzip", Payload: io.NewSectionReader(r, 0, size)}, nil
	case len(hdr) == arm64HdrLen && string(hdr[:2]) == "MZ" && string(hdr[zbootMagicOff:zbootMagicOff+4]) == zbootMagic:
		off := int64(binary.LittleEndian.Uint32(hdr[zbootOffOff:]))
		n := int64(binary.LittleEndian.Uint32(hdr[zbootSizeOff:]))
		comp, _, _ := bytes.Cut(hdr[zbootCompOff:zbootCompOff+zbootCompLen], []byte{0})
		if off < arm64HdrLen || n == 0 || off > size || n > size-off {
			return arm64Kernel{}, fmt.Errorf("EFI zboot image: payload of %d bytes at %d lies outside the file's %d bytes", n, off, size)
		}
		k := arm64Kernel{Kind: "zboot", Compression: string(comp), Payload: io.NewSectionReader(r, off, n)}
		if k.Compression != "gzip" && k.Compression != "zstd" {
			return arm64Kernel{}, fmt.Errorf("EFI zboot image compressed with %q: ramboot unpacks gzip and zstd", comp)
		}
		return k, nil
	case len(hdr) == arm64HdrLen && string(hdr[arm64MagicOff:arm64MagicOff+4]) == arm64Magic:
		return arm64Kernel{Kind: "Image"}, nil
	case size >= 0x206:
		// An x86 bzImage says "HdrS" at 0x202: name it, the likely mistake.
		var m [4]byte
		if _, err := r.ReadAt(m[:], 0x202); err == nil && string(m[:]) == "HdrS" {
			return arm64Kernel{}, fmt.Errorf("%w (it is an x86 bzImage)", ErrNotARM64Image)
		}
	}
	return arm64Kernel{}, ErrNotARM64Image
}

// unpack writes the Image k holds to w, at most limit bytes, and checks that it is one.
func (k arm64Kernel) unpack(w io.Writer, limit int64) (int64, error) {
	var r io.Reader
	switch k.Compression {
	case "gzip":
		gz, err := gzip.NewReader(k.Payload)
		if err != nil {
			return 0, fmt.Errorf("unpacking %s: %w", k, err)
		}
		// One member: zboot's payload, and a vmlinuz, hold one gzip stream.
		gz.Multistream(false)
		r = gz
	case "zstd":
		d, err := zstd.NewReader(k.Payload, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return 0, fmt.Errorf("unpacking %s: %w", k, err)
		}
		defer d.Close()
		r = d
	default:
		return 0, fmt.Errorf("unpacking %s: nothing to unpack", k)
	}
	// The Image header first: a payload that is no Image is refused before it is written out.
	hdr := make([]byte, arm64HdrLen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return 0, fmt.Errorf("unpacking %s: %w", k, err)
	}
	if string(hdr[arm64MagicOff:arm64MagicOff+4]) != arm64Magic {
		return 0, fmt.Errorf("unpacking %s: the payload is not an arm64 Image (no ARM\\x64 magic at 0x38)", k)
	}
	if _, err := w.Write(hdr); err != nil {
		return 0, err
	}
	n, err := io.Copy(w, io.LimitReader(r, limit-arm64HdrLen+1))
	n += arm64HdrLen
	switch {
	case err != nil:
		return n, fmt.Errorf("unpacking %s: %w", k, err)
	case n > limit:
		return n, fmt.Errorf("unpacking %s: the Image is larger than %d MiB", k, limit>>20)
	}
	return n, nil
}

// arm64Image returns the raw Image of the arm64 kernel file f for kexec: f itself,
// or an unlinked file in tmpDir holding the Image unpacked from a gzip or EFI zboot kernel
// (the caller closes it; f stays open).
func arm64Image(f *os.File, tmpDir string, logf func(string, ...any)) (*os.File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	k, err := sniffARM64(f, st.Size())
	if err != nil {
		return nil, err
	}
	if k.Kind == "Image" {
		return f, nil
	}
	out, err := os.CreateTemp(tmpDir, "Image-*")
	if err != nil {
		return nil, err
	}
	os.Remove(out.Name())
	n, err := k.unpack(out, maxARM64Image)
	if err == nil {
		_, err = out.Seek(0, io.SeekStart)
	}
	if err != nil {
		out.Close()
		return nil, err
	}
	logf("kexec: the kernel is %s: unpacked its Image (%d bytes) for kexec", k, n)
	return out, nil
}
