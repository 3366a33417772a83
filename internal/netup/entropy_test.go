package netup

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoRandomPool: the package's code calls none of the library functions that draw from
// getrandom(2) — the DHCPv4 and DHCPv6 message constructors, the clients' exchanges built on
// them, ndp's nonce. Early in boot they wait for the kernel's random pool (or spin on it), which
// PID 1 must not; message and message6 draw transaction IDs from math/rand/v2 instead. The
// netns tests prove the same at run time (getrandom raises SIGSYS in their helper), for the
// paths they take; this covers the code they do not.
func TestNoRandomPool(t *testing.T) {
	banned := map[string][]string{
		"dhcpv4": {"New", "NewDiscovery", "NewDiscoveryForInterface", "NewInform", "NewInformForInterface", "NewRequestFromOffer", "GenerateTransactionID", "NewReleaseFromACK"},
		"dhcpv6": {"NewMessage", "NewSolicit", "NewRequestFromAdvertise", "NewAdvertiseFromSolicit", "NewReplyFromMessage", "GenerateTransactionID"},
		"ndp":    {"NewNonce"},
	}
	// Client methods that build their messages with the constructors above.
	methods := []string{"DiscoverOffer", "Request", "RequestFromOffer", "Renew", "Release", "Inform", "Solicit", "RapidSolicit"}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); ok {
				for _, b := range banned[pkg.Name] {
					if sel.Sel.Name == b {
						t.Errorf("%s: %s.%s draws from the kernel's random pool", fset.Position(call.Pos()), pkg.Name, b)
					}
				}
			}
			for _, m := range methods {
				if sel.Sel.Name == m {
					t.Errorf("%s: .%s builds its messages with the library's constructors", fset.Position(call.Pos()), m)
				}
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("checked %d files", checked)
	}
}
