package imageconv

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PushResult describes an image pushed to a registry.
type PushResult struct {
	*Result
	Ref    string  // the reference pushed, docker://HOST/REPO:TAG
	Digest v1.Hash // of the manifest: docker://HOST/REPO@DIGEST names exactly this image
}

// Push converts src as Convert does, into one layer compressed with comp (Zstd or Gzip), and
// pushes it as an OCI image for opts.Platform to ref (docker://HOST[:PORT]/REPO:TAG), the
// image ramboot boots with ramroot=docker://... Credentials come from opts.Keychain (default:
// docker's config.json); loopback and private registries may answer on plain HTTP.
func Push(ctx context.Context, src Source, ref string, comp Compression, opts Options) (*PushResult, error) {
	r, err := name.ParseReference(strings.TrimPrefix(ref, "docker://"))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrOutput, ref, err)
	}
	ext := map[Compression]string{Zstd: ".tar.zst", Gzip: ".tar.gz"}[comp]
	if ext == "" {
		return nil, fmt.Errorf("%w: a registry layer is zstd or gzip, not %s", ErrOutput, comp)
	}
	plat, err := v1.ParsePlatform(cmp.Or(opts.Platform, "linux/amd64"))
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w", opts.Platform, err)
	}
	tmp, err := os.MkdirTemp(opts.TempDir, "ramboot-push-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "layer"+ext)
	opts.Force = true
	res, err := Convert(ctx, src, out, opts)
	if err != nil {
		return nil, err
	}
	mt := types.OCILayer
	if comp == Zstd {
		mt = types.OCILayerZStd
	}
	layer, err := tarball.LayerFromFile(out, tarball.WithMediaType(mt))
	if err != nil {
		return nil, fmt.Errorf("reading the layer: %w", err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = plat.OS, plat.Architecture, plat.Variant
	cf.Config.Cmd = []string{"/sbin/init"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if opts.Transport != nil {
		ropts = append(ropts, remote.WithTransport(opts.Transport))
	}
	if err := remote.Write(r, img, ropts...); err != nil {
		return nil, fmt.Errorf("pushing to %s: %w", r, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &PushResult{Result: res, Ref: "docker://" + r.String(), Digest: d}, nil
}
