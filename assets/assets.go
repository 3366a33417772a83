// Package assets holds ramboot's embedded defaults as files a person edits, not Go code: the
// built-in boot menu /init falls back to, and the demo's menu (make demo serves it).
package assets

import _ "embed"

// BuiltinMenu is builtin.yaml: the entries of the menu /init shows when no other is found.
//
//go:embed builtin.yaml
var BuiltinMenu []byte

// DemoMenu is demo.yaml, the menu of make demo.
//
//go:embed demo.yaml
var DemoMenu []byte
