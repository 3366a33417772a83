package kexec

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseLockdown(t *testing.T) {
	for _, tt := range []struct {
		in     string
		want   Lockdown
		locked bool
		bad    bool
	}{
		{in: "[none] integrity confidentiality\n", want: "none"},
		{in: "none [integrity] confidentiality\n", want: "integrity", locked: true},
		{in: "none integrity [confidentiality]", want: "confidentiality", locked: true},
		{in: "[none]", want: "none"},
		{in: "none integrity confidentiality", bad: true},
		{in: "", bad: true},
		{in: "[] none", bad: true},
		{in: "[none] [integrity]", bad: true},
	} {
		got, err := ParseLockdown(tt.in)
		if (err != nil) != tt.bad {
			t.Errorf("ParseLockdown(%q): error %v, want an error: %v", tt.in, err, tt.bad)
			continue
		}
		if got != tt.want || got.Locked() != tt.locked {
			t.Errorf("ParseLockdown(%q) = %q (locked %v), want %q (locked %v)", tt.in, got, got.Locked(), tt.want, tt.locked)
		}
	}
}

// TestReadLockdown: no lockdown file (no securityfs, no lockdown LSM) reads as none.
func TestReadLockdown(t *testing.T) {
	defer func(f string) { lockdownFile = f }(lockdownFile)
	dir := t.TempDir()
	lockdownFile = filepath.Join(dir, "lockdown")
	if got, err := ReadLockdown(); err != nil || got != LockdownNone {
		t.Errorf("without the file: %q, %v; want none", got, err)
	}
	os.WriteFile(lockdownFile, []byte("none [integrity] confidentiality\n"), 0o644)
	if got, err := ReadLockdown(); err != nil || got != "integrity" {
		t.Errorf("locked down: %q, %v; want integrity", got, err)
	}
}

func TestSecureBoot(t *testing.T) {
	defer func(f string) { secureBootVar = f }(secureBootVar)
	dir := t.TempDir()
	secureBootVar = filepath.Join(dir, "SecureBoot")
	for _, tt := range []struct {
		data []byte
		want bool
	}{
		{nil, false},
		{[]byte{6, 0, 0, 0, 1}, true},
		{[]byte{6, 0, 0, 0, 0}, false},
		{[]byte{6, 0, 0, 0}, false},
	} {
		os.Remove(secureBootVar)
		if tt.data != nil {
			os.WriteFile(secureBootVar, tt.data, 0o644)
		}
		if got := secureBoot(); got != tt.want {
			t.Errorf("SecureBoot variable %v: %v, want %v", tt.data, got, tt.want)
		}
	}
}
