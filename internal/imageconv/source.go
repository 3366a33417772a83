package imageconv

import (
	"errors"
	"fmt"
	"strings"
)

// Kind is the kind of a Source.
type Kind int

// The kinds of source ParseSource knows.
const (
	KindDir           Kind = iota + 1 // dir:PATH, a root directory
	KindTar                           // tar:PATH, a root-filesystem tar archive, any compression
	KindDockerArchive                 // docker-archive:PATH[:TAG], `docker save` or skopeo output
	KindOCI                           // oci:DIR[:TAG], an OCI image layout
	KindRegistry                      // docker://REF, an image in a registry
)

var kindPrefix = map[Kind]string{
	KindDir: "dir:", KindTar: "tar:", KindDockerArchive: "docker-archive:", KindOCI: "oci:", KindRegistry: "docker://",
}

// ErrSource means a source string is not understood.
var ErrSource = errors.New("bad source")

// Source is where an image's tree comes from, as data: ParseSource makes one, String gives it
// back.
type Source struct {
	Kind Kind
	// Path is the directory, archive or OCI layout (not for KindRegistry).
	Path string
	// Ref names the image: the tag inside a docker-archive or OCI layout (empty: the only
	// image there), or the registry reference (REGISTRY/REPO:TAG or @DIGEST).
	Ref string
}

func (s Source) String() string {
	p := kindPrefix[s.Kind]
	switch s.Kind {
	case KindRegistry:
		return p + s.Ref
	case KindDockerArchive, KindOCI:
		if s.Ref != "" {
			return p + s.Path + ":" + s.Ref
		}
	}
	return p + s.Path
}

// ParseSource reads dir:PATH, tar:PATH, docker-archive:PATH[:TAG], oci:DIR[:TAG] or
// docker://REF. As with skopeo, the first colon after an archive's or layout's path starts the
// tag, so those paths cannot contain a colon. It only parses: nothing is opened.
func ParseSource(s string) (Source, error) {
	for _, k := range []Kind{KindRegistry, KindDir, KindTar, KindDockerArchive, KindOCI} {
		rest, ok := strings.CutPrefix(s, kindPrefix[k])
		if !ok {
			continue
		}
		src := Source{Kind: k}
		switch k {
		case KindRegistry:
			src.Ref = rest
			if rest == "" || strings.ContainsAny(rest, " \t\n") {
				return Source{}, fmt.Errorf("%w: %q: want docker://REGISTRY/REPO[:TAG|@DIGEST]", ErrSource, s)
			}
			return src, nil
		case KindDockerArchive, KindOCI:
			src.Path, src.Ref, _ = strings.Cut(rest, ":")
			if strings.HasSuffix(rest, ":") {
				return Source{}, fmt.Errorf("%w: %q: empty tag after the colon", ErrSource, s)
			}
		default:
			src.Path = rest
		}
		if src.Path == "" {
			return Source{}, fmt.Errorf("%w: %q: no path after %s", ErrSource, s, kindPrefix[k])
		}
		return src, nil
	}
	return Source{}, fmt.Errorf("%w: %q: want dir:PATH, tar:PATH, docker-archive:PATH[:TAG], oci:DIR[:TAG] or docker://REF", ErrSource, s)
}
