package pemkey

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/ramboot/ramboot/internal/vmtest"
)

func pw(s string) func() (string, error) { return func() (string, error) { return s, nil } }

func readPub(t *testing.T) crypto.PublicKey {
	t.Helper()
	b, err := os.ReadFile("testdata/ec.pub")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestEncrypted: keys openssl pkcs8 -topk8 -v2 encrypted (testdata/, password "test") decrypt
// to the key whose public half is testdata/ec.pub; a wrong password is ErrPassword.
func TestEncrypted(t *testing.T) {
	pub := readPub(t).(interface{ Equal(crypto.PublicKey) bool })
	for _, name := range []string{"ec-aes256.key", "ec-aes128.key", "ec-des3.key"} {
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if !Encrypted(text) {
				t.Error("Encrypted = false")
			}
			key, err := PrivateKey(text, pw("test"))
			if err != nil {
				t.Fatal(err)
			}
			if !pub.Equal(key.Public()) {
				t.Error("decrypted another key")
			}
			if _, err := PrivateKey(text, pw("wrong")); !errors.Is(err, ErrPassword) {
				t.Errorf("wrong password: %v, want ErrPassword", err)
			}
			if _, err := PrivateKey(text, nil); err == nil {
				t.Error("decrypted without a password")
			}
		})
	}
}

// TestSnakeoil: Debian's OVMF test key (password "snakeoil") decrypts to the key of its
// certificate.
func TestSnakeoil(t *testing.T) {
	text, err := os.ReadFile("/usr/share/ovmf/PkKek-1-snakeoil.key")
	if err != nil {
		vmtest.Missing(t, "/usr/share/ovmf/PkKek-1-snakeoil.key (ovmf)")
	}
	certText, err := os.ReadFile("/usr/share/ovmf/PkKek-1-snakeoil.pem")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := Certificate(certText)
	if err != nil {
		t.Fatal(err)
	}
	key, err := PrivateKey(text, pw("snakeoil"))
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(cert.PublicKey) {
		t.Error("the snakeoil key is not its certificate's")
	}
}

// TestOpenSSLFormats: the unencrypted forms openssl writes (PKCS #8, PKCS #1, SEC 1) parse.
func TestOpenSSLFormats(t *testing.T) {
	openssl := vmtest.Tool(t, "openssl")
	dir := t.TempDir()
	for name, args := range map[string][]string{
		"pkcs8": {"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "OUT"},
		"pkcs1": {"genrsa", "-traditional", "-out", "OUT", "2048"},
		"sec1":  {"ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "OUT"},
		"pbes2": {"genpkey", "-algorithm", "RSA", "-aes-256-cbc", "-pass", "pass:x", "-out", "OUT"},
	} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, name+".key")
			args = slices.Clone(args)
			args[slices.Index(args, "OUT")] = out
			if b, err := exec.Command(openssl, args...).CombinedOutput(); err != nil {
				t.Fatalf("openssl: %v\n%s", err, b)
			}
			text, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := PrivateKey(text, pw("x")); err != nil {
				t.Errorf("PrivateKey: %v\n%s", err, text[:min(len(text), 64)])
			}
		})
	}
}

func TestNoKey(t *testing.T) {
	if _, err := PrivateKey([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), nil); !errors.Is(err, ErrNoKey) {
		t.Errorf("got %v, want ErrNoKey", err)
	}
	if _, err := Certificate([]byte("nothing")); !errors.Is(err, ErrNoCertificate) {
		t.Errorf("got %v, want ErrNoCertificate", err)
	}
}

// FuzzDecryptPKCS8: any DER decrypts or fails, without panics.
func FuzzDecryptPKCS8(f *testing.F) {
	for _, name := range []string{"ec-aes256.key", "ec-aes128.key", "ec-des3.key"} {
		text, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		blk, _ := pem.Decode(text)
		f.Add(blk.Bytes, "test")
	}
	maxIterations = 5000 // a mutated iteration count must not stall the fuzzer
	f.Fuzz(func(t *testing.T, der []byte, password string) {
		_, _ = DecryptPKCS8(der, password)
	})
}
