package imageconv

import (
	"archive/tar"
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestComparePaths(t *testing.T) {
	want := []string{".", "a", "a/b", "a/b/c", "a/b.c", "a-b", "a.b", "a.b/c", "ab", "b"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, comparePaths)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

// TestTreeOrder: later entries replace earlier ones; a hard link keeps the inode it was made
// to; links are written to the first path of their inode; missing parents are made; a link to
// nothing is an error.
func TestTreeOrder(t *testing.T) {
	reg := func(name, data string) tarEntry {
		return tarEntry{&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: base}, []byte(data)}
	}
	link := func(name, to string) tarEntry {
		return tarEntry{&tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: to}, nil}
	}
	archive := tarOf(t, []tarEntry{
		reg("z/old", "first"),
		link("a/early", "z/old"),
		reg("z/old", "replaced"),
		link("m/late", "z/new"), // its target comes later (as in container layers, top first)
		reg("z/new", "new"),
		{&tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o700, ModTime: base}, nil},
		reg("d/x", "x"),
		reg("d", "a file replaces the directory and its contents"),
	})
	tr := newTree(t.TempDir(), t.Logf, func(int64) {})
	defer tr.close()
	if err := tr.addTar(bytes.NewReader(archive)); err != nil {
		t.Fatal(err)
	}
	dirTime := time.Unix(1e9, 0)
	nodes, err := tr.finish(dirTime)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nodes {
		s := string(n.hdr.Typeflag) + " " + n.hdr.Name
		switch n.hdr.Typeflag {
		case tar.TypeLink:
			s += " -> " + n.hdr.Linkname
		case tar.TypeReg:
			r, _ := tr.open(n)
			var b bytes.Buffer
			b.ReadFrom(r)
			s += " = " + b.String()
		case tar.TypeDir:
			if n.hdr.ModTime.Equal(dirTime) {
				s += " (made)"
			}
		}
		got = append(got, s)
	}
	want := []string{
		"5 . (made)", "5 a (made)", "0 a/early = first", "0 d = a file replaces the directory and its contents",
		"5 m (made)", "0 m/late = new", "5 z (made)", "1 z/new -> m/late", "0 z/old = replaced",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}

	tr = newTree(t.TempDir(), t.Logf, func(int64) {})
	defer tr.close()
	tr.addTar(bytes.NewReader(tarOf(t, []tarEntry{link("a", "nothing")})))
	if _, err := tr.finish(dirTime); err == nil || !strings.Contains(err.Error(), "hard link a: its target nothing is not in the image") {
		t.Errorf("dangling hard link: %v", err)
	}
}
