package imageconv

import (
	"errors"
	"testing"
)

func TestParseSource(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Source
		err  bool
	}{
		{in: "dir:/srv/root", want: Source{Kind: KindDir, Path: "/srv/root"}},
		{in: "dir:rel/a:b", want: Source{Kind: KindDir, Path: "rel/a:b"}},
		{in: "tar:rootfs.tar.xz", want: Source{Kind: KindTar, Path: "rootfs.tar.xz"}},
		{in: "docker-archive:img.tar", want: Source{Kind: KindDockerArchive, Path: "img.tar"}},
		{in: "docker-archive:img.tar:debian:12", want: Source{Kind: KindDockerArchive, Path: "img.tar", Ref: "debian:12"}},
		{in: "oci:/srv/oci", want: Source{Kind: KindOCI, Path: "/srv/oci"}},
		{in: "oci:/srv/oci:v1", want: Source{Kind: KindOCI, Path: "/srv/oci", Ref: "v1"}},
		{in: "oci:layout:docker.io/library/debian:12", want: Source{Kind: KindOCI, Path: "layout", Ref: "docker.io/library/debian:12"}},
		{in: "docker://debian:12", want: Source{Kind: KindRegistry, Ref: "debian:12"}},
		{in: "docker://localhost:5000/lab/rescue@sha256:0123", want: Source{Kind: KindRegistry, Ref: "localhost:5000/lab/rescue@sha256:0123"}},
		{in: "/srv/root", err: true},
		{in: "dir:", err: true},
		{in: "oci:", err: true},
		{in: "oci:dir:", err: true},
		{in: "oci::tag", err: true},
		{in: "docker://", err: true},
		{in: "docker:debian", err: true},
		{in: "podman://x", err: true},
	} {
		got, err := ParseSource(tt.in)
		if tt.err {
			if !errors.Is(err, ErrSource) {
				t.Errorf("ParseSource(%q) = %+v, %v; want ErrSource", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSource(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
		if got.String() != tt.in {
			t.Errorf("ParseSource(%q).String() = %q", tt.in, got.String())
		}
	}
}

// FuzzParseSource: what parses prints back to itself.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{"dir:/a", "tar:x.tar", "docker-archive:a.tar:t:1", "oci:d:v1", "docker://r/x:y", "oci::", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSource(in)
		if err != nil {
			return
		}
		again, err := ParseSource(s.String())
		if err != nil || again != s {
			t.Fatalf("%q parses to %+v, which prints as %q and parses to %+v, %v", in, s, s.String(), again, err)
		}
	})
}

func TestCompressionFor(t *testing.T) {
	for in, want := range map[string]Compression{
		"a.tar": None, "a.tar.gz": Gzip, "a.tgz": Gzip, "/x/a.tar.xz": XZ, "a.TXZ": XZ, "a.tar.zst": Zstd, "a.tzst": Zstd,
	} {
		if got, err := CompressionFor(in); err != nil || got != want {
			t.Errorf("CompressionFor(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"a.zip", "a.tar.bz2", ".tar", "a.zst", "a"} {
		if _, err := CompressionFor(in); !errors.Is(err, ErrOutput) {
			t.Errorf("CompressionFor(%q): %v, want ErrOutput", in, err)
		}
	}
}
