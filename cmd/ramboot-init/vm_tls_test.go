package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// serveTLS serves dir over HTTPS with a fresh self-signed certificate for 10.0.2.2 (the host as
// the guest sees it); it returns the base URL and the certificate's PEM file.
func serveTLS(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ramboot test server"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("10.0.2.2"), net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir)), TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
	go srv.ServeTLS(l, "", "")
	t.Cleanup(func() { srv.Close() })
	return fmt.Sprintf("https://10.0.2.2:%d", l.Addr().(*net.TCPAddr).Port), caFile
}

// TestVMHTTPSEntropy boots over HTTPS on QEMU's default CPU model without an RNG device: TLS
// needs the kernel's random pool, and when the pool is not ready at the fetch /init says so
// once on the console, waits, and boots.
func TestVMHTTPSEntropy(t *testing.T) {
	setup(t)
	base, ca := serveTLS(t, built.dir)
	initrd := filepath.Join(built.dir, "tls.cpio.zst")
	if err := writeInitramfs(initrd, initramfs.Spec{Init: filepath.Join(built.dir, "ramboot-init"), Modules: built.kernel.Modules, CA: ca}); err != nil {
		t.Fatal(err)
	}
	vm := vmtest.Start(t, vmtest.Options{
		Kernel: built.kernel, Initrd: initrd, CPU: "default",
		Append: fmt.Sprintf("ramroot=%s/rootfs.tar.zst ramroot.sha256=%s BOOTIF=%s ramboot.onerror=poweroff",
			base, built.sums["rootfs.tar.zst"], bootif(mac1)),
		NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac1}},
	})
	vm.Expect(`TESTINIT-MARKER ramroot-ok`, bootTimeout)
	t.Logf("QEMU start → marker over https on the default CPU model: %v", vm.Elapsed().Round(100*time.Millisecond))
	vm.Wait(time.Minute)
	c := vm.Console()
	const msg = "waiting for the kernel's random pool (add virtio-rng or random.trust_cpu=on)"
	fetch := strings.Index(c, "ramboot: fetching https://")
	said := strings.Index(c, msg)
	ready := strings.Index(c, "crng init done")
	// Counted on the console, not in the booted system's copy of the kernel log.
	switch n := strings.Count(c, "] ramboot: "+msg); {
	case fetch < 0:
		t.Fatal("no fetch on the console")
	case n > 1:
		t.Errorf("console says %q %d times, want once", msg, n)
	case n == 1 && ready >= 0 && ready < said:
		t.Errorf("console says %q after the pool was ready", msg)
	case n == 1:
		t.Logf("the pool was not ready at the fetch: /init said so and waited")
	case ready < 0 || ready > fetch:
		t.Errorf("the pool was not ready at the fetch and the console did not say so")
	default:
		t.Log("the kernel's random pool was ready before the fetch: nothing to say")
	}
}
