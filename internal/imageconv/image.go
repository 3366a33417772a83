package imageconv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Errors of container-image sources, for callers that branch on them.
var (
	// ErrNoImage means the archive, layout or registry has no image by that name (or none
	// for the platform).
	ErrNoImage = errors.New("no such image")
	// ErrMediaType means the image has a layer ramboot cannot flatten (encrypted, foreign,
	// or not a file-system layer at all).
	ErrMediaType = errors.New("unsupported layer media type")
)

// refNameAnnotations name an image in an OCI layout: the OCI standard one (skopeo, buildah,
// crane: a tag or a full reference) and containerd's (`ctr export`, buildkit).
var refNameAnnotations = []string{"org.opencontainers.image.ref.name", "io.containerd.image.name"}

// openImage finds the image a container source names, for the platform.
func openImage(ctx context.Context, src Source, plat *v1.Platform, kc authn.Keychain, rt http.RoundTripper) (v1.Image, error) {
	switch src.Kind {
	case KindDockerArchive:
		return archiveImage(src)
	case KindOCI:
		idx, err := layout.ImageIndexFromPath(src.Path)
		if err != nil {
			return nil, fmt.Errorf("reading OCI layout %s: %w", src.Path, err)
		}
		return layoutImage(idx, src, plat)
	case KindRegistry:
		ref, err := name.ParseReference(src.Ref)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSource, err)
		}
		opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithPlatform(*plat)}
		if rt != nil {
			opts = append(opts, remote.WithTransport(rt))
		}
		img, err := remote.Image(ref, opts...)
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%w: %s: %w", ErrNoImage, ref, err)
		}
		if err != nil {
			return nil, fmt.Errorf("pulling %s: %w", ref, err)
		}
		return img, nil
	}
	return nil, fmt.Errorf("%w: %v is not a container image", ErrSource, src)
}

func archiveImage(src Source) (v1.Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(src.Path) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, fmt.Errorf("not a docker archive (docker save output): %w", err)
	}
	var tags []string
	for _, d := range m {
		tags = append(tags, d.RepoTags...)
	}
	if src.Ref == "" {
		if len(m) != 1 {
			return nil, fmt.Errorf("%w: %s holds %d images: name one with docker-archive:%s:TAG (tags: %s)",
				ErrNoImage, src.Path, len(m), src.Path, strings.Join(tags, ", "))
		}
		return tarball.Image(opener, nil)
	}
	tag, err := name.NewTag(src.Ref)
	if err != nil {
		return nil, fmt.Errorf("%w: tag %q: %w", ErrSource, src.Ref, err)
	}
	if !slices.Contains(tags, tag.String()) && !slices.Contains(tags, src.Ref) {
		return nil, fmt.Errorf("%w: no image tagged %s in %s (tags: %s)", ErrNoImage, src.Ref, src.Path, strings.Join(tags, ", "))
	}
	return tarball.Image(opener, &tag)
}

// layoutImage picks the image of an OCI layout's index by tag (or the only one), then by
// platform if it is a multi-platform index.
func layoutImage(idx v1.ImageIndex, src Source, plat *v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var names []string
	var picked []v1.Descriptor
	for _, d := range im.Manifests {
		n := refName(d)
		if n != "" {
			names = append(names, n)
		}
		if src.Ref == "" || n == src.Ref || strings.HasSuffix(n, ":"+src.Ref) {
			picked = append(picked, d)
		}
	}
	list := strings.Join(names, ", ")
	if list == "" {
		list = "none"
	}
	switch {
	case len(picked) == 0:
		return nil, fmt.Errorf("%w: no image tagged %s in %s (tags: %s)", ErrNoImage, src.Ref, src.Path, list)
	case len(picked) > 1 && src.Ref == "":
		return nil, fmt.Errorf("%w: %s holds %d images: name one with oci:%s:TAG (tags: %s)", ErrNoImage, src.Path, len(picked), src.Path, list)
	}
	d := picked[0]
	switch {
	case d.MediaType.IsImage():
		return idx.Image(d.Digest)
	case d.MediaType.IsIndex():
		child, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		return platformImage(child, src, plat)
	}
	return nil, fmt.Errorf("%w: %s in %s is a %s, not an image", ErrNoImage, d.Digest, src.Path, d.MediaType)
}

func refName(d v1.Descriptor) string {
	for _, k := range refNameAnnotations {
		if v := d.Annotations[k]; v != "" {
			return v
		}
	}
	return ""
}

// platformImage picks the image for plat from a multi-platform index.
func platformImage(idx v1.ImageIndex, src Source, plat *v1.Platform) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		if d.Platform.Satisfies(*plat) && d.MediaType.IsImage() {
			return idx.Image(d.Digest)
		}
		have = append(have, d.Platform.String())
	}
	return nil, fmt.Errorf("%w: %v has no image for %s (it has %s)", ErrNoImage, src, plat, strings.Join(have, ", "))
}

// layerTypes are the layer media types that hold a file-system diff ramboot can read.
var layerTypes = []types.MediaType{
	types.DockerLayer, types.DockerUncompressedLayer,
	types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer,
	types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer,
}

// checkImage refuses images for another platform and layers that are not plain file-system
// diffs, before anything is downloaded.
func checkImage(img v1.Image, src Source, plat *v1.Platform) error {
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the image configuration: %w", err)
	}
	if cfg.OS != "" {
		have := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		if !have.Satisfies(*plat) {
			return fmt.Errorf("%w: %v is for %s, not %s (see --platform)", ErrNoImage, src, have.String(), plat)
		}
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading the image's layers: %w", err)
	}
	for i, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
		if !slices.Contains(layerTypes, mt) {
			why := ""
			switch {
			case mt == types.DockerForeignLayer:
				why = " (a foreign layer, as Windows base images have)"
			case strings.Contains(string(mt), "encrypted"):
				why = " (encrypted)"
			}
			return fmt.Errorf("%w: layer %d of %v is %s%s", ErrMediaType, i+1, src, mt, why)
		}
	}
	return nil
}

// addImage flattens the image's layers into the tree: go-containerregistry's mutate.Extract
// applies whiteouts and opaque directories and lists each path once, top layer first.
func (t *tree) addImage(ctx context.Context, img v1.Image) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	err := t.addTar(&ctxReader{ctx: ctx, r: rc})
	if err == nil {
		_, err = io.Copy(io.Discard, rc)
	}
	return err
}

// ctxReader stops a long read when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
