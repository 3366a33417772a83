//go:build !linux

package xzpar

import "errors"

// Outside Linux, large buffers come from the Go heap (see mem_linux.go).

const maxMapped = 0

func mapBytes(n int, huge bool) []byte { return nil }

func unmapBytes(b []byte) error { return nil }

func releaseBytes(b []byte, lo, hi int) int { return lo }

func memAvailable() (int64, error) { return 0, errors.New("no /proc/meminfo") }
