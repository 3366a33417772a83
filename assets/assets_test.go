package assets_test

import (
	"testing"

	"github.com/ramboot/ramboot/assets"
	"github.com/ramboot/ramboot/bootmenu"
)

// TestMenusValid: the embedded menus parse and validate as an operator's would.
func TestMenusValid(t *testing.T) {
	for name, data := range map[string][]byte{"builtin.yaml": assets.BuiltinMenu, "demo.yaml": assets.DemoMenu} {
		m, err := bootmenu.Parse(data, name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if len(m.Entries) == 0 {
			t.Errorf("%s: no entries", name)
		}
	}
}
