package trust

import (
	"crypto/rand"
	"testing"

	"aead.dev/minisign"
)

// FuzzSignature: a .minisig comes from the network; no input may panic /init, and only a
// signature by the anchor over the data verifies.
func FuzzSignature(f *testing.F) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	data := []byte("entries: []\n")
	f.Add(prehashed(priv, "timestamp:1\tfile:menu.yaml\thashed", data))
	f.Add(minisign.SignWithComments(priv, data, "file:menu.yaml", "legacy"))
	f.Add([]byte("untrusted comment: x\n\n\ntrusted comment: file:menu.yaml\n"))
	p := &Policy{Keys: []minisign.PublicKey{pub}}
	f.Fuzz(func(t *testing.T, sig []byte) {
		_, verr := p.Verify("menu.yaml", data, sig)
		if v, err := p.NewStream([]string{"http://boot/menu.yaml"}, sig); err == nil {
			v.Write(data)
			if serr := v.Verify(); (serr == nil) != (verr == nil) {
				t.Fatalf("Verify says %v, the stream %v", verr, serr)
			}
		}
	})
}
