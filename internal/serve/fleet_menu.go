package serve

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Default decides the menu default for the machine mac, whose /init (boot bootID, "" when
// unknown) asks for the menu: the menu's own default (def) unless that entry failed
// rollbackAfter boots in a row on this machine and another entry of the menu (one of
// entries) was healthy on it last; then that one. A boot that was not confirmed healthy
// before the machine asked again counts as failed (see supersede). The decision is kept on
// the machine (Machine.Rollback) for the dashboard.
func (f *Fleet) Default(mac, bootID, def string, entries []string) (string, *Rollback) {
	mac = normalMAC(mac)
	f.mu.Lock()
	defer f.mu.Unlock()
	m, ok := f.machines[mac]
	if !ok || f.rollbackAfter <= 0 {
		return def, nil
	}
	if bootID != "" {
		f.supersede(m, bootID) // the menu request may come before the new boot's first event
	}
	var rb *Rollback
	to := m.HealthyEntry
	if n := m.Failures[def]; n >= f.rollbackAfter && to != "" && to != def && slices.Contains(entries, to) {
		rb = &Rollback{From: def, To: to, Failures: n}
	}
	changed := (rb == nil) != (m.Rollback == nil) || (rb != nil && *rb != *m.Rollback)
	m.Rollback = rb
	if changed {
		f.publish(m)
	}
	if rb != nil {
		return rb.To, rb
	}
	return def, nil
}

// serveMenu serves the YAML menu with the default Fleet.Default picks for the machine that
// asks: its MAC from the X-Ramboot-Mac header /init sends (or ?mac= for a person with curl),
// its boot from X-Ramboot-Boot-Id. A machine rolled back gets a menu whose title says so.
func (f *Fleet) serveMenu(w http.ResponseWriter, r *http.Request, m *menu) {
	m.serveEdited(w, r, "Host, X-Ramboot-Mac", func(body []byte) []byte {
		mac := r.Header.Get("X-Ramboot-Mac")
		if mac == "" {
			mac = r.URL.Query().Get("mac")
		}
		if mac == "" || m.sample == nil {
			return body
		}
		def := ""
		if e, ok := m.sample.DefaultEntry(); ok {
			def = e.Name
		}
		var names []string
		for _, e := range m.sample.Entries {
			if e.Bootable() {
				names = append(names, e.Name)
			}
		}
		to, rb := f.Default(mac, r.Header.Get("X-Ramboot-Boot-Id"), def, names)
		if rb == nil {
			return body
		}
		b, err := setDefault(body, to, fmt.Sprintf("rolled back to %s: %s failed %s in a row", rb.To, rb.From, boots(rb.Failures)))
		if err != nil {
			f.logf("menu for %s: %v", mac, err)
			return body
		}
		return b
	})
}

// setDefault sets a YAML menu's default: key to name (adding it when missing) and appends
// note to its title.
func setDefault(menu []byte, name, note string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(menu, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a YAML menu")
	}
	top := doc.Content[0]
	set := func(key, val string) {
		if v := value(top, key); v != nil {
			v.Kind, v.Tag, v.Value, v.Style = yaml.ScalarNode, "!!str", val, 0
			return
		}
		top.Content = append([]*yaml.Node{
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
			{Kind: yaml.ScalarNode, Tag: "!!str", Value: val},
		}, top.Content...)
	}
	set("default", name)
	title := "ramboot"
	if v := value(top, "title"); v != nil && v.Value != "" {
		title = v.Value
	}
	set("title", title+" ("+note+")")
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	enc.Close()
	return buf.Bytes(), nil
}

// boots says "1 boot", "2 boots".
func boots(n int) string {
	if n == 1 {
		return "1 boot"
	}
	return fmt.Sprintf("%d boots", n)
}
