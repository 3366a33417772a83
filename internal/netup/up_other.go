//go:build !linux

package netup

import (
	"context"
	"errors"
	"fmt"
)

// Up is Linux-only: ramboot's /init runs on Linux.
func Up(ctx context.Context, c Config) (*Lease, error) {
	return nil, fmt.Errorf("bringing up the network: %w", errors.ErrUnsupported)
}
