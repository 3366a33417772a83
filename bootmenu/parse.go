package bootmenu

import (
	"bytes"
	"errors"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ErrUnknownFormat is returned (wrapped) by Parse for data that is neither a YAML menu nor a
// pxelinux config.
var ErrUnknownFormat = errors.New("neither a YAML menu (a mapping with entries) nor a pxelinux config (label, default or kernel lines)")

// Options are the less common settings of ParseWith.
type Options struct {
	// Base is what relative URLs resolve against, when it is not the source itself (a menu
	// checked from a local copy but served from Base).
	Base string
	// Include fetches a pxelinux include, given its resolved URL. Nil makes an include an
	// error (ErrInclude). It should read no more than MaxMenuSize+1 bytes (ReadAll) and
	// only regular files: an include of more is refused (ErrTooLarge) once returned.
	Include func(url string) ([]byte, error)
}

// Parse parses and validates a menu in either format, told apart by content (not by name):
// a YAML mapping with an entries key is a YAML menu (ParseYAML), lines starting with label,
// default or kernel make a pxelinux config (ParsePXELinux). source names the menu in errors
// and, when it is a URL or an absolute path, is what relative URLs resolve against. Data
// larger than MaxMenuSize is refused (ErrTooLarge).
func Parse(data []byte, source string) (*Menu, error) {
	return ParseWith(data, source, Options{})
}

// ParseWith is Parse with options.
func ParseWith(data []byte, source string, opt Options) (*Menu, error) {
	if len(data) > MaxMenuSize {
		return nil, &Error{Source: source, Err: ErrTooLarge}
	}
	base := source
	if opt.Base != "" {
		base = opt.Base
	}
	switch detect(data) {
	case FormatYAML:
		return parseYAML(data, source, base)
	case FormatPXELinux:
		return parsePXELinux(data, source, opt)
	case "yaml?":
		// A YAML mapping without entries: the YAML parser says what is wrong with it
		// ("unknown key "entires"") better than a generic message.
		return parseYAML(data, source, base)
	}
	return nil, &Error{Source: source, Err: ErrUnknownFormat}
}

// detect returns FormatYAML for a YAML mapping with an entries key, FormatPXELinux for a
// pxelinux config, "yaml?" for another YAML mapping and "" for anything else.
func detect(data []byte) string {
	var doc yaml.Node
	isMapping := false
	if err := unmarshalYAML(data, &doc); err != nil {
		// Broken YAML that meant to be a menu: the YAML parser's error names the line.
		if hasKeyword(data, "entries:") {
			return "yaml?"
		}
	} else if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		if top := doc.Content[0]; top.Kind == yaml.MappingNode {
			isMapping = true
			for i := 0; i+1 < len(top.Content); i += 2 {
				if top.Content[i].Kind == yaml.ScalarNode && top.Content[i].Value == "entries" {
					return FormatYAML
				}
			}
		}
	}
	if hasKeyword(data, "label", "default", "kernel", "include", "ui", "menu") {
		return FormatPXELinux
	}
	if isMapping {
		return "yaml?"
	}
	return ""
}

// hasKeyword reports whether a line starts with one of the keywords (ignoring case), followed
// by a space or the end of the line.
func hasKeyword(data []byte, keywords ...string) bool {
	for line := range bytes.Lines(data) {
		kw, _, _ := strings.Cut(strings.TrimSpace(strings.ReplaceAll(string(line), "\t", " ")), " ")
		for _, k := range keywords {
			if strings.EqualFold(kw, k) {
				return true
			}
		}
	}
	return false
}
