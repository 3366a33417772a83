package authenticode

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf16"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ramboot/ramboot/internal/peimage"
)

// Sign returns img with an Authenticode signature by key for cert added to its certificate
// table, SHA-256 throughout. An image that is signed already keeps its signatures and gets
// this one after them: the Authenticode digest leaves the table out, so they stay valid, but
// the kernel (kexec, and shim's verification of what it loads) checks only the first, while
// the firmware accepts the image when any signature is trusted by db and none is in dbx.
// RSA keys are what firmware supports; ECDSA keys sign too.
func Sign(img []byte, cert *x509.Certificate, key crypto.Signer) ([]byte, error) {
	if err := checkKey(cert, key); err != nil {
		return nil, err
	}
	l, err := peimage.Parse(img)
	if err != nil {
		return nil, err
	}
	out := slices.Clip(img)
	if !l.Signed() {
		// The table starts on an 8-byte boundary; the padding before it is hashed as trailing
		// data, so it goes in before the digest.
		out = append(out, make([]byte, (8-len(img)%8)%8)...)
		l.CertTableOff = uint32(len(out))
	}
	digest, err := hashLayout(out, l, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	der, err := signedData(digest, cert, key)
	if err != nil {
		return nil, err
	}
	entry := make([]byte, winCertHeader, winCertHeader+len(der)+8)
	binary.LittleEndian.PutUint32(entry, uint32(winCertHeader+len(der)))
	binary.LittleEndian.PutUint16(entry[4:], winCertRevision)
	binary.LittleEndian.PutUint16(entry[6:], winCertPKCS7)
	entry = append(entry, der...)
	entry = append(entry, make([]byte, (8-len(entry)%8)%8)...)
	out = append(out, entry...)
	cd := l.CertDirOff()
	binary.LittleEndian.PutUint32(out[cd:], l.CertTableOff)
	binary.LittleEndian.PutUint32(out[cd+4:], l.CertTableSize+uint32(len(entry)))
	peimage.SetChecksum(out, l)
	return out, nil
}

// checkKey says when key is not cert's.
func checkKey(cert *x509.Certificate, key crypto.Signer) error {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	if !ok || !pub.Equal(cert.PublicKey) {
		return errors.New("signing: the key is not the certificate's")
	}
	switch key.Public().(type) {
	case *rsa.PublicKey, *ecdsa.PublicKey:
		return nil
	}
	return fmt.Errorf("signing: unsupported key type %T (want RSA or ECDSA)", key.Public())
}

// obsolete is the file name Authenticode's SpcPeImageData carries: the specification's
// "<<<Obsolete>>>", as a BMPString.
func obsolete() []byte {
	var b []byte
	for _, r := range utf16.Encode([]rune("<<<Obsolete>>>")) {
		b = binary.BigEndian.AppendUint16(b, r)
	}
	return b
}

// indirectData is the DER of an SpcIndirectDataContent for a PE image whose SHA-256
// Authenticode digest is digest:
//
//	SpcIndirectDataContent ::= SEQUENCE {
//	  data          SEQUENCE { type SPC_PE_IMAGE_DATAOBJ, value SpcPeImageData },
//	  messageDigest DigestInfo }
//	SpcPeImageData ::= SEQUENCE { flags BIT STRING, file [0] SpcLink }
//	SpcLink ::= CHOICE { ..., file [2] SpcString }  SpcString ::= CHOICE { unicode [0] BMPString, ... }
func indirectData(digest []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidSpcPEImageData)
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1BitString(nil)
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.Tag(2).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(obsolete()) })
					})
				})
			})
		})
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addAlgorithm(b, hashOID(crypto.SHA256), true)
			b.AddASN1OctetString(digest)
		})
	})
	return b.Bytes()
}

// addAlgorithm adds an AlgorithmIdentifier, with NULL parameters when null is set.
func addAlgorithm(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, null bool) {
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if null {
			b.AddASN1NULL()
		}
	})
}

// contentOctets are the contents of a DER element: the bytes after its tag and length.
// PKCS #7 digests a SignedData's content so, without the SEQUENCE's tag and length.
func contentOctets(der []byte) []byte {
	s := cryptobyte.String(der)
	var inner cryptobyte.String
	var tag cbasn1.Tag
	if !s.ReadAnyASN1(&inner, &tag) {
		return nil
	}
	return inner
}

// signedAttributes is the DER SET OF Attribute a signer signs: the content type, an empty
// SpcSpOpusInfo (Authenticode's program name and URL, both optional) and the message digest.
// DER sorts a SET OF by encoding.
func signedAttributes(md []byte) ([]byte, error) {
	attr := func(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) ([]byte, error) {
		var b cryptobyte.Builder
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oid)
			b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { value(b) })
		})
		return b.Bytes()
	}
	var attrs [][]byte
	for _, a := range []struct {
		oid   asn1.ObjectIdentifier
		value func(*cryptobyte.Builder)
	}{
		{oidContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(oidSpcIndirectData) }},
		{oidSpcSpOpusInfo, func(b *cryptobyte.Builder) { b.AddASN1(cbasn1.SEQUENCE, func(*cryptobyte.Builder) {}) }},
		{oidMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(md) }},
	} {
		der, err := attr(a.oid, a.value)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, der)
	}
	slices.SortFunc(attrs, bytes.Compare)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			b.AddBytes(a)
		}
	})
	return b.Bytes()
}

// signedData is the DER ContentInfo of a PKCS #7 SignedData, as Authenticode lays it out:
// version 1, SHA-256, the SpcIndirectDataContent as the content, the signer's certificate,
// one SignerInfo with authenticated attributes.
func signedData(digest []byte, cert *x509.Certificate, key crypto.Signer) ([]byte, error) {
	content, err := indirectData(digest)
	if err != nil {
		return nil, fmt.Errorf("encoding indirect data: %w", err)
	}
	md := crypto.SHA256.New()
	md.Write(contentOctets(content))
	attrs, err := signedAttributes(md.Sum(nil))
	if err != nil {
		return nil, fmt.Errorf("encoding signed attributes: %w", err)
	}
	h := crypto.SHA256.New()
	h.Write(attrs)
	sig, err := key.Sign(rand.Reader, h.Sum(nil), crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	sigAlg, null := oidRSA, true
	if _, ok := key.Public().(*ecdsa.PublicKey); ok {
		sigAlg, null = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, false // ecdsa-with-SHA256
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) { addAlgorithm(b, hashOID(crypto.SHA256), true) })
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(oidSpcIndirectData)
					b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(content) })
				})
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(cert.Raw) })
				b.AddASN1(cbasn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1Int64(1)
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(cert.RawIssuer)
							b.AddASN1BigInt(cert.SerialNumber)
						})
						addAlgorithm(b, hashOID(crypto.SHA256), true)
						// [0] IMPLICIT: the SET's contents under another tag.
						b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(contentOctets(attrs)) })
						addAlgorithm(b, sigAlg, null)
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	return b.Bytes()
}
