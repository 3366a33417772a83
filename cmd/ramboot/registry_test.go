package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/vmtest"
)

// distRegistry is Debian's docker-registry (the CNCF distribution registry) on loopback.
type distRegistry struct {
	host string
	log  *lockedBuffer
}

// registryConfig holds the optional parts of a registry's configuration.
type registryConfig struct {
	htpasswd string // a htpasswd file: basic auth
	proxy    string // a remote URL: a pull-through cache of it
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startRegistry(t *testing.T, c registryConfig) *distRegistry {
	t.Helper()
	bin := vmtest.Tool(t, "docker-registry")
	dir := t.TempDir()
	addr := freePort(t)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr)
	if c.htpasswd != "" {
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: lab\n    path: %s\n", c.htpasswd)
	}
	if c.proxy != "" {
		cfg += fmt.Sprintf("proxy:\n  remoteurl: %s\n", c.proxy)
	}
	cf := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cf, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &distRegistry{host: addr, log: &lockedBuffer{}}
	cmd := exec.Command(bin, "serve", cf)
	cmd.Stdout, cmd.Stderr = r.log, r.log
	startServer(t, cmd, addr, 20*time.Second, func() string { return r.log.String() })
	return r
}

// blobGets counts the blob downloads the registry's access log shows, per digest.
func (r *distRegistry) blobGets() map[string]int {
	re := regexp.MustCompile(`"GET /v2/[^ ]+/blobs/(sha256:[0-9a-f]{64}) HTTP/[0-9.]+" 20[06]`)
	n := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(r.log.String(), -1) {
		n[m[1]]++
	}
	return n
}

// layerTar writes a layer's tar archive.
func layerTar(t *testing.T, p string, hdrs []*tar.Header, data map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		d := data[h.Name]
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(d))
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, d)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func dirH(n string, mode int64) *tar.Header {
	return &tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: mode}
}

func regH(n string, mode int64, uid, gid int) *tar.Header {
	return &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: mode, Uid: uid, Gid: gid}
}

// umociImage builds a three-layer image with umoci: owners, modes, setuid, symlinks, a hard
// link, a fifo, a device, xattrs; then whiteouts and an opaque directory; then a directory
// replaced by a file and a file by a directory. Returns the layout directory (tag v1).
func umociImage(t *testing.T) string {
	t.Helper()
	umoci := vmtest.Tool(t, "umoci")
	dir := t.TempDir()
	lay := filepath.Join(dir, "layout")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(umoci, args...).CombinedOutput(); err != nil {
			t.Fatalf("umoci %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("init", "--layout", lay)
	run("new", "--image", lay+":v1")
	xattr := regH("usr/bin/ping", 0o755, 0, 0)
	xattr.PAXRecords = map[string]string{"SCHILY.xattr.user.note": "pings", "SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
	layers := [][]*tar.Header{
		{
			dirH("etc/", 0o755), regH("etc/keep", 0o644, 0, 0), regH("etc/gone", 0o600, 0, 0),
			regH("etc/shadow", 0o640, 0, 42), dirH("usr/", 0o755), dirH("usr/bin/", 0o755),
			regH("usr/bin/su", 0o4755, 0, 0), xattr,
			{Name: "usr/bin/sh", Typeflag: tar.TypeSymlink, Linkname: "dash"}, regH("usr/bin/dash", 0o755, 0, 0),
			{Name: "usr/bin/ping6", Typeflag: tar.TypeLink, Linkname: "usr/bin/ping"},
			dirH("home/", 0o755), dirH("home/user/", 0o700), regH("home/user/notes", 0o600, 1000, 1000),
			dirH("var/", 0o755), dirH("var/cache/", 0o755), dirH("var/cache/apt/", 0o755), regH("var/cache/apt/pkg.bin", 0o644, 0, 0),
			dirH("var/cache/apt/archives/", 0o755), regH("var/cache/apt/archives/a.deb", 0o644, 0, 0),
			dirH("opt/", 0o755), dirH("opt/tree/", 0o755), regH("opt/tree/a", 0o644, 0, 0), regH("opt/file", 0o644, 0, 0),
			{Name: "run/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "run/initctl", Typeflag: tar.TypeFifo, Mode: 0o600},
			{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		},
		{
			dirH("etc/", 0o755), regH("etc/.wh.gone", 0o644, 0, 0), regH("etc/new", 0o644, 0, 0),
			dirH("var/cache/apt/", 0o755), regH("var/cache/apt/.wh..wh..opq", 0o644, 0, 0), regH("var/cache/apt/fresh", 0o644, 0, 0),
			regH("usr/bin/.wh.sh", 0o644, 0, 0),
		},
		{
			regH("opt/tree", 0o755, 0, 0), dirH("opt/file/", 0o750), regH("opt/file/inside", 0o644, 7, 7),
			regH("etc/keep", 0o444, 0, 0), dirH("home/user/", 0o711),
		},
	}
	data := map[string]string{
		"etc/keep": "keep", "etc/gone": "gone", "etc/shadow": "root:*:", "usr/bin/su": "su", "usr/bin/ping": "ping",
		"usr/bin/dash": "dash", "home/user/notes": "notes", "var/cache/apt/pkg.bin": "pkg", "var/cache/apt/archives/a.deb": "deb",
		"opt/tree/a": "a", "opt/file": "file", "etc/new": "new", "var/cache/apt/fresh": "fresh", "opt/tree": "tree is a file",
		"opt/file/inside": "inside",
	}
	for i, hs := range layers {
		p := filepath.Join(dir, fmt.Sprintf("layer%d.tar", i))
		d := map[string]string{}
		for k, v := range data {
			d[k] = v
		}
		if i == 2 {
			d["etc/keep"] = "keep, changed"
		}
		layerTar(t, p, hs, d)
		run("raw", "add-layer", "--image", lay+":v1", p)
	}
	return lay
}

// zstdLayout rewrites the image v1 of a layout with zstd layers, tagged v1 in a new layout.
func zstdLayout(t *testing.T, src string) string {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(src)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	base := mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1)
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw, _ := zstd.NewWriter(&buf)
		io.Copy(zw, rc)
		zw.Close()
		rc.Close()
		if base, err = mutate.AppendLayers(base, static.NewLayer(buf.Bytes(), types.OCILayerZStd)); err != nil {
			t.Fatal(err)
		}
	}
	ncf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	ncf = ncf.DeepCopy()
	ncf.OS, ncf.Architecture = cf.OS, cf.Architecture
	if base, err = mutate.ConfigFile(base, ncf); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "zstd")
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(base, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	return out
}

// skopeoCopy copies an image between transports, without TLS to loopback registries.
func skopeoCopy(t *testing.T, from, to string, extra ...string) {
	t.Helper()
	skopeo := vmtest.Tool(t, "skopeo")
	args := append([]string{"copy", "--insecure-policy", "--src-tls-verify=false", "--dest-tls-verify=false"}, extra...)
	args = append(args, from, to)
	if out, err := exec.Command(skopeo, args...).CombinedOutput(); err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// umociUnpack unpacks a layout's image with umoci and returns its rootfs.
func umociUnpack(t *testing.T, lay, tag string) string {
	t.Helper()
	bundle := filepath.Join(t.TempDir(), "bundle")
	if out, err := exec.Command(vmtest.Tool(t, "umoci"), "unpack", "--image", lay+":"+tag, bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	return filepath.Join(bundle, "rootfs")
}

// treeOf describes every entry below dir (not dir itself): type, mode, owner, content, link
// target, device, hard-link count and extended attributes.
func treeOf(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		s := fmt.Sprintf("mode %o owner %d:%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(b)
			s += fmt.Sprintf(" links %d sha256 %s", st.Nlink, hex.EncodeToString(h[:8]))
		case unix.S_IFLNK:
			l, _ := os.Readlink(p)
			s += " -> " + l
		case unix.S_IFCHR, unix.S_IFBLK:
			s += fmt.Sprintf(" dev %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		sz, _ := unix.Llistxattr(p, nil)
		if sz > 0 {
			buf := make([]byte, sz)
			n, _ := unix.Llistxattr(p, buf)
			names := strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00")
			sort.Strings(names)
			for _, name := range names {
				v := make([]byte, 4096)
				k, _ := unix.Lgetxattr(p, name, v)
				s += fmt.Sprintf(" xattr %s=%q", name, v[:max(k, 0)])
			}
		}
		out[rel] = s
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func diffTrees(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	bad := 0
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s: %s:\n got %q\nwant %q", what, k, got[k], want[k])
			bad++
		}
	}
	if bad == 0 && len(want) == 0 {
		t.Errorf("%s: empty trees", what)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		vmtest.Missing(t, "root (owners, devices and capabilities of the tree)")
	}
}

// TestRegistryMatchesUmoci: images built with umoci (gzip layers) and their zstd copies,
// pushed with skopeo to Debian's docker-registry, fetched with `ramboot fetch docker://`, give
// the tree `umoci unpack` gives.
func TestRegistryMatchesUmoci(t *testing.T) {
	needRoot(t)
	reg := startRegistry(t, registryConfig{})
	lay := umociImage(t)
	want := treeOf(t, umociUnpack(t, lay, "v1"))
	for _, p := range []string{"etc/gone", "var/cache/apt/pkg.bin", "usr/bin/sh", "etc/new", "opt/file/inside", "usr/bin/ping"} {
		if _, ok := want[p]; ok == (p == "etc/gone" || p == "var/cache/apt/pkg.bin" || p == "usr/bin/sh") {
			t.Fatalf("umoci's own tree is not what the layers say at %s: %v", p, want)
		}
	}
	skopeoCopy(t, "oci:"+lay+":v1", "docker://"+reg.host+"/lab/umoci:gzip")
	skopeoCopy(t, "oci:"+zstdLayout(t, lay)+":v1", "docker://"+reg.host+"/lab/umoci:zstd")
	for _, tag := range []string{"gzip", "zstd"} {
		dir := filepath.Join(t.TempDir(), "root")
		_, stderr, err := runArgs("fetch", "docker://"+reg.host+"/lab/umoci:"+tag, dir)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tag, err, stderr)
		}
		if !strings.Contains(stderr, "lab/umoci:"+tag+" is sha256:") {
			t.Errorf("%s: the tag's digest is not logged:\n%s", tag, stderr)
		}
		diffTrees(t, tag, treeOf(t, dir), want)
	}
}

// TestRegistryImagePush: `ramboot image` pushes a tree as a one-layer image (gzip and zstd);
// `ramboot fetch` gives back the tree umoci unpacks from it.
func TestRegistryImagePush(t *testing.T) {
	needRoot(t)
	reg := startRegistry(t, registryConfig{})
	lay := umociImage(t)
	src := umociUnpack(t, lay, "v1")
	var trees []map[string]string
	for _, format := range []string{"gzip", "zstd"} {
		ref := "docker://" + reg.host + "/lab/pushed:" + format
		stdout, stderr, err := runArgs("image", "-q", "--format", format, "dir:"+src, ref)
		if err != nil {
			t.Fatalf("image %s: %v\n%s", format, err, stderr)
		}
		if !strings.HasPrefix(stdout, "sha256:") || !strings.Contains(stdout, ref) {
			t.Errorf("image's output %q: want the digest and the reference", stdout)
		}
		dir := filepath.Join(t.TempDir(), "root")
		if _, stderr, err := runArgs("fetch", "-q", ref, dir); err != nil {
			t.Fatalf("fetch %s: %v\n%s", format, err, stderr)
		}
		trees = append(trees, treeOf(t, dir))
	}
	// umoci reads the gzip one (it has no zstd).
	out := filepath.Join(t.TempDir(), "layout")
	skopeoCopy(t, "docker://"+reg.host+"/lab/pushed:gzip", "oci:"+out+":v1")
	want := treeOf(t, umociUnpack(t, out, "v1"))
	diffTrees(t, "gzip", trees[0], want)
	diffTrees(t, "zstd", trees[1], want)
}

// TestRegistryAuthHtpasswd: a registry with htpasswd credentials refuses an anonymous fetch
// in one line and serves one with a docker config.json.
func TestRegistryAuthHtpasswd(t *testing.T) {
	htpasswd := vmtest.Tool(t, "htpasswd")
	dir := t.TempDir()
	pw := filepath.Join(dir, "htpasswd")
	if out, err := exec.Command(htpasswd, "-Bbc", pw, "fleet", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v\n%s", err, out)
	}
	reg := startRegistry(t, registryConfig{htpasswd: pw})
	lay := umociImage(t)
	skopeoCopy(t, "oci:"+lay+":v1", "docker://"+reg.host+"/lab/private:v1", "--dest-creds", "fleet:s3cret")
	ref := "docker://" + reg.host + "/lab/private:v1"
	root := filepath.Join(dir, "root")
	_, _, err := runArgs("fetch", "-q", "--retry", "2s", ref, root)
	if err == nil || !strings.Contains(err.Error(), "registry refused access") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("anonymous: got %v, want one line saying access was refused", err)
	}
	auth := filepath.Join(dir, "config.json")
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.host, base64.StdEncoding.EncodeToString([]byte("fleet:s3cret")))
	os.WriteFile(auth, []byte(cfg), 0o600)
	if _, stderr, err := runArgs("fetch", "-q", "--registry-auth", auth, ref, root); err != nil {
		t.Fatalf("with credentials: %v\n%s", err, stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/new")); err != nil {
		t.Error(err)
	}
}

// faultProxy sits in front of a registry and misbehaves on blob requests as told.
type faultProxy struct {
	host  string
	mu    sync.Mutex
	fault string // "cut", "corrupt", "429", ""
	count int
}

func newFaultProxy(t *testing.T, origin string) *faultProxy {
	p := &faultProxy{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.host = l.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+origin+r.URL.RequestURI(), nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		p.mu.Lock()
		fault := p.fault
		blob := strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet && resp.StatusCode < 300
		if blob {
			p.count++
		}
		p.mu.Unlock()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		switch {
		case fault == "429":
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`, http.StatusTooManyRequests)
			return
		case blob && fault == "corrupt" && len(body) > 64:
			body[len(body)/2] ^= 0x55
		case blob && fault == "cut" && r.Header.Get("Range") == "" && len(body) > 64:
			w.WriteHeader(resp.StatusCode)
			w.Write(body[:len(body)/2])
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

func (p *faultProxy) set(f string) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// TestRegistryFaultsReal: the faults of the issue against the real registry: a missing tag, a
// cut blob (resumed with Range), a mirror serving wrong blobs (skipped), 429s (waited out; one
// line when they never stop).
func TestRegistryFaultsReal(t *testing.T) {
	reg := startRegistry(t, registryConfig{})
	lay := umociImage(t)
	skopeoCopy(t, "oci:"+lay+":v1", "docker://"+reg.host+"/lab/img:v1")
	proxy := newFaultProxy(t, reg.host)
	fetch := func(args ...string) (string, error) {
		dir := filepath.Join(t.TempDir(), "root")
		_, stderr, err := runArgs(append(append([]string{"fetch"}, args...), dir)...)
		if err != nil {
			if names, _ := os.ReadDir(dir); len(names) > 0 {
				t.Errorf("%v: %s is not empty after the failure", args, dir)
			}
		}
		return stderr, err
	}
	t.Run("missing tag", func(t *testing.T) {
		_, err := fetch("docker://" + reg.host + "/lab/img:nope")
		if err == nil || !strings.Contains(err.Error(), "no such image in the registry: tag nope") || strings.Contains(err.Error(), "\n") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("cut blob", func(t *testing.T) {
		proxy.set("cut")
		stderr, err := fetch("docker://" + proxy.host + "/lab/img:v1")
		if err != nil || !strings.Contains(stderr, "resumed at byte") {
			t.Errorf("got %v\n%s", err, stderr)
		}
	})
	t.Run("wrong blob from a mirror", func(t *testing.T) {
		proxy.set("corrupt")
		stderr, err := fetch("--mirror", "http://"+proxy.host, "docker://"+reg.host+"/lab/img:v1")
		if err != nil || !strings.Contains(stderr, "mirror "+proxy.host) || !strings.Contains(stderr, "checksum mismatch") {
			t.Errorf("got %v\n%s", err, stderr)
		}
	})
	t.Run("429", func(t *testing.T) {
		proxy.set("429")
		go func() {
			time.Sleep(2500 * time.Millisecond)
			proxy.set("")
		}()
		stderr, err := fetch("docker://" + proxy.host + "/lab/img:v1")
		if err != nil || !strings.Contains(stderr, "429") {
			t.Errorf("got %v\n%s", err, stderr)
		}
		proxy.set("429")
		_, err = fetch("--retry", "2s", "docker://"+proxy.host+"/lab/img:v1")
		if err == nil || !strings.Contains(err.Error(), "429 Too Many Requests") || strings.Contains(err.Error(), "\n") {
			t.Errorf("always 429: got %v", err)
		}
	})
}

// startNginxCache starts nginx in front of a registry, caching blobs (they are content-addressed)
// with proxy_cache_lock: of concurrent requests for a blob not yet cached, one goes upstream and
// the others wait for it. Returns its HOST:PORT.
func startNginxCache(t *testing.T, upstream string) string {
	t.Helper()
	bin := vmtest.Tool(t, "nginx")
	dir := t.TempDir()
	addr := freePort(t)
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	proxy_cache_path %[1]s/cache levels=1:2 keys_zone=blobs:10m max_size=10g inactive=1d use_temp_path=off;
	server {
		listen %[2]s;
		proxy_http_version 1.1;
		location ~ ^/v2/.+/blobs/sha256: {
			proxy_pass http://%[3]s;
			proxy_cache blobs;
			proxy_cache_key $uri;
			proxy_cache_valid 200 1d;
			proxy_cache_lock on;
			proxy_cache_lock_timeout 5m;
			proxy_cache_lock_age 5m;
		}
		location / {
			proxy_pass http://%[3]s;
		}
	}
}
`, dir, addr, upstream)
	cf := filepath.Join(dir, "nginx.conf")
	os.WriteFile(cf, []byte(conf), 0o644)
	cmd := exec.Command(bin, "-c", cf, "-p", dir, "-e", filepath.Join(dir, "error.log"))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startServer(t, cmd, addr, 10*time.Second, func() string {
		b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return out.String() + string(b)
	})
	return addr
}

// TestRegistryPullThroughCache: 50 machines boot at once, with a cold cache, through a
// pull-through cache (a second docker-registry with proxy.remoteurl) behind nginx's
// proxy_cache_lock: every tree is the same, and the origin's blob downloads do not grow with
// the fleet. distribution 2.8's proxy fetches a blob twice from the origin on its first miss
// (one copy to store, one passed through), and once more for every request that arrives
// while that is in flight: without the lock in front, 50 clients cost the origin about 50
// downloads of each blob. With it, the cache sees one request per blob, so the origin serves
// each blob at most twice, whatever the number of machines.
func TestRegistryPullThroughCache(t *testing.T) {
	origin := startRegistry(t, registryConfig{})
	lay := umociImage(t)
	skopeoCopy(t, "oci:"+lay+":v1", "docker://"+origin.host+"/lab/fleet:v1")
	before := origin.blobGets()
	cache := startRegistry(t, registryConfig{proxy: "http://" + origin.host})
	front := startNginxCache(t, cache.host)
	clients := 50
	if n := os.Getenv("RAMBOOT_CLIENTS"); n != "" {
		fmt.Sscan(n, &clients)
	}
	trees := make([]map[string]string, clients)
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := filepath.Join(t.TempDir(), "root")
			_, stderr, err := runArgs("fetch", "-q", "--mirror", "http://"+front, "docker://"+origin.host+"/lab/fleet:v1", dir)
			if err != nil {
				errs[i] = fmt.Errorf("%w\n%s", err, stderr)
				return
			}
			trees[i] = treeOf(t, dir)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		if i > 0 {
			diffTrees(t, fmt.Sprintf("client %d", i), trees[i], trees[0])
		}
	}
	served := map[string]int{}
	for d, n := range origin.blobGets() {
		if n -= before[d]; n > 0 {
			served[d] = n
		}
	}
	if len(served) == 0 {
		t.Fatalf("the origin served no blob: the clients did not go through the cache")
	}
	for d, n := range served {
		if n > 2 {
			t.Errorf("the origin served %s %d times for %d clients, want at most twice", d, n, clients)
		}
	}
	t.Logf("origin blob downloads for %d clients: %v", clients, served)
}

// startServer starts cmd, a registry or a proxy in front of one, stops it when the test ends,
// and waits until it answers /v2/ at addr; logs tells what it said when it does not.
func startServer(t *testing.T, cmd *exec.Cmd, addr string, wait time.Duration, logs func() string) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Since(start) > wait {
			t.Fatalf("%s did not come up: %v\n%s", filepath.Base(cmd.Path), err, logs())
		}
	}
}
