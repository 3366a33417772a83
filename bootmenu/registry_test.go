package bootmenu

import (
	"strings"
	"testing"
)

func TestParseYAMLRegistry(t *testing.T) {
	good := `entries:
  - name: rescue
    ramroot:
      url: docker://10.0.2.2:5000/lab/rescue:v1
      mirrors: [http://cache.lab:5000, docker://backup.lab/lab/rescue:v1]
  - name: pinned
    ramroot: docker://registry.lab/lab/rescue@sha256:` + strings.Repeat("ab", 32) + `
`
	m, err := ParseYAML([]byte(good), "http://boot.example/menu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(m.Entries[0].Ramroot.URLs(), " "), "docker://10.0.2.2:5000/lab/rescue:v1 http://cache.lab:5000 docker://backup.lab/lab/rescue:v1"; got != want {
		t.Errorf("URLs: got %s, want %s", got, want)
	}
	for _, tt := range []struct{ name, yaml, want string }{
		{"no repo", "entries:\n  - name: a\n    ramroot: docker://host\n", "no HOST/REPO"},
		{"uppercase", "entries:\n  - name: a\n    ramroot: docker://host/Lab:v1\n", "lowercase"},
		{"bad digest", "entries:\n  - name: a\n    ramroot: docker://host/lab@sha256:12\n", "digest"},
		{"mirror path", "entries:\n  - name: a\n    ramroot: {url: docker://host/lab:v1, mirrors: [http://cache/some/path]}\n", "registry mirror"},
		{"kexec from a registry", "entries:\n  - name: a\n    kexec: {kernel: docker://host/k:v1}\n", "only a ramroot"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML([]byte(tt.yaml), "menu.yaml")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
