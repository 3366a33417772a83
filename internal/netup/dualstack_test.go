package netup

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeFamily is an acquisition that does what its script says, step by step: "hear" (a
// server answered), "ok" (its lease), "fail", or "wait" (until its context is done).
type fakeFamily struct {
	script  []string
	release chan struct{} // closed to let a "hold" step pass
	mu      sync.Mutex
	ctxErr  error // what its context said when it ended
}

func (f *fakeFamily) run(ctx context.Context) error {
	for _, step := range f.script {
		switch step {
		case "hear":
			noteHeard(ctx)
		case "hold":
			select {
			case <-f.release:
			case <-ctx.Done():
				f.mu.Lock()
				f.ctxErr = ctx.Err()
				f.mu.Unlock()
				return ctx.Err()
			}
		case "wait":
			<-ctx.Done()
			f.mu.Lock()
			f.ctxErr = ctx.Err()
			f.mu.Unlock()
			return ctx.Err()
		case "ok":
			return nil
		case "fail":
			return errors.New("no server")
		}
	}
	return errors.New("script ended")
}

func TestDualStack(t *testing.T) {
	const grace = 30 * time.Millisecond
	for _, tt := range []struct {
		name    string
		v4, v6  []string
		release string // the family whose "hold" is released once the other has succeeded
		want4   string // "ok", "abandoned" or "fail"
		want6   string
		wantLog string
	}{
		{name: "IPv6 only: quiet DHCPv4 abandoned", v4: []string{"wait"}, v6: []string{"hear", "ok"},
			want4: "abandoned", want6: "ok", wantLog: "DHCPv4 abandoned: no server answered within 30ms, and IPv6 has its address"},
		{name: "IPv4 only: quiet IPv6 abandoned", v4: []string{"hear", "ok"}, v6: []string{"wait"},
			want4: "ok", want6: "abandoned", wantLog: "IPv6 abandoned: no server answered within 30ms, and DHCPv4 has its address"},
		{name: "DHCPv4 that heard is waited for", v4: []string{"hear", "hold", "ok"}, v6: []string{"hear", "ok"}, release: "v4",
			want4: "ok", want6: "ok"},
		{name: "IPv6 that heard is waited for", v4: []string{"ok"}, v6: []string{"hear", "hold", "ok"}, release: "v6",
			want4: "ok", want6: "ok"},
		{name: "a failure does not stop the other", v4: []string{"fail"}, v6: []string{"hold", "hear", "ok"}, release: "v6",
			want4: "fail", want6: "ok"},
		{name: "both fail", v4: []string{"fail"}, v6: []string{"fail"}, want4: "fail", want6: "fail"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f4 := &fakeFamily{script: tt.v4, release: make(chan struct{})}
			f6 := &fakeFamily{script: tt.v6, release: make(chan struct{})}
			var log []string
			var mu sync.Mutex
			logf := func(format string, a ...any) {
				mu.Lock()
				log = append(log, fmt.Sprintf(format, a...))
				mu.Unlock()
			}
			// A held family is released once the other succeeded and the grace is over:
			// it must not have been abandoned in the meantime.
			releaseAfter := func(f *fakeFamily) {
				time.Sleep(3 * grace)
				close(f.release)
			}
			v4 := func(ctx context.Context) (*Lease, error) {
				if err := f4.run(ctx); err != nil {
					return nil, err
				}
				if tt.release == "v6" {
					go releaseAfter(f6)
				}
				return &Lease{Addr: netip.MustParsePrefix("10.0.0.5/24")}, nil
			}
			v6 := func(ctx context.Context) (*Lease6, error) {
				if err := f6.run(ctx); err != nil {
					return nil, err
				}
				if tt.release == "v4" {
					go releaseAfter(f4)
				}
				return &Lease6{}, nil
			}
			if tt.release == "v6" && tt.v4[0] == "fail" {
				go releaseAfter(f6)
			}
			l4, l6, err4, err6 := dualStack(context.Background(), grace, logf, v4, v6)
			outcome := func(ok bool, err error) string {
				switch {
				case ok && err == nil:
					return "ok"
				case errors.Is(err, errAbandoned):
					return "abandoned"
				case err != nil:
					return "fail"
				}
				return "nil lease without an error"
			}
			if got := outcome(l4 != nil, err4); got != tt.want4 {
				t.Errorf("DHCPv4: %s (%v), want %s", got, err4, tt.want4)
			}
			if got := outcome(l6 != nil, err6); got != tt.want6 {
				t.Errorf("IPv6: %s (%v), want %s", got, err6, tt.want6)
			}
			joined := strings.Join(log, "\n")
			if tt.wantLog != "" && !strings.Contains(joined, tt.wantLog) {
				t.Errorf("log %q lacks %q", joined, tt.wantLog)
			}
			if tt.wantLog == "" && joined != "" {
				t.Errorf("log %q, want nothing abandoned", joined)
			}
		})
	}
}

// TestDualStackCallerCancel: the caller's context ends both families, and neither is called
// abandoned.
func TestDualStackCallerCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	wait := func(ctx context.Context) error { cancel(); <-ctx.Done(); return ctx.Err() }
	_, _, err4, err6 := dualStack(ctx, time.Millisecond, func(string, ...any) {},
		func(ctx context.Context) (*Lease, error) { return nil, wait(ctx) },
		func(ctx context.Context) (*Lease6, error) { return nil, wait(ctx) })
	if !errors.Is(err4, context.Canceled) || !errors.Is(err6, context.Canceled) || errors.Is(err4, errAbandoned) || errors.Is(err6, errAbandoned) {
		t.Errorf("errors %v, %v", err4, err6)
	}
}
