package serve

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ramboot/ramboot/bootmenu"
)

const labYAML = `# the lab menu
title: Lab
default: rescue
entries:
  - name: rescue
    ramroot:
      url: http://SERVER/rescue.tar.zst   # the placeholder
      mirrors: [mirror/rescue.tar.zst, "http://SERVERFARM/rescue.tar.zst"]
  - name: maint
    kexec:
      kernel: vmlinuz
      initrd: [ramboot.cpio.zst, {url: "https://SERVER:8443/extra.cpio", sha256: "` + sum64 + `"}]
      cmdline: console=ttyS0 ramroot=http://SERVER/maint.tar.zst ramroot=http://SERVER:1/m2.tar.zst
  - name: local
    ramroot: /images/embedded.tar.zst
  - name: more
    menu: sub/more.yaml
  - {name: shell, action: shell}
`

const sum64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestMenuYAML(t *testing.T) {
	dir := testDir(t)
	file := filepath.Join(t.TempDir(), "lab.yaml")
	write(t, file, []byte(labYAML))
	srv, _ := newServer(t, dir, Options{Menu: file})

	for _, host := range []string{"10.0.2.2:8123", "127.0.0.1:9", "[::1]:80", "boot.lab"} {
		req, _ := http.NewRequest("GET", srv.URL+"/menu.yaml", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("Host %s: status %d", host, resp.StatusCode)
		}
		if strings.Contains(strings.ReplaceAll(body.String(), "SERVERFARM", ""), "SERVER") {
			t.Errorf("Host %s: placeholder left in\n%s", host, body.String())
		}
		if !strings.Contains(body.String(), "# the placeholder") {
			t.Errorf("Host %s: comment lost\n%s", host, body.String())
		}
		// Parsed from anywhere else: the URLs must not depend on where it was fetched from.
		m, err := bootmenu.Parse(body.Bytes(), "/saved/menu.yaml")
		if err != nil {
			t.Fatalf("Host %s: served menu does not parse: %v\n%s", host, err, body.String())
		}
		base := "http://" + host + "/"
		rescue, _ := m.Entry("rescue")
		maint, _ := m.Entry("maint")
		local, _ := m.Entry("local")
		more, _ := m.Entry("more")
		got := []string{rescue.Ramroot.URL, rescue.Ramroot.Mirrors[0], rescue.Ramroot.Mirrors[1],
			maint.Kexec.Kernel.URL, maint.Kexec.Initrds[0].URL, maint.Kexec.Initrds[1].URL, maint.Kexec.Initrds[1].SHA256,
			maint.Kexec.Cmdline, local.Ramroot.URL, more.Menu}
		want := []string{base + "rescue.tar.zst", base + "mirror/rescue.tar.zst", "http://SERVERFARM/rescue.tar.zst",
			base + "vmlinuz", base + "ramboot.cpio.zst", "https://" + host + "/extra.cpio", sum64,
			"console=ttyS0 ramroot=" + base + "maint.tar.zst ramroot=" + base + "m2.tar.zst",
			"/images/embedded.tar.zst", base + "sub/more.yaml"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Host %s: URLs (-want +got):\n%s", host, diff)
		}
	}

	// Conditional requests work on the menu too, per host.
	resp, _ := do(t, "GET", srv.URL+"/menu.yaml")
	etag := resp.Header.Get("ETag")
	if resp, _ := do(t, "GET", srv.URL+"/menu.yaml", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: status %d, want 304", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", srv.URL+"/menu.yaml", nil)
	req.Host = "other:1"
	req.Header.Set("If-None-Match", etag)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match from another host: %v %v, want 200", resp.StatusCode, err)
	}
}

func TestMenuBadHost(t *testing.T) {
	file := filepath.Join(t.TempDir(), "lab.yaml")
	write(t, file, []byte(labYAML))
	h, err := New(testDir(t), Options{Menu: file})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, host := range []string{"evil/x", "a b", "x@y", "h:port", "${1}"} {
		r := httptest.NewRequest("GET", "/menu.yaml", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusBadRequest {
			t.Errorf("Host %q: status %d, want 400", host, w.Code)
		}
	}
}

func TestMenuUnchangedWithoutRelativeURLs(t *testing.T) {
	const menu = "# keep me\nentries:\n  - {name: a, ramroot: 'http://SERVER/a.tar'}   # and me\n"
	file := filepath.Join(t.TempDir(), "m.yaml")
	write(t, file, []byte(menu))
	srv, _ := newServer(t, testDir(t), Options{Menu: file})
	_, body := do(t, "GET", srv.URL+"/menu.yaml")
	host := strings.TrimPrefix(srv.URL, "http://")
	if want := strings.ReplaceAll(menu, "SERVER", host); body != want {
		t.Errorf("served\n%s\nwant (only the host replaced)\n%s", body, want)
	}
}

func TestMenuPXELinux(t *testing.T) {
	dir := testDir(t)
	write(t, filepath.Join(dir, "common.cfg"), []byte("menu title Lab\n"))
	file := filepath.Join(dir, "pxelinux.cfg", "default")
	write(t, file, []byte(`include common.cfg
default rescue
label rescue
  menu label Rescue
  kernel http://SERVER/vmlinuz
  initrd ramboot.cpio.zst
  append boot=ramdisk ramroot=http://SERVER/rescue.tar.zst console=ttyS0
`))
	h, err := New(dir, Options{Menu: file})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if got := h.MenuPath(); got != "/menu.cfg" {
		t.Fatalf("MenuPath %q, want /menu.cfg", got)
	}
	if h.menu.sample.Title != "Lab" {
		t.Errorf("include not read from the directory: title %q", h.menu.sample.Title)
	}
	r := httptest.NewRequest("GET", "/menu.cfg", nil)
	r.Host = "10.0.2.2:8080"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	// As /init reads it: from the URL it fetched.
	m, err := bootmenu.ParseWith(w.Body.Bytes(), "http://10.0.2.2:8080/menu.cfg", bootmenu.Options{
		Include: func(string) ([]byte, error) { return []byte("menu title Lab\n"), nil },
	})
	if err != nil {
		t.Fatalf("served menu: %v\n%s", err, w.Body.String())
	}
	k := m.Entries[0].Kexec
	got := []string{k.Kernel.URL, k.Initrds[0].URL, k.Cmdline}
	want := []string{"http://10.0.2.2:8080/vmlinuz", "http://10.0.2.2:8080/ramboot.cpio.zst",
		"boot=ramdisk ramroot=http://10.0.2.2:8080/rescue.tar.zst console=ttyS0"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("URLs (-want +got):\n%s", diff)
	}
}

func TestMenuInvalid(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	write(t, file, []byte("entries:\n  - name: a\n    kexec: {initrd: [x]}\n"))
	_, err := New(testDir(t), Options{Menu: file})
	if err == nil || !strings.Contains(err.Error(), file+":3") || !strings.Contains(err.Error(), "kernel") {
		t.Errorf("New with an invalid menu: %v, want the file, line 3 and the missing kernel", err)
	}
	if _, err := New(testDir(t), Options{Menu: filepath.Join(t.TempDir(), "missing.yaml")}); err == nil {
		t.Error("New with a missing menu: no error")
	}
}
