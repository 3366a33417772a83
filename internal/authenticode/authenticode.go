// Package authenticode signs and verifies PE images (EFI applications) the way UEFI Secure
// Boot, shim and the kernel's kexec check them: an Authenticode signature, a PKCS #7
// SignedData over an SpcIndirectDataContent that holds the image's digest, in the image's
// attribute certificate table.
//
// The PKCS #7 encoding is written here, from the PKCS #7 (RFC 2315) and Microsoft's
// "Windows Authenticode Portable Executable Signature Format" specifications, with
// golang.org/x/crypto/cryptobyte (already a dependency) for the DER: the maintained Go PKCS #7
// modules (github.com/smallstep/pkcs7, go.mozilla.org/pkcs7, which is archived) can only sign
// id-data content wrapped in an OCTET STRING, while Authenticode needs the content to be an
// SpcIndirectDataContent SEQUENCE of its own content type, digested without its tag and
// length; github.com/foxboron/go-uefi, which does that, is not served by the module proxy.
package authenticode

import (
	"crypto"
	"encoding/asn1"
	"errors"
	"fmt"
	"slices"

	"github.com/ramboot/ramboot/internal/peimage"
)

// Object identifiers of the structures written and read here.
var (
	oidSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidSpcIndirectData = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 4}
	oidSpcPEImageData  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 15}
	oidSpcSpOpusInfo   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 2, 1, 12}
	oidContentType     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidRSA             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidECPublicKey     = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
)

// digestOIDs are the digest algorithms an image's digest and a signer's may use.
var digestOIDs = []struct {
	oid  asn1.ObjectIdentifier
	hash crypto.Hash
}{
	{asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}, crypto.SHA1},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, crypto.SHA256},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}, crypto.SHA384},
	{asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}, crypto.SHA512},
}

func hashOID(h crypto.Hash) asn1.ObjectIdentifier {
	for _, d := range digestOIDs {
		if d.hash == h {
			return d.oid
		}
	}
	return nil
}

func oidHash(oid asn1.ObjectIdentifier) (crypto.Hash, error) {
	for _, d := range digestOIDs {
		if d.oid.Equal(oid) {
			return d.hash, nil
		}
	}
	return 0, fmt.Errorf("unsupported digest algorithm %v", oid)
}

// WIN_CERTIFICATE (PE/COFF specification, "The Attribute Certificate Table").
const (
	winCertHeader   = 8
	winCertRevision = 0x0200
	winCertPKCS7    = 0x0002
)

// Hash is the Authenticode digest of a PE image: the headers without the checksum and the
// certificate table's data directory entry, then each section's data in file order, then
// whatever follows the sections up to the certificate table, which is left out (and must be
// at the end of the file, as the specification assumes).
func Hash(img []byte, h crypto.Hash) ([]byte, error) {
	l, err := peimage.Parse(img)
	if err != nil {
		return nil, err
	}
	return hashLayout(img, l, h)
}

func hashLayout(img []byte, l *peimage.Layout, h crypto.Hash) ([]byte, error) {
	if !h.Available() {
		return nil, fmt.Errorf("hashing image: digest %v not available", h)
	}
	cd := l.CertDirOff()
	if cd < 0 {
		return nil, errors.New("hashing image: no certificate table data directory")
	}
	end := len(img)
	if l.Signed() {
		if int(l.CertTableOff)+int(l.CertTableSize) != len(img) {
			return nil, fmt.Errorf("hashing image: the certificate table (%#x bytes at %#x) is not at the end of the file (%#x bytes)",
				l.CertTableSize, l.CertTableOff, len(img))
		}
		end = int(l.CertTableOff)
	}
	d := h.New()
	d.Write(img[:l.ChecksumOff])
	d.Write(img[l.ChecksumOff+4 : cd])
	d.Write(img[cd+8 : l.SizeOfHeaders])
	secs := slices.Clone(l.Sections)
	slices.SortStableFunc(secs, func(a, b peimage.Section) int { return int(a.PointerToRaw) - int(b.PointerToRaw) })
	hashed := int(l.SizeOfHeaders)
	for _, s := range secs {
		if s.SizeOfRawData == 0 {
			continue
		}
		d.Write(img[s.PointerToRaw : s.PointerToRaw+s.SizeOfRawData])
		hashed += int(s.SizeOfRawData)
	}
	if hashed < end {
		d.Write(img[hashed:end])
	}
	return d.Sum(nil), nil
}
