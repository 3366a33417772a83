package authenticode

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/peimage"
	"github.com/ramboot/ramboot/internal/peimage/peimagetest"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// testKey is a self-signed Secure Boot style signing certificate and its key, also written
// as PEM files for the tools.
type testKey struct {
	cert              *x509.Certificate
	key               crypto.Signer
	certFile, keyFile string
}

func newTestKey(t testing.TB, cn string, key crypto.Signer) testKey {
	t.Helper()
	if key == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		key = k
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"ramboot test"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	k := testKey{cert: cert, key: key, certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

func writeTemp(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runTool(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(vmtest.Tool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func testImage() []byte { return peimagetest.New(peimagetest.Options{}) }

// stubImage is systemd's stub when installed (a real image, with relocations and an odd
// layout), else a made-up one.
func stubImage(t testing.TB) []byte {
	if b, err := os.ReadFile("/usr/lib/systemd/boot/efi/linuxx64.efi.stub"); err == nil {
		return b
	}
	return testImage()
}

func TestSignVerify(t *testing.T) {
	rsaKey := newTestKey(t, "rsa signer", nil)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecKey := newTestKey(t, "ecdsa signer", ec)
	other := newTestKey(t, "someone else", nil)
	for _, k := range []testKey{rsaKey, ecKey} {
		t.Run(k.cert.Subject.CommonName, func(t *testing.T) {
			img := testImage()
			signed, err := Sign(img, k.cert, k.key)
			if err != nil {
				t.Fatal(err)
			}
			if !onlyHeaderChanged(t, img, signed) {
				t.Error("signing changed the image beyond the checksum and certificate table entry")
			}
			sigs, err := Signatures(signed)
			if err != nil {
				t.Fatal(err)
			}
			if len(sigs) != 1 {
				t.Fatalf("got %d signatures, want 1", len(sigs))
			}
			s := sigs[0]
			if err := s.Verify(signed); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if got, want := s.Subject().CommonName, k.cert.Subject.CommonName; got != want {
				t.Errorf("signer %q, want %q", got, want)
			}
			if !s.TrustedBy(k.cert) {
				t.Error("not trusted by its own certificate")
			}
			if s.TrustedBy(other.cert) {
				t.Error("trusted by another certificate")
			}
			// One byte changed anywhere hashed: the digest no longer matches.
			bad := bytes.Clone(signed)
			bad[len(img)-1] ^= 1
			if err := s.Verify(bad); err == nil {
				t.Error("Verify accepted a changed image")
			}
			l, _ := peimage.Parse(signed)
			if got := peimage.Checksum(signed, l.ChecksumOff); got != leUint32(signed[l.ChecksumOff:]) {
				t.Errorf("checksum %#x in the header, %#x computed", leUint32(signed[l.ChecksumOff:]), got)
			}
		})
	}
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// onlyHeaderChanged reports whether signed differs from img, in img's length, only in the
// checksum and the certificate table's directory entry.
func onlyHeaderChanged(t *testing.T, img, signed []byte) bool {
	l, err := peimage.Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	a, b := bytes.Clone(img), bytes.Clone(signed[:len(img)])
	for _, off := range []int{l.ChecksumOff, l.CertDirOff(), l.CertDirOff() + 4} {
		clear(a[off : off+4])
		clear(b[off : off+4])
	}
	return bytes.Equal(a, b)
}

func TestSignTwice(t *testing.T) {
	k1, k2 := newTestKey(t, "first", nil), newTestKey(t, "second", nil)
	once, err := Sign(testImage(), k1.cert, k1.key)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := Sign(once, k2.cert, k2.key)
	if err != nil {
		t.Fatal(err)
	}
	sigs, err := Signatures(twice)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 2 {
		t.Fatalf("got %d signatures, want 2", len(sigs))
	}
	for i, want := range []string{"first", "second"} {
		if got := sigs[i].Subject().CommonName; got != want {
			t.Errorf("signature %d by %q, want %q", i+1, got, want)
		}
		if err := sigs[i].Verify(twice); err != nil {
			t.Errorf("signature %d: %v", i+1, err)
		}
	}
}

func TestNotSigned(t *testing.T) {
	if _, err := Signatures(testImage()); !errors.Is(err, ErrNotSigned) {
		t.Errorf("Signatures of an unsigned image: %v, want ErrNotSigned", err)
	}
}

func TestSignWrongKey(t *testing.T) {
	k1, k2 := newTestKey(t, "first", nil), newTestKey(t, "second", nil)
	if _, err := Sign(testImage(), k1.cert, k2.key); err == nil {
		t.Error("Sign with another certificate's key succeeded")
	}
}

// TestSbverifyAcceptsOurs: sbsigntool's verifier accepts our signature with the signer's
// certificate, and refuses it with another, and once the image changed.
func TestSbverifyAcceptsOurs(t *testing.T) {
	vmtest.Tool(t, "sbverify")
	k, other := newTestKey(t, "ramboot db key", nil), newTestKey(t, "other", nil)
	signed, err := Sign(stubImage(t), k.cert, k.key)
	if err != nil {
		t.Fatal(err)
	}
	f := writeTemp(t, "signed.efi", signed)
	runTool(t, "sbverify", "--cert", k.certFile, f)
	if out, err := exec.Command("sbverify", "--cert", other.certFile, f).CombinedOutput(); err == nil {
		t.Errorf("sbverify accepted the signature with another certificate:\n%s", out)
	}
	if out := runTool(t, "sbverify", "--list", f); !strings.Contains(out, "ramboot db key") {
		t.Errorf("sbverify --list does not name the signer:\n%s", out)
	}
	bad := bytes.Clone(signed)
	bad[0x500] ^= 1
	if out, err := exec.Command("sbverify", "--cert", k.certFile, writeTemp(t, "bad.efi", bad)).CombinedOutput(); err == nil {
		t.Errorf("sbverify accepted a changed image:\n%s", out)
	}
}

// TestOsslsigncodeVerifiesOurs: a second, independent verifier (osslsigncode) agrees.
func TestOsslsigncodeVerifiesOurs(t *testing.T) {
	vmtest.Tool(t, "osslsigncode")
	k := newTestKey(t, "ramboot db key", nil)
	signed, err := Sign(stubImage(t), k.cert, k.key)
	if err != nil {
		t.Fatal(err)
	}
	out := runTool(t, "osslsigncode", "verify", "-CAfile", k.certFile, "-in", writeTemp(t, "signed.efi", signed))
	want, _ := Hash(signed, crypto.SHA256)
	if !strings.Contains(strings.ToLower(out), hex.EncodeToString(want)) {
		t.Errorf("osslsigncode's output does not show our digest %x:\n%s", want, out)
	}
}

// TestWeVerifySbsign: sbsign's signature is accepted by our verifier, and the digest sbsign
// signed is the one Hash computes.
func TestWeVerifySbsign(t *testing.T) {
	vmtest.Tool(t, "sbsign")
	k := newTestKey(t, "sbsign key", nil)
	for name, img := range map[string][]byte{"stub": stubImage(t), "made up": testImage()} {
		t.Run(name, func(t *testing.T) {
			in := writeTemp(t, "in.efi", img)
			out := in + ".signed"
			runTool(t, "sbsign", "--key", k.keyFile, "--cert", k.certFile, "--output", out, in)
			signed, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			checkForeign(t, signed, k)
		})
	}
}

// TestHashOsslsigncode: osslsigncode's signature, made with its own Authenticode digest, is
// accepted by our verifier: the digests agree.
func TestHashOsslsigncode(t *testing.T) {
	vmtest.Tool(t, "osslsigncode")
	k := newTestKey(t, "osslsigncode key", nil)
	in := writeTemp(t, "in.efi", stubImage(t))
	out := in + ".signed"
	runTool(t, "osslsigncode", "sign", "-certs", k.certFile, "-key", k.keyFile, "-h", "sha256", "-in", in, "-out", out)
	signed, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	checkForeign(t, signed, k)
}

// TestHashPesign: pesign's own computation of the digest (pesign -h) is ours.
func TestHashPesign(t *testing.T) {
	vmtest.Tool(t, "pesign")
	img := stubImage(t)
	out := runTool(t, "pesign", "-h", "-i", writeTemp(t, "in.efi", img))
	got, err := Hash(img, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`[0-9a-f]{64}`).FindString(strings.ToLower(out))
	if m != hex.EncodeToString(got) {
		t.Errorf("pesign -h: %q, Hash: %x", out, got)
	}
}

func checkForeign(t *testing.T, signed []byte, k testKey) {
	t.Helper()
	sigs, err := Signatures(signed)
	if err != nil {
		t.Fatal(err)
	}
	if len(sigs) != 1 {
		t.Fatalf("%d signatures, want 1", len(sigs))
	}
	got, err := Hash(signed, sigs[0].ImageHash)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, sigs[0].ImageDigest) {
		t.Errorf("our digest %x, the tool signed %x", got, sigs[0].ImageDigest)
	}
	if err := sigs[0].Verify(signed); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if !sigs[0].TrustedBy(k.cert) {
		t.Error("not trusted by the signing certificate")
	}
}
