package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/pe"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ramboot/ramboot/internal/authenticode"
	"github.com/ramboot/ramboot/internal/peimage/peimagetest"
	"github.com/ramboot/ramboot/internal/uki"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// writeSigningKey writes a self-signed RSA certificate and its key (PKCS #1 PEM, as openssl
// req -newkey writes them for sbsign) to dir, and returns their paths.
func writeSigningKey(t *testing.T, dir, cn string) (keyFile, certFile string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, certFile = filepath.Join(dir, cn+".key"), filepath.Join(dir, cn+".pem")
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return keyFile, certFile
}

func writeFile(t *testing.T, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// ukiInputs writes a made-up stub, kernel and initrd to dir.
func ukiInputs(t *testing.T, dir string) (stub, kernel, initrd string) {
	stub, kernel, initrd = filepath.Join(dir, "stub.efi"), filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.cpio")
	writeFile(t, stub, peimagetest.New(peimagetest.Options{}))
	writeFile(t, kernel, peimagetest.BzImage("6.1.0-99-test"))
	writeFile(t, initrd, []byte("070701 not really a cpio"))
	return stub, kernel, initrd
}

func TestUKIUsage(t *testing.T) {
	dir := t.TempDir()
	stub, kernel, initrd := ukiInputs(t, dir)
	out := filepath.Join(dir, "uki.efi")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing", []string{}, "--kernel VMLINUZ is required"},
		{"no output", []string{"--kernel", kernel}, "-o OUT is required"},
		{"key without cert", []string{"--kernel", kernel, "-o", out, "--key", "k"}, "--key and --cert go together"},
		{"initrd and modules", []string{"--kernel", kernel, "-o", out, "--initrd", initrd, "--modules", dir}, "--initrd FILE is the initramfs: --modules builds one"},
		{"bad compression", []string{"--kernel", kernel, "-o", out, "--stub", stub, "--compression", "lz4"}, `--compression "lz4"`},
		{"verify and build", []string{"--verify", out, "--kernel", kernel}, "--verify takes only --cert, not --kernel"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, err := runArgs(append([]string{"uki"}, tt.args...)...)
			if exitCode(err) != 2 || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v (exit %d), want a usage error with %q", err, exitCode(err), tt.want)
			}
			if !strings.Contains(stderr, "usage: ramboot uki ") {
				t.Errorf("no usage on stderr:\n%s", stderr)
			}
		})
	}
}

// TestUKISignVerify: ramboot uki signs what it builds; --verify lists the sections and checks
// the signature against the certificate; sbverify --cert accepts it.
func TestUKISignVerify(t *testing.T) {
	dir := t.TempDir()
	stub, kernel, initrd := ukiInputs(t, dir)
	key, cert := writeSigningKey(t, dir, "ramboot-db")
	_, otherCert := writeSigningKey(t, dir, "other")
	out := filepath.Join(dir, "ramboot.efi")
	_, stderr, err := runArgs("uki", "--kernel", kernel, "--initrd", initrd, "--stub", stub, "--cmdline", "console=ttyS0",
		"--key", key, "--cert", cert, "-o", out)
	if err != nil {
		t.Fatalf("uki: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "UKI of 6.1.0-99-test") || !strings.Contains(stderr, "signed by CN=ramboot-db") {
		t.Errorf("stderr:\n%s", stderr)
	}
	stdout, _, err := runArgs("uki", "--verify", out, "--cert", cert)
	if err != nil {
		t.Fatalf("uki --verify: %v\n%s", err, stdout)
	}
	for _, want := range []string{"kernel: 6.1.0-99-test", "cmdline: console=ttyS0", ".linux", ".initrd", ".sbat",
		"signature 1 of 1 (the one shim and the kernel check): SHA-256 by CN=ramboot-db", "verifies", "by " + cert + ": yes"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--verify does not say %q:\n%s", want, stdout)
		}
	}
	if stdout, _, err := runArgs("uki", "--verify", out, "--cert", otherCert); err == nil || !strings.Contains(stdout, ": no") {
		t.Errorf("--verify with another certificate: %v\n%s", err, stdout)
	}
	t.Run("sbverify", func(t *testing.T) {
		if b, err := exec.Command(vmtest.Tool(t, "sbverify"), "--cert", cert, out).CombinedOutput(); err != nil {
			t.Errorf("sbverify --cert: %v\n%s", err, b)
		}
	})
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	// Signed again, by another key: both signatures are listed; --cert of the second fails,
	// and says why (the kernel and shim check only the first).
	otherKey := strings.TrimSuffix(otherCert, ".pem") + ".key"
	signer, c, err := loadSigningKey(context.Background(), otherKey, otherCert, "", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := authenticode.Sign(b, c, signer)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, out+".twice", twice)
	stdout, _, err = runArgs("uki", "--verify", out+".twice", "--cert", otherCert)
	if err == nil || !strings.Contains(err.Error(), "signature 2 is: firmware accepts that") ||
		!strings.Contains(stdout, "signature 2 of 2: SHA-256 by CN=other") {
		t.Errorf("--verify of a UKI signed twice, with the second's certificate: %v\n%s", err, stdout)
	}
	if _, _, err := runArgs("uki", "--verify", out+".twice", "--cert", cert); err != nil {
		t.Errorf("--verify of a UKI signed twice, with the first's certificate: %v", err)
	}
	if _, _, err := runArgs("uki", "--kernel", kernel, "--initrd", initrd, "--stub", stub, "--key", key, "--cert", otherCert, "-o", out+".x"); err == nil ||
		!strings.Contains(err.Error(), "is not the key of") {
		t.Errorf("a key with another's certificate: %v", err)
	}
	// One byte changed in the kernel: --verify fails.
	f, err := pe.NewFile(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	b[f.Section(".linux").Offset+100] ^= 1
	writeFile(t, out, b)
	if stdout, _, err := runArgs("uki", "--verify", out); err == nil || !strings.Contains(stdout, "does not verify") {
		t.Errorf("--verify of a changed UKI: %v\n%s", err, stdout)
	}
}

// TestUKIVerifySbsign: a UKI that sbsign signed passes --verify --cert.
func TestUKIVerifySbsign(t *testing.T) {
	sbsign := vmtest.Tool(t, "sbsign")
	dir := t.TempDir()
	stub, kernel, initrd := ukiInputs(t, dir)
	key, cert := writeSigningKey(t, dir, "sbsign-db")
	out := filepath.Join(dir, "ramboot.efi")
	if _, stderr, err := runArgs("uki", "--kernel", kernel, "--initrd", initrd, "--stub", stub, "-o", out); err != nil {
		t.Fatalf("uki: %v\n%s", err, stderr)
	}
	if stdout, _, err := runArgs("uki", "--verify", out); err != nil || !strings.Contains(stdout, "not signed") {
		t.Errorf("--verify of the unsigned UKI: %v\n%s", err, stdout)
	}
	if _, _, err := runArgs("uki", "--verify", out, "--cert", cert); err == nil {
		t.Error("--verify --cert of an unsigned UKI succeeded")
	}
	if b, err := exec.Command(sbsign, "--key", key, "--cert", cert, "--output", out+".signed", out).CombinedOutput(); err != nil {
		t.Fatalf("sbsign: %v\n%s", err, b)
	}
	if stdout, _, err := runArgs("uki", "--verify", out+".signed", "--cert", cert); err != nil {
		t.Errorf("--verify of sbsign's signature: %v\n%s", err, stdout)
	}
}

// TestUKIRealKernel: Debian's kernel on systemd's stub, with ramboot's initramfs built from
// its modules in the same step: .uname is the modules' release, and the size is logged.
func TestUKIRealKernel(t *testing.T) {
	k := vmtest.FindKernel(t)
	if _, err := os.Stat(uki.X64.DefaultStub()); err != nil {
		vmtest.Missing(t, uki.X64.DefaultStub()+" (systemd-boot-efi)")
	}
	dir := t.TempDir()
	init := filepath.Join(dir, "init")
	writeFile(t, init, []byte("#!/bin/sh\n"))
	out := filepath.Join(dir, "ramboot.efi")
	_, stderr, err := runArgs("uki", "--kernel", k.Vmlinuz, "--modules", k.Modules, "--init", init, "--ca", init,
		"--compression", "gz", "--cmdline", "console=ttyS0", "-o", out)
	if err != nil {
		t.Fatalf("uki: %v\n%s", err, stderr)
	}
	t.Log(stderr)
	stdout, _, err := runArgs("uki", "--verify", out)
	if err != nil {
		t.Fatalf("--verify: %v\n%s", err, stdout)
	}
	if !strings.Contains(stdout, "kernel: "+k.Version) {
		t.Errorf("--verify:\n%s", stdout)
	}
}

// TestUKISnakeoil: Debian's OVMF test key, encrypted (password "snakeoil"), signs a UKI with
// --key-password-file; its certificate (enrolled in that OVMF's db) verifies it.
func TestUKISnakeoil(t *testing.T) {
	const key, cert = "/usr/share/ovmf/PkKek-1-snakeoil.key", "/usr/share/ovmf/PkKek-1-snakeoil.pem"
	if _, err := os.Stat(key); err != nil {
		vmtest.Missing(t, key+" (ovmf)")
	}
	dir := t.TempDir()
	stub, kernel, initrd := ukiInputs(t, dir)
	pwFile := filepath.Join(dir, "password")
	writeFile(t, pwFile, []byte("snakeoil\n"))
	out := filepath.Join(dir, "ramboot.efi")
	if _, stderr, err := runArgs("uki", "--kernel", kernel, "--initrd", initrd, "--stub", stub,
		"--key", key, "--key-password-file", pwFile, "--cert", cert, "-o", out); err != nil {
		t.Fatalf("uki: %v\n%s", err, stderr)
	}
	if stdout, _, err := runArgs("uki", "--verify", out, "--cert", cert); err != nil {
		t.Errorf("--verify: %v\n%s", err, stdout)
	}
	writeFile(t, pwFile, []byte("oilsnake\n"))
	if _, _, err := runArgs("uki", "--kernel", kernel, "--initrd", initrd, "--stub", stub,
		"--key", key, "--key-password-file", pwFile, "--cert", cert, "-o", out); err == nil || !strings.Contains(err.Error(), "wrong password") {
		t.Errorf("a wrong password: %v", err)
	}
}
