// Package pemkey reads the PEM private keys and certificates that sign for Secure Boot, as
// openssl and Debian's tools write them: PKCS #1, SEC 1 and PKCS #8 keys, and PKCS #8 keys
// encrypted with a password (PBES2: PBKDF2 and AES-CBC or triple DES, openssl's defaults old
// and new; Debian's OVMF test key PkKek-1-snakeoil.key is one).
//
// The standard library parses the keys but not PKCS #8 encryption. github.com/youmark/pkcs8
// decrypts it, but is untagged and unchanged since 2024; PBES2 (RFC 8018) is a few lines over
// the standard library's crypto/pbkdf2, so it is written here rather than depended on.
package pemkey

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// ErrNoKey and ErrNoCertificate are returned for PEM text without one.
var (
	ErrNoKey         = errors.New("no PEM private key")
	ErrNoCertificate = errors.New("no PEM certificate")
)

// ErrPassword is returned when an encrypted key does not decrypt with the password given.
var ErrPassword = errors.New("wrong password (or a corrupt key)")

// Certificate is the first certificate of PEM text.
func Certificate(text []byte) (*x509.Certificate, error) {
	for rest := text; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return nil, ErrNoCertificate
		}
		if blk.Type == "CERTIFICATE" {
			return x509.ParseCertificate(blk.Bytes)
		}
	}
}

// Encrypted reports whether PEM text holds an encrypted PKCS #8 key.
func Encrypted(text []byte) bool {
	for rest := text; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return false
		}
		if blk.Type == "ENCRYPTED PRIVATE KEY" {
			return true
		}
	}
}

// PrivateKey is the first private key of PEM text. password is asked only for an encrypted
// key.
func PrivateKey(text []byte, password func() (string, error)) (crypto.Signer, error) {
	for rest := text; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return nil, ErrNoKey
		}
		var key any
		var err error
		switch blk.Type {
		case "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
		case "RSA PRIVATE KEY":
			if _, ok := blk.Headers["DEK-Info"]; ok {
				return nil, errors.New("legacy PEM encryption (DEK-Info): convert the key to PKCS #8 (openssl pkcs8 -topk8)")
			}
			key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
		case "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(blk.Bytes)
		case "ENCRYPTED PRIVATE KEY":
			if password == nil {
				return nil, errors.New("the key is encrypted, and no password was given")
			}
			pw, perr := password()
			if perr != nil {
				return nil, perr
			}
			der, derr := DecryptPKCS8(blk.Bytes, pw)
			if derr != nil {
				return nil, derr
			}
			key, err = x509.ParsePKCS8PrivateKey(der)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("a %T cannot sign", key)
		}
		return signer, nil
	}
}

var (
	oidPBES2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	prfs          = []struct {
		oid asn1.ObjectIdentifier
		h   func() hash.Hash
	}{
		{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}, sha1.New}, // the default
		{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}, sha256.New},
		{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 10}, sha512.New384},
		{asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 11}, sha512.New},
	}
	aesCBC = map[string]int{ // aes128-CBC, aes192-CBC, aes256-CBC: key sizes
		"2.16.840.1.101.3.4.1.2": 16, "2.16.840.1.101.3.4.1.22": 24, "2.16.840.1.101.3.4.1.42": 32,
	}
)

var errMalformed = errors.New("malformed encrypted PKCS #8 key")

// maxIterations bounds PBKDF2's work on a key from outside: openssl writes 2048 (and 600000
// in FIPS setups); 10 million takes seconds. A variable: the fuzz test lowers it.
var maxIterations = 10_000_000

// DecryptPKCS8 decrypts a DER EncryptedPrivateKeyInfo (RFC 5208) encrypted with PBES2
// (RFC 8018: PBKDF2 with HMAC-SHA-1 or SHA-2, then AES-CBC or DES-EDE3-CBC), returning the
// DER PrivateKeyInfo.
func DecryptPKCS8(der []byte, password string) ([]byte, error) {
	s := cryptobyte.String(der)
	var info, alg, params, kdf, kdfParams, scheme, data cryptobyte.String
	var algOID, kdfOID, schemeOID asn1.ObjectIdentifier
	if !s.ReadASN1(&info, cbasn1.SEQUENCE) || !info.ReadASN1(&alg, cbasn1.SEQUENCE) ||
		!alg.ReadASN1ObjectIdentifier(&algOID) {
		return nil, errMalformed
	}
	if !algOID.Equal(oidPBES2) {
		return nil, fmt.Errorf("key encrypted with %v: only PBES2 is supported (openssl pkcs8 -topk8 -v2 aes-256-cbc)", algOID)
	}
	if !alg.ReadASN1(&params, cbasn1.SEQUENCE) ||
		!params.ReadASN1(&kdf, cbasn1.SEQUENCE) || !kdf.ReadASN1ObjectIdentifier(&kdfOID) ||
		!kdf.ReadASN1(&kdfParams, cbasn1.SEQUENCE) ||
		!params.ReadASN1(&scheme, cbasn1.SEQUENCE) || !scheme.ReadASN1ObjectIdentifier(&schemeOID) ||
		!info.ReadASN1(&data, cbasn1.OCTET_STRING) {
		return nil, errMalformed
	}
	if !kdfOID.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("key derivation %v: only PBKDF2 is supported", kdfOID)
	}
	var salt, iv []byte
	var iter int
	if !kdfParams.ReadASN1Bytes(&salt, cbasn1.OCTET_STRING) || !kdfParams.ReadASN1Integer(&iter) {
		return nil, errMalformed
	}
	if iter < 1 || iter > maxIterations {
		return nil, fmt.Errorf("PBKDF2 with %d iterations", iter)
	}
	keyLen := 0
	if kdfParams.PeekASN1Tag(cbasn1.INTEGER) && !kdfParams.ReadASN1Integer(&keyLen) {
		return nil, errMalformed
	}
	prf := prfs[0].h
	if !kdfParams.Empty() {
		var prfAlg cryptobyte.String
		var prfOID asn1.ObjectIdentifier
		if !kdfParams.ReadASN1(&prfAlg, cbasn1.SEQUENCE) || !prfAlg.ReadASN1ObjectIdentifier(&prfOID) {
			return nil, errMalformed
		}
		prf = nil
		for _, p := range prfs {
			if p.oid.Equal(prfOID) {
				prf = p.h
			}
		}
		if prf == nil {
			return nil, fmt.Errorf("PBKDF2 with %v: unsupported", prfOID)
		}
	}
	if !scheme.ReadASN1Bytes(&iv, cbasn1.OCTET_STRING) {
		return nil, errMalformed
	}
	var size int
	var newCipher func([]byte) (cipher.Block, error)
	switch n, ok := aesCBC[schemeOID.String()]; {
	case ok:
		size, newCipher = n, aes.NewCipher
	case schemeOID.Equal(oidDESEDE3CBC):
		size, newCipher = 24, des.NewTripleDESCipher
	default:
		return nil, fmt.Errorf("key encrypted with %v: only AES-CBC and DES-EDE3-CBC are supported", schemeOID)
	}
	if keyLen != 0 && keyLen != size {
		return nil, errMalformed
	}
	key, err := pbkdf2.Key(prf, password, salt, iter, size)
	if err != nil {
		return nil, err
	}
	block, err := newCipher(key)
	if err != nil {
		return nil, err
	}
	bs := block.BlockSize()
	if len(iv) != bs || len(data) == 0 || len(data)%bs != 0 {
		return nil, errMalformed
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	// PKCS #5 padding: a wrong password shows here, or as a key that does not parse.
	pad := int(out[len(out)-1])
	if pad < 1 || pad > bs || !bytes.Equal(out[len(out)-pad:], bytes.Repeat([]byte{byte(pad)}, pad)) {
		return nil, ErrPassword
	}
	out = out[:len(out)-pad]
	if _, err := x509.ParsePKCS8PrivateKey(out); err != nil {
		return nil, ErrPassword
	}
	return out, nil
}
