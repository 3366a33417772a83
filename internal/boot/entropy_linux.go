package boot

import (
	"context"
	"errors"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/loader"
)

// entropyMessage is said once when a TLS fetch has to wait for the kernel's random pool.
const entropyMessage = "waiting for the kernel's random pool (add virtio-rng or random.trust_cpu=on)"

// crngReady reports whether getrandom(2) would return without blocking.
func crngReady() bool {
	var b [1]byte
	_, err := unix.Getrandom(b[:], unix.GRND_NONBLOCK)
	return !errors.Is(err, unix.EAGAIN)
}

// WaitEntropy returns the Booter's Entropy step. Nothing in /init blocks on the kernel's CRNG
// except TLS, which needs it for its keys: before an https:// fetch on a machine whose pool is
// not ready yet (no RDRAND, no RNG device, early in boot) it says so once, then waits until the
// pool is ready or ctx ends. Plain http:// fetches never wait.
func WaitEntropy(logf func(string, ...any)) func(ctx context.Context, urls []string) error {
	var once sync.Once
	return func(ctx context.Context, urls []string) error {
		tls := false
		for _, u := range urls {
			// A registry is asked over HTTPS first, whatever its address.
			tls = tls || strings.HasPrefix(strings.ToLower(u), "https://") || loader.IsRegistry(u)
		}
		if !tls || crngReady() {
			return nil
		}
		once.Do(func() { logf("%s", entropyMessage) })
		done := make(chan struct{})
		go func() {
			var b [1]byte
			unix.Getrandom(b[:], 0) // blocks until the pool is initialised
			close(done)
		}()
		select {
		case <-done:
			logf("the kernel's random pool is ready")
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
