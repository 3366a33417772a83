package authenticode

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"github.com/ramboot/ramboot/internal/peimage"
)

// TestSbsignTestdata: testdata/sbsign.efi, a made-up image that sbsign signed (with
// testdata/sbsign.pem), verifies here without sbsigntool installed.
func TestSbsignTestdata(t *testing.T) {
	img, err := os.ReadFile("testdata/sbsign.efi")
	if err != nil {
		t.Fatal(err)
	}
	p, err := os.ReadFile("testdata/sbsign.pem")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(p)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	checkForeign(t, img, testKey{cert: cert})
}

// seedImages are signed images: sbsign's, and one signed here twice.
func seedImages(f *testing.F) [][]byte {
	var seeds [][]byte
	if b, err := os.ReadFile("testdata/sbsign.efi"); err == nil {
		seeds = append(seeds, b)
	}
	// ECDSA: generating an RSA key takes minutes in a fuzzing build's instrumented math/big.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	k := newTestKey(f, "fuzz", ec)
	once, err := Sign(testImage(), k.cert, k.key)
	if err != nil {
		f.Fatal(err)
	}
	twice, err := Sign(once, k.cert, k.key)
	if err != nil {
		f.Fatal(err)
	}
	return append(seeds, once, twice)
}

// FuzzSignatures: the certificate table of any image parses or fails, without panics, and
// so does hashing the image. (Not Verify's public-key operations: in a fuzzing build's
// instrumented crypto each takes seconds, and they are the standard library's.)
func FuzzSignatures(f *testing.F) {
	for _, s := range seedImages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, img []byte) {
		sigs, err := Signatures(img)
		if err != nil {
			return
		}
		for _, s := range sigs {
			if _, err := Hash(img, s.ImageHash); err != nil {
				t.Fatalf("parsed signatures, but hashing failed: %v", err)
			}
		}
	})
}

// FuzzParseSignedData: any DER given as a signature parses or fails, without panics.
func FuzzParseSignedData(f *testing.F) {
	for _, img := range seedImages(f) {
		l, err := peimage.Parse(img)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(img[l.CertTableOff+winCertHeader : l.CertTableOff+l.CertTableSize])
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		s, err := ParseSignedData(der)
		if err != nil {
			return
		}
		if s.Signer == nil {
			t.Fatal("parsed without a signer")
		}
	})
}
