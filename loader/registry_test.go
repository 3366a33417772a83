package loader

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/ramboot/ramboot/bootmenu"
	"github.com/ramboot/ramboot/internal/cmdline"
	"golang.org/x/sys/unix"
)

// testRegistry is go-containerregistry's in-memory registry on loopback, behind a handler
// that tests can make misbehave.
type testRegistry struct {
	srv   *httptest.Server
	reg   http.Handler // the registry, without faults
	host  string
	mu    sync.Mutex
	fault func(w http.ResponseWriter, r *http.Request) bool // true: handled
	blobs atomic.Int64                                      // blob GETs served
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr.reg = reg
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		f := tr.fault
		tr.mu.Unlock()
		if f != nil && f(w, r) {
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			tr.blobs.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

func (tr *testRegistry) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	tr.fault = f
	tr.mu.Unlock()
}

// layerOf is a layer of tar entries, compressed as comp says ("gzip", "zstd", "").
func layerOf(t *testing.T, comp string, es []entry) v1.Layer {
	b := tarOf(t, es)
	switch comp {
	case "gzip":
		return static.NewLayer(gzipOf(t, b), types.OCILayer)
	case "zstd":
		return static.NewLayer(zstdOf(t, b), types.OCILayerZStd)
	}
	return static.NewLayer(b, types.OCIUncompressedLayer)
}

// pushImage pushes an OCI image of layers for os/arch and returns its docker:// URL.
func pushImage(t *testing.T, host, repoTag, osName, arch string, layers ...v1.Layer) string {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = osName, arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	return RegistryScheme + host + "/" + repoTag
}

func dirEntry(n string, mode int64) entry {
	return entry{hdr: tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: mode, ModTime: epoch}}
}

func fileEntry(n, data string) entry {
	return entry{hdr: tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: epoch}, data: []byte(data)}
}

// layeredImage has whiteouts, an opaque directory, a directory replaced by a file, and one
// layer of each compression.
func layeredImage(t *testing.T) []v1.Layer {
	return []v1.Layer{
		layerOf(t, "gzip", []entry{
			dirEntry("etc/", 0o755), fileEntry("etc/keep", "keep"), fileEntry("etc/gone", "gone"),
			dirEntry("var/", 0o755), dirEntry("var/lib/", 0o755), fileEntry("var/lib/old", "old"),
			dirEntry("var/lib/sub/", 0o700), fileEntry("var/lib/sub/deep", "deep"),
			dirEntry("opt/", 0o755), dirEntry("opt/tree/", 0o755), fileEntry("opt/tree/a", "a"),
			{hdr: tar.Header{Name: "etc/link", Typeflag: tar.TypeSymlink, Linkname: "keep", ModTime: epoch}},
		}),
		layerOf(t, "zstd", []entry{
			dirEntry("etc/", 0o755), fileEntry("etc/.wh.gone", ""), fileEntry("etc/new", "new"),
			dirEntry("var/lib/", 0o755), fileEntry("var/lib/.wh..wh..opq", ""), fileEntry("var/lib/fresh", "fresh"),
			fileEntry("opt/tree", "now a file"),
		}),
		layerOf(t, "", []entry{
			fileEntry("etc/.wh.link", ""), fileEntry("etc/keep", "kept, changed"),
		}),
	}
}

func checkLayered(t *testing.T, dir string) {
	t.Helper()
	want := map[string]string{
		"etc/keep": "kept, changed", "etc/new": "new", "var/lib/fresh": "fresh", "opt/tree": "now a file",
	}
	got := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = string(b)
		case fi.IsDir():
		default:
			got[rel] = fi.Mode().String()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tree:\n got %v\nwant %v", got, want)
	}
}

func loadLog(t *testing.T) (*[]string, func(string, ...any)) {
	var mu sync.Mutex
	var lines []string
	return &lines, func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, fmt.Sprintf(f, a...))
		t.Logf(f, a...)
	}
}

func quickFetcher(logf func(string, ...any)) *Fetcher {
	return &Fetcher{Backoff: 10e6, MaxBackoff: 50e6, RetryFor: 3e9, Logf: logf}
}

func TestRegistryLayers(t *testing.T) {
	tr := newTestRegistry(t)
	u := pushImage(t, tr.host, "lab/layered:v1", "linux", runtime.GOARCH, layeredImage(t)...)
	dir := filepath.Join(t.TempDir(), "root")
	lines, logf := loadLog(t)
	res, err := Load(context.Background(), dir, []string{u}, Options{Logf: logf, Fetcher: quickFetcher(logf)})
	if err != nil {
		t.Fatal(err)
	}
	checkLayered(t, dir)
	if !res.Verified || !strings.Contains(res.URL, "@sha256:"+res.SHA256) {
		t.Errorf("result %+v: want the verified digest", res)
	}
	if !strings.Contains(strings.Join(*lines, "\n"), "lab/layered:v1 is sha256:"+res.SHA256) {
		t.Errorf("the tag's digest is not logged: %q", *lines)
	}
	// By digest, pinned with SHA256: the same tree.
	dir2 := filepath.Join(t.TempDir(), "root")
	byDigest := RegistryScheme + tr.host + "/lab/layered@sha256:" + res.SHA256
	if _, err := Load(context.Background(), dir2, []string{byDigest}, Options{SHA256: res.SHA256, Fetcher: quickFetcher(t.Logf)}); err != nil {
		t.Fatal(err)
	}
	checkLayered(t, dir2)
}

func TestRegistryErrors(t *testing.T) {
	tr := newTestRegistry(t)
	u := pushImage(t, tr.host, "lab/arm:v1", "linux", "s390x", layerOf(t, "gzip", []entry{fileEntry("a", "a")}))
	ok := pushImage(t, tr.host, "lab/ok:v1", "linux", runtime.GOARCH, layerOf(t, "gzip", []entry{fileEntry("a", "a")}))
	bz := pushImage(t, tr.host, "lab/bzip:v1", "linux", runtime.GOARCH, static.NewLayer([]byte("BZh9"), "application/vnd.oci.image.layer.v1.tar+bzip2"))
	zero := strings.Repeat("0", 64)
	for _, c := range []struct {
		name, url, sha string
		want           error
		msg            string
	}{
		{name: "unknown tag", url: RegistryScheme + tr.host + "/lab/ok:nope", want: ErrNoManifest, msg: "tag nope"},
		{name: "unknown repo digest", url: RegistryScheme + tr.host + "/lab/ok@sha256:" + zero, want: ErrNoManifest, msg: "digest"},
		{name: "other platform", url: u, want: ErrPlatform, msg: "linux/s390x"},
		{name: "pinned digest differs", url: ok, sha: zero, want: ErrChecksum},
		{name: "unsupported layer", url: bz, want: ErrMediaType, msg: "tar+bzip2"},
		{name: "bad reference", url: "docker://UPPER/x:y", msg: "invalid registry reference"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "root")
			_, err := Load(context.Background(), dir, []string{c.url}, Options{SHA256: c.sha, Fetcher: quickFetcher(t.Logf)})
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v (%q)", err, c.want, c.msg)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error is not one line: %q", err)
			}
			if _, err := os.Stat(dir); err == nil {
				assertEmpty(t, dir)
			}
		})
	}
}

// TestRegistryFaults: a cut blob resumes with Range, a 429 is waited out, a wrong blob from
// the origin fails, from a mirror it is skipped.
func TestRegistryFaults(t *testing.T) {
	tr := newTestRegistry(t)
	u := pushImage(t, tr.host, "lab/layered:v1", "linux", runtime.GOARCH, layeredImage(t)...)
	var cuts, throttled atomic.Int64
	t.Run("cut", func(t *testing.T) {
		tr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/blobs/") || r.Method != http.MethodGet {
				return false
			}
			rec := httptest.NewRecorder()
			whole := r.Clone(r.Context())
			whole.Header.Del("Range")
			tr.reg.ServeHTTP(rec, whole)
			b := rec.Body.Bytes()
			w.Header().Set("ETag", `"`+path.Base(r.URL.Path)+`"`)
			if r.Header.Get("Range") != "" || cuts.Add(1) > 3 {
				http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
				return true
			}
			// Half the blob, then the connection ends.
			w.Header().Set("Content-Length", fmt.Sprint(len(b)))
			w.WriteHeader(200)
			w.Write(b[:len(b)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		})
		lines, logf := loadLog(t)
		dir := filepath.Join(t.TempDir(), "root")
		if _, err := Load(context.Background(), dir, []string{u}, Options{Logf: logf, Fetcher: quickFetcher(logf)}); err != nil {
			t.Fatal(err)
		}
		checkLayered(t, dir)
		if !strings.Contains(strings.Join(*lines, "\n"), "resumed at byte") {
			t.Errorf("no resume logged: %q", *lines)
		}
	})
	t.Run("429", func(t *testing.T) {
		tr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if throttled.Add(1) > 2 {
				return false
			}
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS"}]}`, http.StatusTooManyRequests)
			return true
		})
		lines, logf := loadLog(t)
		dir := filepath.Join(t.TempDir(), "root")
		if _, err := Load(context.Background(), dir, []string{u}, Options{Logf: logf, Fetcher: quickFetcher(logf)}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(*lines, "\n"), "429") {
			t.Errorf("no 429 logged: %q", *lines)
		}
		// Always throttled: one line naming it, nothing left behind.
		tr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return true
		})
		dir = filepath.Join(t.TempDir(), "root")
		f := quickFetcher(t.Logf)
		f.RetryFor = 1e9
		_, err := Load(context.Background(), dir, []string{u}, Options{Fetcher: f})
		if err == nil || !strings.Contains(err.Error(), "429") || strings.Contains(err.Error(), "\n") {
			t.Errorf("always 429: got %v", err)
		}
		assertEmpty(t, dir)
	})
	t.Run("wrong blob", func(t *testing.T) {
		mirror := newTestRegistry(t)
		pushImage(t, mirror.host, "lab/layered:v1", "linux", runtime.GOARCH, layeredImage(t)...)
		// evil serves blobs of the same size and other content.
		evil := func(reg http.Handler) func(w http.ResponseWriter, r *http.Request) bool {
			return func(w http.ResponseWriter, r *http.Request) bool {
				if !strings.Contains(r.URL.Path, "/blobs/") {
					return false
				}
				rec := httptest.NewRecorder()
				reg.ServeHTTP(rec, r)
				b := rec.Body.Bytes()
				if len(b) > 100 {
					b[len(b)-20] ^= 0xff
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(b)))
				w.WriteHeader(rec.Code)
				w.Write(b)
				return true
			}
		}
		tr.setFault(nil)
		mirror.setFault(evil(mirror.reg))
		lines, logf := loadLog(t)
		dir := filepath.Join(t.TempDir(), "root")
		opts := Options{Logf: logf, Fetcher: quickFetcher(logf), Registry: Registry{Mirrors: []string{"http://" + mirror.host}}}
		if _, err := Load(context.Background(), dir, []string{u}, opts); err != nil {
			t.Fatal(err)
		}
		checkLayered(t, dir)
		log := strings.Join(*lines, "\n")
		if !strings.Contains(log, "mirror "+mirror.host) || !strings.Contains(log, "checksum mismatch") {
			t.Errorf("the bad mirror is not named: %q", log)
		}
		// The origin itself serving a wrong blob: a checksum error, an empty directory.
		tr.setFault(evil(tr.reg))
		dir = filepath.Join(t.TempDir(), "root")
		_, err := Load(context.Background(), dir, []string{u}, Options{Fetcher: quickFetcher(t.Logf)})
		if !errors.Is(err, ErrChecksum) {
			t.Errorf("wrong blob from the origin: got %v, want ErrChecksum", err)
		}
		assertEmpty(t, dir)
	})
}

// TestRegistryAuth: basic credentials from a docker config.json.
func TestRegistryAuth(t *testing.T) {
	tr := newTestRegistry(t)
	u := pushImage(t, tr.host, "lab/layered:v1", "linux", runtime.GOARCH, layeredImage(t)...)
	tr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if user, pw, ok := r.BasicAuth(); ok && user == "fleet" && pw == "s3cret" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="lab"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		return true
	})
	dir := filepath.Join(t.TempDir(), "root")
	_, err := Load(context.Background(), dir, []string{u}, Options{Fetcher: quickFetcher(t.Logf)})
	if !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("anonymous: got %v, want ErrUnauthorized", err)
	}
	auth := filepath.Join(t.TempDir(), "config.json")
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, tr.host, base64.StdEncoding.EncodeToString([]byte("fleet:s3cret")))
	if err := os.WriteFile(auth, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(context.Background(), dir, []string{u}, Options{Fetcher: quickFetcher(t.Logf), Registry: Registry{AuthFile: auth}}); err != nil {
		t.Fatal(err)
	}
	checkLayered(t, dir)
}

func TestParseMirror(t *testing.T) {
	for in, want := range map[string]string{
		"http://cache:5000": "http", "https://mirror.example/v2/": "https", "mirror.example": "https",
		"10.0.0.1:5000": "http", "ftp://x": "", "http://x/path": "", "http://": "",
	} {
		reg, err := parseMirror(in, nil)
		if want == "" {
			if err == nil {
				t.Errorf("%s: no error", in)
			}
			continue
		}
		if err != nil || reg.Scheme() != want {
			t.Errorf("%s: got %v %v, want scheme %s", in, reg.Scheme(), err, want)
		}
	}
}

// FuzzRegistryManifest: whatever a registry answers, reading it as a manifest or index and
// picking a platform neither panics nor accepts what is not schema 2.
func FuzzRegistryManifest(f *testing.F) {
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}`))
	f.Add([]byte(`{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json"},"layers":[]}`))
	f.Add([]byte(`{"schemaVersion":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDoc(b)
		if err != nil {
			return
		}
		if d.SchemaVersion != 2 {
			t.Fatalf("schema %d accepted", d.SchemaVersion)
		}
		if d.isIndex() {
			pickPlatform(d.Manifests)
		}
		for _, l := range d.Layers {
			layerCompression(l.MediaType)
		}
	})
}

// TestRegistryCancel: ctx ending while a blob trickles ends the load promptly, the directory
// empty.
func TestRegistryCancel(t *testing.T) {
	tr := newTestRegistry(t)
	u := pushImage(t, tr.host, "lab/layered:v1", "linux", runtime.GOARCH, layeredImage(t)...)
	tr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.Contains(r.URL.Path, "/blobs/") || r.Method != http.MethodGet {
			return false
		}
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(200)
		w.Write([]byte{0x1f})
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return true
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	dir := filepath.Join(t.TempDir(), "root")
	start := time.Now()
	_, err := Load(ctx, dir, []string{u}, Options{Fetcher: quickFetcher(t.Logf)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v after the cancel", d)
	}
	assertEmpty(t, dir)
}

// TestRegistryIndex: from a multi-platform index the image of this machine's platform is
// taken; an index without it names the platforms it has.
func TestRegistryIndex(t *testing.T) {
	tr := newTestRegistry(t)
	image := func(arch string, layers ...v1.Layer) v1.Image {
		u := pushImage(t, tr.host, "lab/single:"+arch, "linux", arch, layers...)
		ref, _ := name.ParseReference(strings.TrimPrefix(u, RegistryScheme))
		img, err := remote.Image(ref)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	other := image("s390x", layerOf(t, "gzip", []entry{fileEntry("wrong", "s390x")}))
	arm := image("arm64", layerOf(t, "gzip", []entry{fileEntry("wrong", "arm64")}))
	native := image(runtime.GOARCH, layeredImage(t)...)
	push := func(tag string, imgs map[string]v1.Image) string {
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for arch, img := range imgs {
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
				MediaType: types.OCIManifestSchema1, Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		}
		ref, _ := name.ParseReference(tr.host + "/lab/multi:" + tag)
		if err := remote.WriteIndex(ref, idx); err != nil {
			t.Fatal(err)
		}
		return RegistryScheme + tr.host + "/lab/multi:" + tag
	}
	u := push("all", map[string]v1.Image{"s390x": other, runtime.GOARCH: native, "arm64": arm})
	lines, logf := loadLog(t)
	dir := filepath.Join(t.TempDir(), "root")
	if _, err := Load(context.Background(), dir, []string{u}, Options{Logf: logf, Fetcher: quickFetcher(logf)}); err != nil {
		t.Fatal(err)
	}
	checkLayered(t, dir)
	d, _ := native.Digest()
	if !strings.Contains(strings.Join(*lines, "\n"), "linux/"+runtime.GOARCH+" image "+d.String()) {
		t.Errorf("the platform's image is not logged: %q", *lines)
	}
	u = push("foreign", map[string]v1.Image{"s390x": other, "arm64": arm})
	dir = filepath.Join(t.TempDir(), "root")
	_, err := Load(context.Background(), dir, []string{u}, Options{Fetcher: quickFetcher(t.Logf)})
	if !errors.Is(err, ErrPlatform) || !strings.Contains(err.Error(), "linux/s390x") || !strings.Contains(err.Error(), "linux/arm64") {
		t.Errorf("got %v, want ErrPlatform naming the platforms", err)
	}
	assertEmpty(t, dir)
}

// TestMirrorSyntaxAgrees: ramboot.registry-mirror=, a menu's mirrors: and the loader accept
// and refuse the same mirror strings (they were three parsers that agreed only on common
// input: a menu refused HOST:PORT, the loader took a #fragment).
func TestMirrorSyntaxAgrees(t *testing.T) {
	for in, ok := range map[string]bool{
		"http://cache:5000": true, "https://mirror.example/v2/": true, "https://mirror.example/v2": true,
		"mirror.example": true, "10.0.0.1:5000": true, "[::1]:5000": true, "http://[fd00::1]:5000/": true,
		"ftp://x": false, "http://x/path": false, "http://": false, "x/": false, "https://x//": false,
		"http://x#frag": false, "http://u@x": false, "x?q": false, "x:port": false, "HTTP://x": false,
		"http://x:5000/v2/extra": false, "://x": false,
	} {
		_, loaderErr := parseMirror(in, nil)
		_, cmdErrs := cmdline.Parse("ramboot.registry-mirror=" + in)
		_, menuErr := bootmenu.Parse([]byte("entries:\n  - name: a\n    ramroot: {url: docker://host/lab:v1, mirrors: [\""+in+"\"]}\n"), "menu.yaml")
		if got := [3]bool{loaderErr == nil, len(cmdErrs) == 0, menuErr == nil}; got != [3]bool{ok, ok, ok} {
			t.Errorf("%q: accepted by loader, cmdline, menu: %v, want all %v (%v; %v; %v)", in, got, ok, loaderErr, cmdErrs, menuErr)
		}
	}
}

// TestWhiteoutNamesNoFile: ".wh.", ".wh.." and ".wh..." name no file but the directory they
// are in or its parent (they removed that directory); they are refused, naming the entry, and
// the lower layer is left as it was.
func TestWhiteoutNamesNoFile(t *testing.T) {
	for _, wh := range []string{".wh.", ".wh..", ".wh..."} {
		t.Run(wh, func(t *testing.T) {
			dir := t.TempDir()
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			a := newLayerApplier(root, false, t.Logf)
			lower := tarOf(t, []entry{dirEntry("etc/", 0o755), dirEntry("etc/sub/", 0o755), fileEntry("etc/sub/keep", "keep")})
			if err := a.Layer(bytes.NewReader(lower), false); err != nil {
				t.Fatal(err)
			}
			name := "etc/sub/" + wh
			err = a.Layer(bytes.NewReader(tarOf(t, []entry{fileEntry(name, "")})), true)
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
				t.Errorf("got %v, want ErrFormat naming %q", err, name)
			}
			if b, err := os.ReadFile(filepath.Join(dir, "etc/sub/keep")); err != nil || string(b) != "keep" {
				t.Errorf("the lower layer's etc/sub/keep: %q, %v", b, err)
			}
		})
	}
}

// TestRegistryRealmRefused: a bearer challenge whose realm go-containerregistry refuses for good
// (not http(s), a private address that is not the registry's, no realm at all) fails the load
// after one attempt instead of being retried until the budget ran out; a token server that
// fails for a while (503) is still retried, and its token used.
func TestRegistryRealmRefused(t *testing.T) {
	tr := newTestRegistry(t)
	u := pushImage(t, tr.host, "lab/layered:v1", "linux", runtime.GOARCH, layeredImage(t)...)
	var pings, tokens atomic.Int64
	var realm atomic.Value // the challenge's realm parameter
	realm.Store("")
	tr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			if tokens.Add(1) <= 2 {
				http.Error(w, "token service restarting", http.StatusServiceUnavailable)
				return true
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"token":"lab-token"}`)
			return true
		}
		if r.URL.Path == "/v2/" {
			pings.Add(1)
		}
		if r.Header.Get("Authorization") == "Bearer lab-token" {
			return false
		}
		challenge := "Bearer " + realm.Load().(string) + `service="lab",scope="repository:lab/layered:pull"`
		w.Header().Set("WWW-Authenticate", challenge)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		return true
	})
	for _, tt := range []struct{ name, realm, want string }{
		{"ftp", `realm="ftp://` + tr.host + `/token",`, `realm scheme "ftp" not allowed`},
		{"private address", `realm="https://10.0.0.1/token",`, `realm host "10.0.0.1" is a private`},
		{"no realm", ``, "missing realm"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			realm.Store(tt.realm)
			pings.Store(0)
			dir := filepath.Join(t.TempDir(), "root")
			f := quickFetcher(t.Logf)
			f.RetryFor = 2e9
			_, err := Load(context.Background(), dir, []string{u}, Options{Fetcher: f})
			if err == nil || errors.Is(err, ErrRetriesExhausted) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a failure at once naming %q", err, tt.want)
			}
			// One attempt: the loader's ping and go-containerregistry's.
			if n := pings.Load(); n > 2 {
				t.Errorf("the registry was pinged %d times, want 2 (one attempt)", n)
			}
			assertEmpty(t, dir)
		})
	}
	t.Run("token server failing for a while", func(t *testing.T) {
		realm.Store(`realm="http://` + tr.host + `/token",`)
		dir := filepath.Join(t.TempDir(), "root")
		if _, err := Load(context.Background(), dir, []string{u}, Options{Fetcher: quickFetcher(t.Logf)}); err != nil {
			t.Fatal(err)
		}
		checkLayered(t, dir)
		if n := tokens.Load(); n < 3 {
			t.Errorf("%d token requests, want the two 503s and a success", n)
		}
	})
}

// TestSetupTransient: a registry that does not answer, or answers that it is busy, is retried;
// what go-containerregistry refuses in an answer is not.
func TestSetupTransient(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://r/v2/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{refused, true},
		{&url.Error{Op: "Get", URL: "https://r/v2/", Err: &net.DNSError{Err: "no such host", Name: "r"}}, true},
		{&url.Error{Op: "Get", URL: "https://r/v2/", Err: io.ErrUnexpectedEOF}, true},
		{&url.Error{Op: "Get", URL: "https://r/v2/", Err: context.DeadlineExceeded}, true},
		{&transport.Error{StatusCode: http.StatusBadGateway}, true},
		{&transport.Error{StatusCode: http.StatusTooManyRequests}, true},
		{fmt.Errorf("ping: %w", refused), true},
		{&transport.Error{StatusCode: http.StatusNotFound}, false},
		{&transport.Error{StatusCode: http.StatusBadRequest}, false},
		{errors.New(`invalid realm in www-authenticate: realm scheme "ftp" not allowed`), false},
		{&url.Error{Op: "Get", URL: "https://r/token", Err: errors.New(`refusing token-server redirect to "http://10.0.0.1/"`)}, false},
	} {
		if got := setupTransient(tt.err); got != tt.want {
			t.Errorf("setupTransient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestRegistryOverlongBlob: a mirror that answers a layer's digest with endless (valid tar)
// data is cut at the layer's declared size, and dropped as a mirror serving a bad blob; the
// origin then serves the image. The target is a 1 MiB tmpfs: read to its end, the endless
// blob filled it, and the load failed with "not enough space", the mirror never dropped.
func TestRegistryOverlongBlob(t *testing.T) {
	needRoot(t)
	layers := layeredImage(t)
	digests := map[string]bool{}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests[d.String()] = true
	}
	tr := newTestRegistry(t)
	u := pushImage(t, tr.host, "lab/layered:v1", "linux", runtime.GOARCH, layers...)
	mirror := newTestRegistry(t)
	pushImage(t, mirror.host, "lab/layered:v1", "linux", runtime.GOARCH, layers...)
	var endless atomic.Int64
	var announce, config atomic.Bool
	mirror.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") || !(digests[path.Base(r.URL.Path)] || config.Load()) {
			return false
		}
		endless.Add(1)
		if announce.Load() {
			w.Header().Set("Content-Length", fmt.Sprint(256<<20+4096*1024))
		}
		w.WriteHeader(http.StatusOK) // without Content-Length: as long as the client reads
		tw := tar.NewWriter(w)
		data := bytes.Repeat([]byte("ramboot "), 8<<10)
		for i := range 4096 { // 256 MiB at most, should the client never stop
			hdr := &tar.Header{Name: fmt.Sprintf("junk/%06d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}
			if tw.WriteHeader(hdr) != nil {
				return true
			}
			if _, err := tw.Write(data); err != nil {
				return true
			}
		}
		return true
	})
	for _, tt := range []struct {
		name             string
		announce, config bool
		want             string
	}{
		{"endless", false, false, "it sent more than the"},
		{"announced", true, false, "it announced 272629760 bytes, more than the"},
		// The image config is read before any layer: the mirror is dropped there.
		{"config", false, true, "more than the"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			announce.Store(tt.announce)
			config.Store(tt.config)
			endless.Store(0)
			lines, logf := loadLog(t)
			dir := smallTmpfs(t)
			opts := Options{Logf: logf, Fetcher: quickFetcher(logf), Registry: Registry{Mirrors: []string{"http://" + mirror.host}}}
			if _, err := Load(context.Background(), dir, []string{u}, opts); err != nil {
				t.Fatalf("got %v, want the image from the origin", err)
			}
			checkLayered(t, dir)
			log := strings.Join(*lines, "\n")
			if endless.Load() == 0 || !strings.Contains(log, "mirror "+mirror.host) || !strings.Contains(log, tt.want) {
				t.Errorf("the mirror's overlong blob is not named (%d endless answers): %q", endless.Load(), log)
			}
		})
	}
}

// TestRegistryLayerSize: a manifest whose layer has no size (0) or a negative one is refused:
// the size bounds what is read of the blob.
func TestRegistryLayerSize(t *testing.T) {
	tr := newTestRegistry(t)
	u := pushImage(t, tr.host, "lab/layered:v1", "linux", runtime.GOARCH, layeredImage(t)...)
	for _, size := range []int64{0, -1} {
		tr.setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/manifests/v1") {
				return false
			}
			rec := httptest.NewRecorder()
			tr.reg.ServeHTTP(rec, r)
			var m v1.Manifest
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				t.Error(err)
				return false
			}
			m.Layers[1].Size = size
			b, _ := json.Marshal(m)
			w.Header().Set("Content-Type", string(m.MediaType))
			w.Write(b)
			return true
		})
		dir := filepath.Join(t.TempDir(), "root")
		_, err := Load(context.Background(), dir, []string{u}, Options{Fetcher: quickFetcher(t.Logf)})
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "layer 2 (sha256:") || !strings.Contains(err.Error(), fmt.Sprintf("size %d", size)) {
			t.Errorf("layer size %d: got %v, want ErrFormat naming layer 2 and its size", size, err)
		}
		assertEmpty(t, dir)
	}
}

// TestRegistryBombFromMirror: a mirror answers a layer's digest with a blob of the right size
// that decompresses to far more than the target holds. The extraction fails (no space) long
// before the blob's end; the rest of the blob is then read, its digest found wrong, and the
// mirror is dropped: the origin serves the image. It was the image that failed, with "not
// enough space".
func TestRegistryBombFromMirror(t *testing.T) {
	needRoot(t)
	// 12 MiB of noise, more than the blob queue and the decompressor read ahead.
	noise := make([]byte, 12<<20)
	rnd := mathrand.New(mathrand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rnd.Uint32())
	}
	es := []entry{fileEntry("noise", string(noise))}
	layer := static.NewLayer(tarOf(t, es), types.OCIUncompressedLayer)
	size, err := layer.Size()
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := layer.Digest()
	// The bomb: gzip members, read as one stream: a tar header of a file of 1 MiB, then its
	// data in a member of its own (compressed once, about 1.6 KiB), and again.
	mib := gzipOf(t, bytes.Repeat([]byte("ramboot "), 128<<10))
	var bomb, hdr bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	for i := 0; int64(bomb.Len()) < size; i++ {
		hdr.Reset()
		tar.NewWriter(&hdr).WriteHeader(&tar.Header{Name: fmt.Sprintf("bomb%05d", i), Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 20, ModTime: epoch})
		zw.Reset(&bomb)
		zw.Write(hdr.Bytes())
		zw.Close()
		bomb.Write(mib)
	}
	blob := bomb.Bytes()[:size]

	tr := newTestRegistry(t)
	u := pushImage(t, tr.host, "lab/noise:v1", "linux", runtime.GOARCH, layer)
	mirror := newTestRegistry(t)
	pushImage(t, mirror.host, "lab/noise:v1", "linux", runtime.GOARCH, layer)
	mirror.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodGet || path.Base(r.URL.Path) != digest.String() {
			return false
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(blob))
		return true
	})
	lines, logf := loadLog(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=32m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	opts := Options{Logf: logf, Fetcher: quickFetcher(logf), Registry: Registry{Mirrors: []string{"http://" + mirror.host}}}
	if _, err := Load(context.Background(), dir, []string{u}, opts); err != nil {
		t.Fatalf("got %v, want the image from the origin", err)
	}
	checkTree(t, dir, es)
	if log := strings.Join(*lines, "\n"); !strings.Contains(log, "mirror "+mirror.host) || !strings.Contains(log, "checksum mismatch") {
		t.Errorf("the mirror's bad blob is not named: %q", log)
	}
}
