package trust

import (
	"context"
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

// TestHashPasswordCost: a cost outside MinCost..MaxCost is refused at once (cost 31 took days),
// and an ended context ends the hashing without waiting for bcrypt.
func TestHashPasswordCost(t *testing.T) {
	for _, cost := range []int{0, 3, MaxCost + 1, 31, 32} {
		start := time.Now()
		if _, err := HashPassword("pw", cost); !errors.Is(err, ErrCost) {
			t.Errorf("cost %d: got %v, want ErrCost", cost, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("cost %d: refused after %v", cost, d)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if h, err := HashPasswordContext(ctx, "pw", MaxCost); !errors.Is(err, context.Canceled) {
		t.Errorf("ended context: got %q, %v, want context.Canceled", h, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := HashPasswordContext(ctx, "pw", 14); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context ending while hashing: got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("the hashing held the caller for %v after the context ended", d)
	}
	h, err := HashPasswordContext(context.Background(), "pw", MinCost)
	if err != nil || CheckHash(h) != nil {
		t.Errorf("cost %d: %q, %v", MinCost, h, err)
	}
}
