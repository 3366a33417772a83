package authenticode

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/ramboot/ramboot/internal/peimage"
)

// ErrNotSigned is returned by Signatures for an image without a certificate table.
var ErrNotSigned = errors.New("not signed")

// Signature is one Authenticode signature of an image, as parsed; Verify checks it.
type Signature struct {
	ImageHash    crypto.Hash // the digest algorithm of ImageDigest
	ImageDigest  []byte      // the image's Authenticode digest, as signed
	Signer       *x509.Certificate
	Certificates []*x509.Certificate // all the SignedData carries, the signer's among them

	digestHash crypto.Hash // the signer's digest algorithm
	content    []byte      // the SpcIndirectDataContent's content octets
	signed     []byte      // what the signature is over: the attributes as a SET, or content
	md         []byte      // the messageDigest attribute (nil without attributes)
	sigAlg     asn1.ObjectIdentifier
	sig        []byte
}

// Signatures parses the certificate table of img: its PKCS #7 Authenticode signatures, in
// table order (the kernel and shim check only the first). ErrNotSigned when it has none.
func Signatures(img []byte) ([]*Signature, error) {
	l, err := peimage.Parse(img)
	if err != nil {
		return nil, err
	}
	if !l.Signed() {
		return nil, ErrNotSigned
	}
	table := img[l.CertTableOff : l.CertTableOff+l.CertTableSize]
	var sigs []*Signature
	for off := 0; off < len(table); {
		if len(table)-off < winCertHeader {
			return nil, fmt.Errorf("certificate table: %d stray bytes at its end", len(table)-off)
		}
		n := int(binary.LittleEndian.Uint32(table[off:]))
		rev, typ := binary.LittleEndian.Uint16(table[off+4:]), binary.LittleEndian.Uint16(table[off+6:])
		if n < winCertHeader || n > len(table)-off {
			return nil, fmt.Errorf("certificate table entry %d: length %d out of the table's %d bytes", len(sigs)+1, n, len(table)-off)
		}
		if rev != winCertRevision || typ != winCertPKCS7 {
			return nil, fmt.Errorf("certificate table entry %d: revision %#x type %#x, not a PKCS #7 signature", len(sigs)+1, rev, typ)
		}
		s, err := ParseSignedData(table[off+winCertHeader : off+n])
		if err != nil {
			return nil, fmt.Errorf("certificate table entry %d: %w", len(sigs)+1, err)
		}
		sigs = append(sigs, s)
		off += (n + 7) &^ 7
	}
	return sigs, nil
}

var errMalformed = errors.New("malformed PKCS #7 SignedData")

// ParseSignedData parses a DER PKCS #7 ContentInfo holding an Authenticode SignedData (with
// trailing padding allowed). It checks the structure, not the signature: see Verify.
func ParseSignedData(der []byte) (*Signature, error) {
	s := cryptobyte.String(der)
	var ci, sd cryptobyte.String
	var ctype asn1.ObjectIdentifier
	if !s.ReadASN1(&ci, cbasn1.SEQUENCE) || !ci.ReadASN1ObjectIdentifier(&ctype) {
		return nil, errMalformed
	}
	if !ctype.Equal(oidSignedData) {
		return nil, fmt.Errorf("content type %v, not signedData", ctype)
	}
	if !ci.ReadASN1(&sd, cbasn1.Tag(0).Constructed().ContextSpecific()) || !sd.ReadASN1(&sd, cbasn1.SEQUENCE) {
		return nil, errMalformed
	}
	var version int64
	var digestAlgs, inner, content, certs, signerInfos cryptobyte.String
	var hasCerts bool
	if !sd.ReadASN1Integer(&version) || !sd.ReadASN1(&digestAlgs, cbasn1.SET) ||
		!sd.ReadASN1(&inner, cbasn1.SEQUENCE) || !inner.ReadASN1ObjectIdentifier(&ctype) ||
		!inner.ReadASN1(&content, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!sd.ReadOptionalASN1(&certs, &hasCerts, cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!sd.SkipOptionalASN1(cbasn1.Tag(1).Constructed().ContextSpecific()) ||
		!sd.ReadASN1(&signerInfos, cbasn1.SET) {
		return nil, errMalformed
	}
	if !ctype.Equal(oidSpcIndirectData) {
		return nil, fmt.Errorf("signed content type %v, not Authenticode's SpcIndirectDataContent", ctype)
	}
	sig := &Signature{}
	var err error
	if sig.content, sig.ImageHash, sig.ImageDigest, err = parseIndirectData(content); err != nil {
		return nil, err
	}
	for !certs.Empty() {
		var c cryptobyte.String
		if !certs.ReadASN1Element(&c, cbasn1.SEQUENCE) {
			return nil, errMalformed
		}
		cert, err := x509.ParseCertificate(c)
		if err != nil {
			return nil, fmt.Errorf("parsing a certificate: %w", err)
		}
		sig.Certificates = append(sig.Certificates, cert)
	}
	var si cryptobyte.String
	if !signerInfos.ReadASN1(&si, cbasn1.SEQUENCE) {
		return nil, errors.New("no signer")
	}
	if !signerInfos.Empty() {
		return nil, errors.New("more than one signer (Authenticode has one)")
	}
	if err := sig.parseSignerInfo(si); err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return sig, nil
}

// parseIndirectData reads an SpcIndirectDataContent: its content octets and its DigestInfo.
func parseIndirectData(s cryptobyte.String) (content []byte, h crypto.Hash, digest []byte, err error) {
	var seq, data, di, alg cryptobyte.String
	var typ, algOID asn1.ObjectIdentifier
	if !s.ReadASN1(&seq, cbasn1.SEQUENCE) {
		return nil, 0, nil, errMalformed
	}
	content = seq
	if !seq.ReadASN1(&data, cbasn1.SEQUENCE) || !data.ReadASN1ObjectIdentifier(&typ) ||
		!seq.ReadASN1(&di, cbasn1.SEQUENCE) || !di.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&algOID) || !di.ReadASN1Bytes(&digest, cbasn1.OCTET_STRING) {
		return nil, 0, nil, errors.New("malformed SpcIndirectDataContent")
	}
	if !typ.Equal(oidSpcPEImageData) {
		return nil, 0, nil, fmt.Errorf("indirect data of type %v, not a PE image's", typ)
	}
	if h, err = oidHash(algOID); err != nil {
		return nil, 0, nil, fmt.Errorf("image digest: %w", err)
	}
	if len(digest) != h.Size() {
		return nil, 0, nil, fmt.Errorf("image digest: %d bytes for %v", len(digest), h)
	}
	return content, h, digest, nil
}

func (sig *Signature) parseSignerInfo(si cryptobyte.String) error {
	var version int64
	var ias, issuer, alg, encAlg, attrs cryptobyte.String
	var serial big.Int
	var algOID asn1.ObjectIdentifier
	var hasAttrs bool
	if !si.ReadASN1Integer(&version) || !si.ReadASN1(&ias, cbasn1.SEQUENCE) ||
		!ias.ReadASN1Element(&issuer, cbasn1.SEQUENCE) || !ias.ReadASN1Integer(&serial) ||
		!si.ReadASN1(&alg, cbasn1.SEQUENCE) || !alg.ReadASN1ObjectIdentifier(&algOID) {
		return errors.New("malformed SignerInfo (or not identified by issuer and serial number)")
	}
	attrsTag := cbasn1.Tag(0).Constructed().ContextSpecific()
	if hasAttrs = si.PeekASN1Tag(attrsTag); hasAttrs && !si.ReadASN1Element(&attrs, attrsTag) {
		return errors.New("malformed authenticated attributes")
	}
	if !si.ReadASN1(&encAlg, cbasn1.SEQUENCE) || !encAlg.ReadASN1ObjectIdentifier(&sig.sigAlg) ||
		!si.ReadASN1Bytes(&sig.sig, cbasn1.OCTET_STRING) {
		return errors.New("malformed SignerInfo")
	}
	var err error
	if sig.digestHash, err = oidHash(algOID); err != nil {
		return err
	}
	for _, c := range sig.Certificates {
		if bytes.Equal(c.RawIssuer, issuer) && c.SerialNumber.Cmp(&serial) == 0 {
			sig.Signer = c
			break
		}
	}
	if sig.Signer == nil {
		return fmt.Errorf("the signer's certificate (serial %s) is not in the signature", serial.String())
	}
	if !hasAttrs {
		sig.signed = sig.content
		return nil
	}
	// The signature is over the attributes as a SET OF: the [0] IMPLICIT element, retagged.
	sig.signed = append([]byte{0x31}, attrs[1:]...)
	var set cryptobyte.String
	if !attrs.ReadASN1(&set, attrsTag) {
		return errMalformed
	}
	var ctype asn1.ObjectIdentifier
	for !set.Empty() {
		var a, vals cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !set.ReadASN1(&a, cbasn1.SEQUENCE) || !a.ReadASN1ObjectIdentifier(&oid) || !a.ReadASN1(&vals, cbasn1.SET) {
			return errors.New("malformed authenticated attribute")
		}
		switch {
		case oid.Equal(oidContentType):
			if !vals.ReadASN1ObjectIdentifier(&ctype) {
				return errors.New("malformed content type attribute")
			}
		case oid.Equal(oidMessageDigest):
			var md []byte
			if !vals.ReadASN1Bytes(&md, cbasn1.OCTET_STRING) {
				return errors.New("malformed message digest attribute")
			}
			sig.md = md
		}
	}
	if !ctype.Equal(oidSpcIndirectData) {
		return fmt.Errorf("content type attribute %v, not SpcIndirectDataContent", ctype)
	}
	if sig.md == nil {
		return errors.New("no message digest attribute")
	}
	return nil
}

// Subject is the signer's subject, as a distinguished name.
func (sig *Signature) Subject() pkix.Name { return sig.Signer.Subject }

// Verify checks that sig signs img: img's Authenticode digest is the one signed, the
// message digest is the signed content's, and the signer's key made the signature. It does
// not say whom to trust: see TrustedBy.
func (sig *Signature) Verify(img []byte) error {
	got, err := Hash(img, sig.ImageHash)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, sig.ImageDigest) {
		return errors.New("the image's digest is not the one signed: the image changed after signing")
	}
	if sig.md != nil {
		h := sig.digestHash.New()
		h.Write(sig.content)
		if !bytes.Equal(h.Sum(nil), sig.md) {
			return errors.New("the message digest attribute is not the signed content's")
		}
	}
	if err := checkSignature(sig.Signer.PublicKey, sig.sigAlg, sig.digestHash, sig.signed, sig.sig); err != nil {
		return fmt.Errorf("the signature does not verify with the signer's key: %w", err)
	}
	return nil
}

// checkSignature verifies a PKCS #1 v1.5 RSA or an ECDSA signature over signed.
// digestEncryptionAlgorithm is rsaEncryption in Authenticode, but signers also write
// sha256WithRSAEncryption and the like: the key says which scheme, the signer's digest
// algorithm which hash.
func checkSignature(pub crypto.PublicKey, alg asn1.ObjectIdentifier, h crypto.Hash, signed, sig []byte) error {
	if !h.Available() {
		return fmt.Errorf("digest %v not available", h)
	}
	d := h.New()
	d.Write(signed)
	sum := d.Sum(nil)
	switch pub := pub.(type) {
	case *rsa.PublicKey:
		if len(alg) < 6 || !alg[:6].Equal(oidRSA[:6]) {
			return fmt.Errorf("algorithm %v with an RSA key", alg)
		}
		return rsa.VerifyPKCS1v15(pub, h, sum, sig)
	case *ecdsa.PublicKey:
		if len(alg) < 4 || !alg[:4].Equal(oidECPublicKey[:4]) {
			return fmt.Errorf("algorithm %v with an ECDSA key", alg)
		}
		if !ecdsa.VerifyASN1(pub, sum, sig) {
			return errors.New("ecdsa: verification error")
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", pub)
}

// TrustedBy reports whether sig's signer is ca, or was issued by ca through the certificates
// the signature carries. As firmware does, it checks signatures only: not validity dates,
// key usage or revocation.
func (sig *Signature) TrustedBy(ca *x509.Certificate) bool {
	c := sig.Signer
	for range len(sig.Certificates) + 1 {
		if c.Equal(ca) || c.CheckSignatureFrom(ca) == nil {
			return true
		}
		var parent *x509.Certificate
		for _, p := range sig.Certificates {
			if p != c && bytes.Equal(p.RawSubject, c.RawIssuer) && c.CheckSignatureFrom(p) == nil {
				parent = p
				break
			}
		}
		if parent == nil {
			return false
		}
		c = parent
	}
	return false
}
