package loader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ramboot/ramboot/internal/cmdline"
)

// RegistryScheme starts an image URL that names an image in an OCI registry:
// docker://HOST[:PORT]/REPO:TAG or docker://HOST[:PORT]/REPO@sha256:DIGEST.
const RegistryScheme = "docker://"

// Registry configures how Load reaches OCI registries (docker:// URLs). The zero value talks
// to the registry each URL names, anonymously, over HTTPS (plain HTTP only where
// go-containerregistry allows it: loopback and private addresses, after HTTPS failed).
type Registry struct {
	// Mirrors are registries ("http://cache:5000", "https://mirror.example", "HOST:PORT") tried
	// in order before the registry a URL names, as containerd's hosts.toml mirrors are: one
	// that fails is skipped with a log line; one that serves a blob other than the digest
	// asks for (or more bytes than the manifest says: a blob is read only up to its size) is
	// dropped and the load starts over without it. A mirror given as http:// is spoken to
	// over plain HTTP.
	Mirrors []string
	// Insecure are registries (HOST:PORT) spoken to over plain HTTP (containerd's plain-http).
	Insecure []string
	// AuthFile is a docker config.json whose "auths" hold credentials per registry
	// (user:password in "auth", or "username"/"password", or an identity token). Without
	// one, or for a registry it does not name, requests are anonymous (a registry's bearer
	// token for anonymous pulls is fetched as needed).
	AuthFile string
}

// The errors a registry load fails with, besides the loader's (ErrChecksum for a blob or
// manifest whose digest is not the one asked for, ErrRetriesExhausted wrapping an *HTTPError
// 429 for a registry that kept throttling).
var (
	// ErrNoManifest: the registry has no image of that tag or digest.
	ErrNoManifest = errors.New("no such image in the registry")
	// ErrUnauthorized: the registry refused the credentials (or their absence).
	ErrUnauthorized = errors.New("registry refused access")
	// ErrPlatform: the image exists, but not for the platform of this machine.
	ErrPlatform = errors.New("no image for this platform")
	// ErrMediaType: a manifest or layer of a kind ramboot cannot boot (an artifact that is
	// not a container image, a schema 1 manifest, an encrypted or foreign layer format).
	ErrMediaType = errors.New("unsupported media type")
)

// IsRegistry reports whether u names an image in an OCI registry (docker://).
func IsRegistry(u string) bool {
	return strings.HasPrefix(u, RegistryScheme)
}

// ParseRegistryRef parses docker://HOST[:PORT]/REPO[:TAG|@sha256:DIGEST] (the scheme may be
// left out); insecure lists registries (HOST:PORT) to speak plain HTTP to.
func ParseRegistryRef(u string, insecure []string) (name.Reference, error) {
	s := strings.TrimPrefix(u, RegistryScheme)
	if s == "" {
		return nil, fmt.Errorf("invalid registry reference %q: want docker://HOST[:PORT]/REPO:TAG or @sha256:DIGEST", u)
	}
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, fmt.Errorf("invalid registry reference %q: %w", u, err)
	}
	if slices.Contains(insecure, ref.Context().RegistryStr()) {
		if ref, err = name.ParseReference(s, name.Insecure); err != nil {
			return nil, fmt.Errorf("invalid registry reference %q: %w", u, err)
		}
	}
	return ref, nil
}

// parseMirror reads a mirror (cmdline.ParseRegistryMirror's syntax): plain HTTP for http://
// and for hosts named insecure, HTTPS otherwise.
func parseMirror(m string, insecure []string) (name.Registry, error) {
	host, plain, err := cmdline.ParseRegistryMirror(m)
	if err != nil {
		return name.Registry{}, fmt.Errorf("invalid %w", err)
	}
	opts := []name.Option{name.StrictValidation}
	if plain || slices.Contains(insecure, host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return name.Registry{}, fmt.Errorf("invalid registry mirror %q: %w", m, err)
	}
	return reg, nil
}

// registrySource is one place an image's manifests and blobs may come from.
type registrySource struct {
	reg    name.Registry
	repo   string
	mirror bool
}

func (s registrySource) String() string { return s.reg.RegistryStr() + "/" + s.repo }

// url is the API URL of a manifest or blob; transport's scheme rewrite turns it into the
// scheme the registry answered on.
func (s registrySource) url(kind, ref string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", s.reg.Scheme(), s.reg.RegistryStr(), s.repo, kind, ref)
}

// registryPlan is what a registry load is about: the reference and where to get it.
type registryPlan struct {
	ref     name.Reference
	sources []registrySource // mirrors first, then the origins
}

// planRegistry reads urls (docker:// references, the first one leading; further docker://
// URLs are other registries holding the same image, other URLs are mirrors) and the
// configured mirrors.
func planRegistry(urls []string, cfg Registry) (*registryPlan, error) {
	p := &registryPlan{}
	var origins []registrySource
	mirrors := slices.Clone(cfg.Mirrors)
	for i, u := range urls {
		if !IsRegistry(u) {
			if i == 0 {
				return nil, fmt.Errorf("invalid registry reference %q", u)
			}
			mirrors = append(mirrors, u)
			continue
		}
		ref, err := ParseRegistryRef(u, cfg.Insecure)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			p.ref = ref
		}
		origins = append(origins, registrySource{reg: ref.Context().Registry, repo: ref.Context().RepositoryStr()})
	}
	for _, m := range mirrors {
		reg, err := parseMirror(m, cfg.Insecure)
		if err != nil {
			return nil, err
		}
		p.sources = append(p.sources, registrySource{reg: reg, repo: p.ref.Context().RepositoryStr(), mirror: true})
	}
	for _, o := range origins {
		if !slices.ContainsFunc(p.sources, func(s registrySource) bool { return s.String() == o.String() }) {
			p.sources = append(p.sources, o)
		}
	}
	return p, nil
}

// registryTransport speaks to the registries of a load: a request to one of them goes through
// go-containerregistry's transport for that registry and repository (the ping, basic
// credentials or a bearer token, the scheme the registry answered on), made at the first
// request and made again after a failure; any other request (a blob redirected to object
// storage) goes out as it is. Manifest requests get the Accept header of the manifest kinds
// ramboot reads.
type registryTransport struct {
	base  http.RoundTripper
	regs  map[string]name.Registry // by host
	creds authn.Keychain

	mu  sync.Mutex
	rts map[string]http.RoundTripper // by host/repo
}

// manifestAccept are the manifest kinds a load reads: indexes, to pick this machine's
// platform, and image manifests.
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex), string(types.DockerManifestList),
	string(types.OCIManifestSchema1), string(types.DockerManifestSchema2),
}, ", ")

func (t *registryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	reg, ok := t.regs[req.URL.Host]
	rest, api := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok || !api {
		return t.base.RoundTrip(req)
	}
	repo := rest
	for _, kind := range []string{"/manifests/", "/blobs/"} {
		if i := strings.LastIndex(rest, kind); i > 0 {
			repo = rest[:i]
			if kind == "/manifests/" {
				req = req.Clone(req.Context())
				req.Header.Set("Accept", manifestAccept)
			}
		}
	}
	rt, busy, err := t.transport(req.Context(), reg, repo)
	if busy != nil {
		return busy, nil
	}
	if err != nil {
		return nil, err
	}
	return rt.RoundTrip(req)
}

// ping asks the registry's /v2/ on the scheme it is named with, before go-containerregistry's
// own ping: a registry that throttles (429) or fails (5xx) gives that answer, Retry-After
// included, to the request, whose stream retries it as the loader does any other. Anything
// else (an answer, or no answer on that scheme) is left to go-containerregistry's ping.
func (t *registryTransport) ping(ctx context.Context, reg name.Registry) *http.Response {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return nil
	}
	req.Header.Set("User-Agent", "ramboot")
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500 {
		return resp
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return nil
}

// transport returns the authenticated transport for reg and repo. A failure to make one (the
// registry down, a refused token) is the request's failure; the next request tries again. A
// registry that throttles or fails gives its answer (busy) instead.
func (t *registryTransport) transport(ctx context.Context, reg name.Registry, repo string) (rt http.RoundTripper, busy *http.Response, err error) {
	key := reg.RegistryStr() + "/" + repo
	t.mu.Lock()
	rt, ok := t.rts[key]
	t.mu.Unlock()
	if ok {
		return rt, nil, nil
	}
	if busy := t.ping(ctx, reg); busy != nil {
		return nil, busy, nil
	}
	auth, err := t.creds.Resolve(reg)
	if err != nil {
		return nil, nil, &permanentError{fmt.Errorf("credentials for %s: %w", reg.RegistryStr(), err)}
	}
	scope := reg.Repo(repo).Scope(transport.PullScope)
	rt, err = transport.NewWithContext(ctx, reg, auth, t.base, []string{scope})
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
			return nil, nil, &permanentError{fmt.Errorf("%w: %s: %w", ErrUnauthorized, reg.RegistryStr(), err)}
		}
		if !setupTransient(err) {
			return nil, nil, &permanentError{fmt.Errorf("authenticating to %s: %w", reg.RegistryStr(), err)}
		}
		return nil, nil, err
	}
	t.mu.Lock()
	t.rts[key] = rt
	t.mu.Unlock()
	return rt, nil, nil
}

// setupTransient reports whether a failure to set up a registry's transport (its ping, its
// bearer token) may mend on another attempt: no answer (a refused, reset or timed-out
// connection, a failed name lookup, a cut answer), or an answer that says so (5xx, 429, 408).
// Anything else is go-containerregistry refusing for good what the registry answered: a
// challenge without a realm, a realm it does not allow (not https, or http for a registry
// spoken to over HTTPS, or a private address other than the registry's), a redirect of the
// token request it refuses, a token server's 4xx, a token it cannot read. Retrying those only
// spent the whole retry budget.
func setupTransient(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode >= 500 || te.StatusCode == http.StatusTooManyRequests || te.StatusCode == http.StatusRequestTimeout
	}
	var op *net.OpError
	var dns *net.DNSError
	var errno syscall.Errno
	var ne net.Error // *url.Error is one too: only its Timeout is asked, which is its cause's
	return errors.As(err, &op) || errors.As(err, &dns) || errors.As(err, &errno) ||
		(errors.As(err, &ne) && ne.Timeout()) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// configKeychain finds credentials in a docker config.json's "auths" (no credential helpers:
// /init has none to run).
type configKeychain struct{ cf *configfile.ConfigFile }

// loadKeychain reads a docker config.json; "" gives anonymous access everywhere.
func loadKeychain(file string) (authn.Keychain, error) {
	if file == "" {
		return authn.NewMultiKeychain(), nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("registry credentials: %w", err)
	}
	defer f.Close()
	cf := configfile.New(file)
	if err := cf.LoadFromReader(f); err != nil {
		return nil, fmt.Errorf("registry credentials %s: %w", file, err)
	}
	return configKeychain{cf}, nil
}

func (k configKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := r.RegistryStr()
	keys := []string{host, "https://" + host, "http://" + host, "https://" + host + "/v1/", "https://" + host + "/v2/"}
	if host == name.DefaultRegistry {
		keys = append(keys, "https://index.docker.io/v1/", "docker.io")
	}
	for _, key := range keys {
		ac, ok := k.cf.AuthConfigs[key]
		if !ok {
			continue
		}
		return authn.FromConfig(authn.AuthConfig{
			Username: ac.Username, Password: ac.Password, Auth: ac.Auth,
			IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
		}), nil
	}
	return authn.Anonymous, nil
}

// maxManifest bounds what is read of a manifest or an image config.
const maxManifest = 4 << 20

// manifestDoc is the fields of an index, a manifest and an image config that a load reads.
type manifestDoc struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     types.MediaType `json:"mediaType"`
	Manifests     []v1.Descriptor `json:"manifests"`
	Config        v1.Descriptor   `json:"config"`
	Layers        []v1.Descriptor `json:"layers"`
}

// imageConfig is the part of an image's config a load checks.
type imageConfig struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant"`
}

// registryImage is a resolved image: its manifest and where it came from.
type registryImage struct {
	digest   v1.Hash // the manifest the reference resolved to (an index or an image)
	manifest v1.Hash // the image manifest for this platform
	layers   []v1.Descriptor
	from     registrySource
}

// fetchDoc reads a manifest or config from the sources, by tag or digest; a document fetched
// by digest is verified, and is read only up to size, its descriptor's (0: by tag, unknown;
// at most maxManifest either way). It returns the bytes and the source they came from. Sources
// that fail, or serve a document other than the one asked for, are left out of live, with a
// log line.
func (r *registryRun) fetchDoc(ctx context.Context, kind, ref string, want *v1.Hash, size int64) ([]byte, registrySource, error) {
	limit := int64(maxManifest)
	if size > 0 {
		limit = min(size, limit)
	}
	live := r.sources()
	for len(live) > 0 {
		urls := make([]string, len(live))
		for i, s := range live {
			urls[i] = s.url(kind, ref)
		}
		s, err := r.docFetcher.Open(ctx, urls...)
		if err != nil {
			return nil, registrySource{}, err
		}
		b, err := io.ReadAll(io.LimitReader(s, limit+1))
		cur := s.cur
		failed := slices.Clone(s.lastErr)
		s.Close()
		// Mirrors that failed on the way are skipped from now on.
		for i, e := range failed {
			if e != nil && live[i].mirror && (err != nil || i != cur) {
				r.dropMirror(live[i], e)
			}
		}
		if err != nil {
			return nil, registrySource{}, r.explain(kind, ref, err)
		}
		src := live[min(cur, len(live)-1)]
		var bad error
		switch {
		case int64(len(b)) > limit && size > 0 && size <= maxManifest:
			bad = fmt.Errorf("%s %s at %s: %w: more than the %d bytes its descriptor says", kind, ref, src, ErrChecksum, size)
		case int64(len(b)) > limit:
			bad = fmt.Errorf("%s %s at %s: larger than %s", kind, ref, src, HumanBytes(maxManifest))
		case want != nil:
			if got := (v1.Hash{Algorithm: "sha256", Hex: sha256Hex(b)}); got != *want {
				bad = fmt.Errorf("%s %s at %s: %w", kind, ref, src, &ChecksumError{Want: want.Hex, Got: got.Hex})
			}
		}
		if bad != nil {
			if !src.mirror {
				return nil, src, bad
			}
			r.dropMirror(src, bad)
			live = r.sources()
			continue
		}
		return b, src, nil
	}
	return nil, registrySource{}, errors.New("no registry left to try")
}

// explain turns the failure of a manifest or config request into one of the registry errors.
func (r *registryRun) explain(kind, ref string, err error) error {
	var he *HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			what := "tag"
			if strings.Contains(ref, ":") {
				what = "digest"
			}
			if kind == "blobs" {
				what = "config blob"
			}
			return fmt.Errorf("%w: %s %s of %s: %w", ErrNoManifest, what, ref, r.plan.ref.Context(), err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %s: %w (credentials: ramboot initramfs --registry-auth)", ErrUnauthorized, r.plan.ref.Context(), err)
		case http.StatusTooManyRequests:
			return fmt.Errorf("rate limited by %s: %w", he.URL, err)
		}
	}
	return err
}

func (r *registryRun) dropMirror(s registrySource, why error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.live, func(l registrySource) bool { return l.String() == s.String() })
	if i < 0 {
		return
	}
	r.logf("mirror %s: %v: skipping it", s.reg.RegistryStr(), why)
	r.live = slices.Delete(slices.Clone(r.live), i, i+1)
}

// resolve reads the reference's manifest (a tag is resolved once, here, and the digest
// logged) and picks the image for this machine's platform from an index.
func (r *registryRun) resolve(ctx context.Context, pin string) (*registryImage, error) {
	ref := r.plan.ref
	var want *v1.Hash
	if d, ok := ref.(name.Digest); ok {
		h, err := v1.NewHash(d.DigestStr())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		want = &h
	}
	b, src, err := r.fetchDoc(ctx, "manifests", ref.Identifier(), want, 0)
	if err != nil {
		return nil, err
	}
	img := &registryImage{digest: v1.Hash{Algorithm: "sha256", Hex: sha256Hex(b)}, from: src}
	if want == nil {
		r.logf("%s is %s (from %s)", ref, img.digest, src)
	}
	if pin != "" && img.digest.Hex != pin {
		return nil, fmt.Errorf("%s: %w", ref, &ChecksumError{Want: pin, Got: img.digest.Hex})
	}
	doc, err := parseDoc(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	img.manifest = img.digest
	if doc.isIndex() {
		d, err := pickPlatform(doc.Manifests)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		if d.Size <= 0 {
			return nil, fmt.Errorf("%s: %w: image manifest %s: size %d in the index", ref, ErrFormat, d.Digest, d.Size)
		}
		if b, src, err = r.fetchDoc(ctx, "manifests", d.Digest.String(), &d.Digest, d.Size); err != nil {
			return nil, err
		}
		img.manifest, img.from = d.Digest, src
		if doc, err = parseDoc(b); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		if doc.isIndex() {
			return nil, fmt.Errorf("%s: %w: an index inside an index", ref, ErrMediaType)
		}
		r.logf("%s: %s/%s image %s", ref, runtime.GOOS, runtime.GOARCH, d.Digest)
	}
	switch doc.Config.MediaType {
	case types.OCIConfigJSON, types.DockerConfigJSON:
	default:
		return nil, fmt.Errorf("%s: %w: config %q: not a container image", ref, ErrMediaType, doc.Config.MediaType)
	}
	if doc.Config.Size <= 0 {
		return nil, fmt.Errorf("%s: %w: config %s: size %d in the manifest", ref, ErrFormat, doc.Config.Digest, doc.Config.Size)
	}
	cb, _, err := r.fetchDoc(ctx, "blobs", doc.Config.Digest.String(), &doc.Config.Digest, doc.Config.Size)
	if err != nil {
		return nil, err
	}
	var cfg imageConfig
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return nil, fmt.Errorf("%s: image config: %w", ref, err)
	}
	if cfg.OS != runtime.GOOS || cfg.Architecture != runtime.GOARCH {
		return nil, fmt.Errorf("%s: %w: the image is for %s/%s, this machine is %s/%s", ref, ErrPlatform, cfg.OS, cfg.Architecture, runtime.GOOS, runtime.GOARCH)
	}
	for i, l := range doc.Layers {
		if _, err := layerCompression(l.MediaType); err != nil {
			return nil, fmt.Errorf("%s: layer %d (%s): %w", ref, i+1, l.Digest, err)
		}
		if l.Digest.Algorithm != "sha256" {
			return nil, fmt.Errorf("%s: layer %d: %w: digest algorithm %s", ref, i+1, ErrMediaType, l.Digest.Algorithm)
		}
		// The size bounds what is read of the blob: a layer without one is refused.
		if l.Size <= 0 {
			return nil, fmt.Errorf("%s: layer %d (%s): %w: size %d in the manifest", ref, i+1, l.Digest, ErrFormat, l.Size)
		}
	}
	img.layers = doc.Layers
	return img, nil
}

func (d *manifestDoc) isIndex() bool {
	switch d.MediaType {
	case types.OCIImageIndex, types.DockerManifestList:
		return true
	case "":
		return d.Manifests != nil && d.Layers == nil
	}
	return false
}

// parseDoc reads a manifest or an index and refuses the kinds a load cannot boot.
func parseDoc(b []byte) (*manifestDoc, error) {
	var d manifestDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	if d.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: manifest schema version %d (only 2)", ErrMediaType, d.SchemaVersion)
	}
	switch d.MediaType {
	case types.OCIImageIndex, types.DockerManifestList, types.OCIManifestSchema1, types.DockerManifestSchema2, "":
	default:
		return nil, fmt.Errorf("%w: manifest %q", ErrMediaType, d.MediaType)
	}
	return &d, nil
}

// pickPlatform chooses the image for this machine (linux, runtime.GOARCH) from an index.
func pickPlatform(ds []v1.Descriptor) (v1.Descriptor, error) {
	var have []string
	for _, d := range ds {
		if d.Platform == nil {
			continue
		}
		p := d.Platform
		if p.OS == runtime.GOOS && p.Architecture == runtime.GOARCH {
			return d, nil
		}
		if p.OS != "unknown" { // attestations
			have = append(have, p.String())
		}
	}
	if len(have) == 0 {
		have = []string{"none"}
	}
	return v1.Descriptor{}, fmt.Errorf("%w: no %s/%s image in the index (it has %s)", ErrPlatform, runtime.GOOS, runtime.GOARCH, strings.Join(have, ", "))
}

// layerCompression checks a layer's media type; the data's own magic bytes decide how it is
// read (as for images), the media type only whether it is a file-system layer at all.
func layerCompression(mt types.MediaType) (string, error) {
	switch mt {
	case types.OCILayer, types.OCIUncompressedLayer, types.DockerLayer, types.DockerForeignLayer,
		types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer, types.DockerUncompressedLayer:
		return "", nil
	case types.OCILayerZStd, "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return "zstd", nil
	}
	return "", fmt.Errorf("%w: %q", ErrMediaType, mt)
}
