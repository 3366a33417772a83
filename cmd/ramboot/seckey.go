package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"aead.dev/minisign"
)

// loadSecretKey reads a minisign secret key (ramboot keygen's or minisign -G's), asking for its
// password (the first line of passwordFile, else on the terminal) when it is encrypted.
func loadSecretKey(ctx context.Context, file, passwordFile string, stderr io.Writer) (minisign.PrivateKey, error) {
	var sec minisign.PrivateKey
	text, err := os.ReadFile(file)
	if err != nil {
		return sec, err
	}
	if !minisign.IsEncrypted(text) {
		if err := sec.UnmarshalText(text); err != nil {
			return sec, fmt.Errorf("%s: %w", file, err)
		}
		return sec, nil
	}
	pw, err := readPassword(ctx, passwordFile, "password for "+file+": ", false, stderr)
	if err != nil {
		return sec, err
	}
	if sec, err = minisign.DecryptKey(pw, text); err != nil {
		return sec, fmt.Errorf("%s: %w", file, err)
	}
	return sec, nil
}
