package trust

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// ErrWrongPassword is a refused password.
var ErrWrongPassword = errors.New("wrong password")

// Lock is the password that guards what changes a boot: editing a command line, the shell,
// entries marked locked. It holds one or more hashes (the one built into the initramfs, a
// signed menu's); any of them unlocks. Wrong attempts are logged and answered ever more slowly
// (1 s, 2 s, 4 s, ... up to MaxDelay), which bounds guessing at a console.
type Lock struct {
	mu     sync.Mutex
	hashes []string
	fails  int
	// Logf receives each wrong attempt. Nil: discard.
	Logf func(format string, args ...any)
	// Sleep waits out the delay after a wrong attempt (time.Sleep; a fake in tests).
	Sleep func(time.Duration)
}

// MaxDelay bounds the delay after a wrong password.
const MaxDelay = 30 * time.Second

// CheckHash reports whether h is a hash Lock understands: bcrypt ($2a$, $2b$, $2y$) or
// argon2id ($argon2id$v=19$m=...,t=...,p=...$SALT$HASH, as the argon2 reference tool prints).
func CheckHash(h string) error {
	h = strings.TrimSpace(h)
	switch {
	case strings.HasPrefix(h, "$2"):
		_, err := bcrypt.Cost([]byte(h))
		if err != nil {
			return fmt.Errorf("bad bcrypt hash: %w", err)
		}
		return nil
	case strings.HasPrefix(h, "$argon2id$"):
		_, err := parseArgon2id(h)
		return err
	}
	return errors.New("not a bcrypt ($2b$...) or argon2id ($argon2id$...) hash: make one with ramboot passwd")
}

// Add adds a hash that unlocks. A hash CheckHash refuses is an error and is not added.
func (l *Lock) Add(h string) error {
	h = strings.TrimSpace(h)
	if err := CheckHash(h); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.hashes {
		if x == h {
			return nil
		}
	}
	l.hashes = append(l.hashes, h)
	return nil
}

// Set reports whether a password is set: without one nothing is locked.
func (l *Lock) Set() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.hashes) > 0
}

// Check tells whether password unlocks. A wrong one is logged and returns ErrWrongPassword
// only after a delay that doubles with each wrong attempt in a row; attempts are serialised,
// so a second console cannot skip the wait.
func (l *Lock) Check(password string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.hashes {
		if matches(h, password) {
			l.fails = 0
			return nil
		}
	}
	l.fails++
	delay := min(time.Second<<min(l.fails-1, 10), MaxDelay)
	if l.Logf != nil {
		l.Logf("wrong password (%d in a row); next attempt in %v", l.fails, delay)
	}
	sleep := l.Sleep
	if sleep == nil {
		sleep = time.Sleep
	}
	sleep(delay)
	return fmt.Errorf("%w (%d in a row)", ErrWrongPassword, l.fails)
}

func matches(h, password string) bool {
	if strings.HasPrefix(h, "$argon2id$") {
		a, err := parseArgon2id(h)
		if err != nil {
			return false
		}
		got := argon2.IDKey([]byte(password), a.salt, a.time, a.memory, a.threads, uint32(len(a.key)))
		return subtle.ConstantTimeCompare(got, a.key) == 1
	}
	return bcrypt.CompareHashAndPassword([]byte(h), []byte(password)) == nil
}

type argon2Params struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// parseArgon2id reads the PHC string form: $argon2id$v=19$m=65536,t=3,p=4$SALT$HASH, salt and
// hash in unpadded base64.
func parseArgon2id(h string) (*argon2Params, error) {
	f := strings.Split(h, "$")
	if len(f) != 6 || f[1] != "argon2id" || f[2] != "v=19" {
		return nil, errors.New("bad argon2id hash: want $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
	}
	var a argon2Params
	if _, err := fmt.Sscanf(f[3], "m=%d,t=%d,p=%d", &a.memory, &a.time, &a.threads); err != nil {
		return nil, fmt.Errorf("bad argon2id parameters %q: %w", f[3], err)
	}
	if a.time == 0 || a.threads == 0 || a.memory < 8*uint32(a.threads) || a.memory > 1<<20 {
		return nil, fmt.Errorf("bad argon2id parameters %q", f[3])
	}
	var err error
	if a.salt, err = base64.RawStdEncoding.DecodeString(f[4]); err != nil {
		return nil, fmt.Errorf("bad argon2id salt: %w", err)
	}
	if a.key, err = base64.RawStdEncoding.DecodeString(f[5]); err != nil || len(a.key) < 16 {
		return nil, errors.New("bad argon2id hash value")
	}
	return &a, nil
}

// The bcrypt costs HashPassword accepts. bcrypt itself takes 4 to 31, but each step doubles the
// time of every check: /init checks the password on the booting machine's CPU at each unlock,
// and cost 16 already takes about 4 s on a current x86 core (cost 12, the default of ramboot
// passwd, a quarter of a second), more on a small board; cost 31 would take days. Guessing at
// the console is bounded by Lock's delays, not by the cost alone.
const (
	MinCost = bcrypt.MinCost // 4
	MaxCost = 16
)

// ErrCost: a bcrypt cost outside MinCost..MaxCost.
var ErrCost = fmt.Errorf("bcrypt cost outside %d..%d", MinCost, MaxCost)

// HashPassword makes a bcrypt hash of password for --password-hash and menus; cost is
// MinCost..MaxCost (an error wrapping ErrCost otherwise).
func HashPassword(password string, cost int) (string, error) {
	if password == "" {
		return "", errors.New("empty password")
	}
	if cost < MinCost || cost > MaxCost {
		return "", fmt.Errorf("hashing the password: %w: %d", ErrCost, cost)
	}
	b, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	return string(b), nil
}

// HashPasswordContext is HashPassword ending early, with ctx's error, when ctx ends: bcrypt
// cannot be interrupted, so the hashing goes on in a goroutine that is abandoned (meant for a
// command that then exits; at MaxCost it finishes within seconds anyway).
func HashPasswordContext(ctx context.Context, password string, cost int) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	type result struct {
		h   string
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned hashing does not block forever
	go func() {
		h, err := HashPassword(password, cost)
		done <- result{h, err}
	}()
	select {
	case r := <-done:
		return r.h, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("hashing the password: %w", ctx.Err())
	}
}
