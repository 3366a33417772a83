package trust

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"
)

func TestLockRateLimited(t *testing.T) {
	h, err := HashPassword("correct horse", 4)
	if err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	var logs []string
	l := &Lock{Sleep: func(d time.Duration) { slept = append(slept, d) }, Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
	if l.Set() {
		t.Fatal("set without a hash")
	}
	if err := l.Add(h); err != nil {
		t.Fatal(err)
	}
	for range 7 {
		if err := l.Check("wrong"); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if fmt.Sprint(slept) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", slept, want)
	}
	if len(logs) != 7 || !strings.Contains(logs[6], "wrong password (7 in a row)") {
		t.Errorf("logs %q", logs)
	}
	if err := l.Check("correct horse"); err != nil {
		t.Fatalf("right password: %v", err)
	}
	slept = nil
	l.Check("wrong")
	if len(slept) != 1 || slept[0] != time.Second {
		t.Errorf("after a success the delay starts over: %v", slept)
	}
}

func TestArgon2id(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("pw"), salt, 1, 64, 1, 32)
	h := fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$%s$%s", base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
	l := &Lock{Sleep: func(time.Duration) {}}
	if err := l.Add(h); err != nil {
		t.Fatal(err)
	}
	if l.Check("pw") != nil || l.Check("pW") == nil {
		t.Error("argon2id check")
	}
	for _, bad := range []string{"plain", "$argon2id$v=19$m=64,t=1,p=1$!!$x", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5", "$2b$99$x"} {
		if CheckHash(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
