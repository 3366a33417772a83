package xzpar

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestPackageDocSources: the package documentation names the specifications and the designs
// the decoder's structure and names follow, and the names it says were kept or taken from a
// reference decoder are still the package's (renaming them must update the doc). No other
// comment of the package speaks of code derived from elsewhere: the doc tells that history.
func TestPackageDocSources(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	pkg := pkgs["xzpar"]
	if pkg == nil {
		t.Fatal("no package xzpar")
	}
	var doc string
	names := map[string]bool{}
	for name, f := range pkg.Files {
		if f.Doc != nil {
			if doc != "" {
				t.Errorf("%s: a second package doc", name)
			}
			doc = f.Doc.Text()
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if id, ok := n.(*ast.Ident); ok {
				names[id.Name] = true
			}
			return true
		})
		for _, cg := range f.Comments {
			if cg != f.Doc && strings.Contains(strings.ToLower(cg.Text()), "derived from") {
				t.Errorf("%s: %s: a comment speaks of code derived from elsewhere; the package doc tells where the code comes from", name, fset.Position(cg.Pos()))
			}
		}
	}
	doc = strings.Join(strings.Fields(doc), " ")
	for _, want := range []string{".xz file format specification", "LZMA SDK", "lzma-specification.txt", "Lzma2Dec.c", "XZ Embedded", "github.com/xi2/xz"} {
		if !strings.Contains(doc, want) {
			t.Errorf("the package doc does not name %s", want)
		}
	}
	for _, id := range []string{"lzmaDec", "lzma2Dec", "needDictReset", "needProps", "isMatch", "isRep", "isRepG0", "isRepG2", "isRep0Long"} {
		if !strings.Contains(doc, id) {
			t.Errorf("the package doc does not say where the name %s comes from", id)
		}
		if !names[id] {
			t.Errorf("the package doc names %s, which the package no longer has", id)
		}
	}
}
