package loader

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
)

// ErrVerify marks a failure of one of Options.Verifiers: the bytes arrived whole and matched
// any checksum, but a verifier (a signature) refused them.
var ErrVerify = errors.New("verification failed")

// Verifier checks a file as it streams: it is Reset at the start of every attempt, sees every
// byte of the download once, in order (resumed ranges included), and its Verify decides once
// the last byte arrived, before the image's root is finished (Load) or the file is kept
// (Download). A signature over the file's digest is one.
type Verifier interface {
	io.Writer
	Reset()
	Verify() error
}

// teeHash is the loader's sha256 that also feeds the verifiers: the stream is read once.
type teeHash struct {
	hash.Hash
	vs []Verifier
}

func (t *teeHash) Write(p []byte) (int, error) {
	for _, v := range t.vs {
		if _, err := v.Write(p); err != nil {
			return 0, err
		}
	}
	return t.Hash.Write(p)
}

// newHash is the hash of one attempt: sha256, with the verifiers reset and fed alongside.
func (opts *Options) newHash() hash.Hash {
	if len(opts.Verifiers) == 0 {
		return sha256.New()
	}
	for _, v := range opts.Verifiers {
		v.Reset()
	}
	return &teeHash{Hash: sha256.New(), vs: opts.Verifiers}
}

// verify runs the verifiers once every byte arrived.
func (opts *Options) verify() error {
	for _, v := range opts.Verifiers {
		if err := v.Verify(); err != nil {
			return fmt.Errorf("%w: %w", ErrVerify, err)
		}
	}
	return nil
}
