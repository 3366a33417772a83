package uki

import (
	"bytes"
	"debug/pe"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/internal/peimage"
	"github.com/ramboot/ramboot/internal/peimage/peimagetest"
	"github.com/ramboot/ramboot/internal/vmtest"
)

func fakeKernel(release string) []byte { return peimagetest.BzImage(release) }

// realStub is systemd's x86-64 stub: in CI it must be installed (systemd-boot-efi).
func realStub(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(X64.DefaultStub())
	if err != nil {
		vmtest.Missing(t, X64.DefaultStub()+" (systemd-boot-efi)")
	}
	return b
}

func TestParseKernel(t *testing.T) {
	k, err := ParseKernel(fakeKernel("6.1.0-99-test"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Kernel{Arch: X64, Release: "6.1.0-99-test"}, k); diff != "" {
		t.Errorf("ParseKernel (-want +got):\n%s", diff)
	}
	arm := peimagetest.New(peimagetest.Options{Machine: pe.IMAGE_FILE_MACHINE_ARM64})
	if k, err := ParseKernel(arm); err != nil || k.Arch != AA64 {
		t.Errorf("arm64 PE: %+v, %v", k, err)
	}
	if _, err := ParseKernel([]byte("\x1f\x8b compressed")); err == nil || !strings.Contains(err.Error(), "gzip") {
		t.Errorf("ParseKernel of a gzip file: %v", err)
	}
}

// TestParseRealKernel: the release in Debian's kernel's header is its modules' directory.
func TestParseRealKernel(t *testing.T) {
	dir := os.Getenv("RAMBOOT_KERNEL_DIR")
	if dir == "" {
		dir = vmtest.DefaultKernelDir
	}
	vm, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	if len(vm) == 0 {
		vmtest.Missing(t, "kernel package in "+dir)
	}
	b, err := os.ReadFile(vm[0])
	if err != nil {
		t.Fatal(err)
	}
	k, err := ParseKernel(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimPrefix(filepath.Base(vm[0]), "vmlinuz-"); k.Release != want || k.Arch != X64 {
		t.Errorf("ParseKernel = %+v, want x64 %s", k, want)
	}
}

func TestBuild(t *testing.T) {
	stubs := map[string][]byte{"made up": peimagetest.New(peimagetest.Options{SectionAlignment: 0x1000})}
	if b, err := os.ReadFile(X64.DefaultStub()); err == nil {
		stubs["systemd"] = b
	} else {
		vmtest.Missing(t, X64.DefaultStub()+" (systemd-boot-efi)")
	}
	for name, stub := range stubs {
		t.Run(name, func(t *testing.T) {
			spec := Spec{
				Stub:    stub,
				Kernel:  fakeKernel("6.1.0-99-test"),
				Initrd:  bytes.Repeat([]byte("initrd"), 1000),
				Cmdline: "console=ttyS0 ramboot.menu=/menu.yaml",
				Version: "v1.2.3",
			}
			uki, err := Build(spec)
			if err != nil {
				t.Fatal(err)
			}
			checkLayout(t, stub, uki, spec)
		})
	}
}

// checkLayout parses uki with debug/pe: the stub's sections come first, unchanged byte for
// byte (the stub's .sbat renamed); then the UKI's in order, each aligned, none overlapping;
// SizeOfImage and the checksum right.
func checkLayout(t *testing.T, stub, uki []byte, spec Spec) {
	t.Helper()
	f, err := pe.NewFile(bytes.NewReader(uki))
	if err != nil {
		t.Fatal(err)
	}
	sf, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		t.Fatal(err)
	}
	oh, soh := f.OptionalHeader.(*pe.OptionalHeader64), sf.OptionalHeader.(*pe.OptionalHeader64)
	n := len(sf.Sections)
	var names []string
	for _, s := range f.Sections[n:] {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{".osrel", ".cmdline", ".uname", ".sbat", ".initrd", ".linux"}, names); diff != "" {
		t.Errorf("the UKI's sections (-want +got):\n%s", diff)
	}
	for i, s := range sf.Sections {
		got := f.Sections[i]
		want := s.SectionHeader
		if s.Name == ".sbat" {
			want.Name = StubSBATName
		}
		if got.SectionHeader != want {
			t.Errorf("stub section %d header: %+v, want %+v", i, got.SectionHeader, want)
		}
		a, _ := s.Data()
		b, _ := got.Data()
		if !bytes.Equal(a, b) {
			t.Errorf("stub section %s: data changed", s.Name)
		}
	}
	sl, err := peimage.Parse(stub)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(uki[soh.SizeOfHeaders:sl.DataEnd()], stub[soh.SizeOfHeaders:sl.DataEnd()]) {
		t.Error("the stub's bytes after its headers changed")
	}
	want := map[string][]byte{
		".osrel":   []byte(OSRelease(spec.Version)),
		".cmdline": []byte(spec.Cmdline),
		".uname":   []byte("6.1.0-99-test"),
		".initrd":  spec.Initrd,
		".linux":   spec.Kernel,
	}
	end := uint32(0)
	for _, s := range sf.Sections {
		end = max(end, s.VirtualAddress+s.VirtualSize)
	}
	for _, s := range f.Sections[n:] {
		if s.VirtualAddress < end {
			t.Errorf("section %s at %#x overlaps what comes before (up to %#x)", s.Name, s.VirtualAddress, end)
		}
		end = s.VirtualAddress + s.VirtualSize
		if s.VirtualAddress%oh.SectionAlignment != 0 || s.Offset%oh.FileAlignment != 0 {
			t.Errorf("section %s: address %#x or offset %#x not aligned", s.Name, s.VirtualAddress, s.Offset)
		}
		if s.Characteristics != pe.IMAGE_SCN_CNT_INITIALIZED_DATA|pe.IMAGE_SCN_MEM_READ {
			t.Errorf("section %s: characteristics %#x", s.Name, s.Characteristics)
		}
		data, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		data = data[:s.VirtualSize]
		if w, ok := want[s.Name]; ok && !bytes.Equal(data, w) {
			t.Errorf("section %s: %.60q, want %.60q", s.Name, data, w)
		}
		if s.Name == ".sbat" {
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			if !strings.HasPrefix(lines[0], "sbat,1,") || lines[len(lines)-1] != strings.TrimSpace(SBAT(spec.Version)) {
				t.Errorf(".sbat is\n%s", data)
			}
			if len(lines) < 3 {
				t.Errorf(".sbat lacks the stub's entries:\n%s", data)
			}
		}
	}
	if want := (end + oh.SectionAlignment - 1) &^ (oh.SectionAlignment - 1); oh.SizeOfImage != want {
		t.Errorf("SizeOfImage %#x, want %#x", oh.SizeOfImage, want)
	}
	if len(f.Sections) != int(f.NumberOfSections) {
		t.Errorf("%d sections, NumberOfSections %d", len(f.Sections), f.NumberOfSections)
	}
	if oh.SizeOfHeaders != soh.SizeOfHeaders {
		t.Errorf("SizeOfHeaders %#x, the stub's %#x", oh.SizeOfHeaders, soh.SizeOfHeaders)
	}
	l, _ := peimage.Parse(uki)
	if got := peimage.Checksum(uki, l.ChecksumOff); got != oh.CheckSum {
		t.Errorf("checksum %#x, want %#x", oh.CheckSum, got)
	}
}

func TestBuildObjdump(t *testing.T) {
	objdump := vmtest.Tool(t, "objdump")
	uki, err := Build(Spec{Stub: realStub(t), Kernel: fakeKernel("6.1.0-99-test"), Initrd: []byte("initrd"), Cmdline: "quiet", Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "uki.efi")
	if err := os.WriteFile(p, uki, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runOut(objdump, "-h", p)
	if err != nil {
		t.Fatalf("objdump -h: %v\n%s", err, out)
	}
	for _, s := range []string{".osrel", ".cmdline", ".uname", ".sbat", ".initrd", ".linux", StubSBATName} {
		if !strings.Contains(out, " "+s+" ") {
			t.Errorf("objdump -h does not show %s:\n%s", s, out)
		}
	}
	// The stub's COFF symbol table is gone, so nothing lies outside the sections.
	syms, err := runOut(objdump, "-t", p)
	if err != nil {
		t.Fatalf("objdump -t: %v\n%s", err, syms)
	}
	if !strings.Contains(syms, "no symbols") {
		t.Errorf("objdump -t of the UKI:\n%.2000s", syms)
	}
}

func TestBuildErrors(t *testing.T) {
	stub := peimagetest.New(peimagetest.Options{})
	kernel := fakeKernel("6.1.0-99-test")
	uki, err := Build(Spec{Stub: stub, Kernel: kernel, Version: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec Spec
		want string
	}{
		{"modules of another kernel", Spec{Stub: stub, Kernel: kernel, Release: "6.1.0-98-test"}, "the kernel is 6.1.0-99-test, the modules are for 6.1.0-98-test"},
		{"arm64 stub", Spec{Stub: peimagetest.New(peimagetest.Options{Machine: pe.IMAGE_FILE_MACHINE_ARM64}), Kernel: kernel}, "the stub is for aa64, the kernel for x64"},
		{"a UKI as the stub", Spec{Stub: uki, Kernel: kernel}, "has a .osrel section already"},
		{"no room", Spec{Stub: peimagetest.New(peimagetest.Options{SizeOfHeaders: 0x200}), Kernel: kernel, Initrd: []byte("x")}, "no room for more section headers"},
		{"not a kernel", Spec{Stub: stub, Kernel: []byte("not a kernel")}, "not a kernel image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build: %v, want an error with %q", err, tc.want)
			}
		})
	}
	_, err = Build(Spec{Stub: peimagetest.New(peimagetest.Options{SizeOfHeaders: 0x200}), Kernel: kernel, Initrd: []byte("x")})
	if !errors.Is(err, peimage.ErrNoRoom) {
		t.Errorf("Build with no room: %v, want ErrNoRoom", err)
	}
}

func TestMergeSBAT(t *testing.T) {
	if got, want := mergeSBAT(nil, "v1"), sbatHeader+SBAT("v1"); got != want {
		t.Errorf("no stub SBAT: %q, want %q", got, want)
	}
	stub := "sbat,1,SBAT Version,sbat,1,https://github.com/rhboot/shim/blob/main/SBAT.md\nsystemd,1,The systemd Developers,systemd,252,https://systemd.io/"
	if got, want := mergeSBAT([]byte(stub+"\x00\x00"), "v1,2"), stub+"\nramboot,1,ramboot,ramboot,v1.2,https://github.com/ramboot/ramboot\n"; got != want {
		t.Errorf("merged: %q, want %q", got, want)
	}
}

func TestInspect(t *testing.T) {
	uki, err := Build(Spec{Stub: peimagetest.New(peimagetest.Options{}), Kernel: fakeKernel("6.1.0-99-test"), Cmdline: "console=ttyS0", Version: "v1.2"})
	if err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(uki)
	if err != nil {
		t.Fatal(err)
	}
	if info.Uname != "6.1.0-99-test" || info.Cmdline != "console=ttyS0" || info.PrettyName != "ramboot v1.2" {
		t.Errorf("Inspect = %+v", info)
	}
}

// FuzzInspect: any bytes given to ramboot uki --verify are read or refused, without panics.
func FuzzInspect(f *testing.F) {
	uki, err := Build(Spec{Stub: peimagetest.New(peimagetest.Options{}), Kernel: fakeKernel("6.1.0-99-test"), Cmdline: "console=ttyS0", Version: "v1.2"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uki)
	f.Add(fakeKernel("6.1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Inspect(b)
		_, _ = ParseKernel(b)
	})
}
