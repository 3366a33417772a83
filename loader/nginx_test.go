package loader

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startNginx serves dir on a loopback port with Debian's nginx (a real server: its Range,
// If-Range and ETag handling is what production mirrors do) and returns its base URL.
func startNginx(t *testing.T, dir string) (string, string) {
	t.Helper()
	bin := "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		bin = needTool(t, "nginx")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	run := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 64; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s;
		root %[3]s;
	}
}
`, run, addr, dir)
	cf := filepath.Join(run, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cf, "-e", filepath.Join(run, "error.log"))
	out, _ := os.Create(filepath.Join(run, "stderr"))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			b, _ := os.ReadFile(filepath.Join(run, "stderr"))
			e, _ := os.ReadFile(filepath.Join(run, "error.log"))
			t.Fatalf("nginx did not start: %s %s", b, e)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr, filepath.Join(run, "access.log")
}

// cutProxy forwards to addr, cutting the first connection after n bytes from the server.
func cutProxy(t *testing.T, addr string, n int64) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var conns atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			first := conns.Add(1) == 1
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", addr)
				if err != nil {
					return
				}
				defer up.Close()
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { defer wg.Done(); io.Copy(up, c) }()
				if first {
					io.CopyN(c, up, n)
					c.Close()
					up.Close()
				} else {
					io.Copy(c, up)
				}
				wg.Wait()
			}()
		}
	}()
	return "http://" + l.Addr().String()
}

func TestNginx(t *testing.T) {
	es := randomTree(11, 4<<20)
	plain := tarOf(t, es)
	dir := t.TempDir()
	images := map[string][]byte{
		"rootfs.tar.xz":  runFilter(t, plain, "pixz", "-1"),
		"rootfs.tar.zst": runFilter(t, plain, "zstd", "-19", "-q", "-c"),
	}
	for name, b := range images {
		writeFile(filepath.Join(dir, name), b)
		writeFile(filepath.Join(dir, name+".sha256"), []byte(sha(b)+"  "+name+"\n"))
	}
	base, accessLog := startNginx(t, dir)
	for name, b := range images {
		t.Run("full "+name, func(t *testing.T) {
			dest := t.TempDir()
			res, err := Load(context.Background(), dest, []string{base + "/" + name}, Options{Fetcher: testFetcher()})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Verified || res.Size != int64(len(b)) {
				t.Errorf("result %+v: want verified against the .sha256 file", res)
			}
			checkTree(t, dest, es)
		})
	}
	t.Run("resume after cut", func(t *testing.T) {
		name := "rootfs.tar.xz"
		proxy := cutProxy(t, strings.TrimPrefix(base, "http://"), int64(len(images[name])/2))
		var log strings.Builder
		f := testFetcher()
		f.Logf = func(format string, a ...any) { fmt.Fprintf(&log, format+"\n", a...) }
		dest := t.TempDir()
		res, err := Load(context.Background(), dest, []string{proxy + "/" + name}, Options{Fetcher: f, SHA256: sha(images[name])})
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
		if !res.Verified {
			t.Error("not verified")
		}
		checkTree(t, dest, es)
		if !strings.Contains(log.String(), "resumed at byte") {
			t.Errorf("no resume in the log:\n%s", log.String())
		}
		b, _ := os.ReadFile(accessLog)
		if !strings.Contains(string(b), `" 206 `) {
			t.Errorf("nginx served no partial content:\n%s", b)
		}
	})
}
