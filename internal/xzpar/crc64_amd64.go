package xzpar

import "golang.org/x/sys/cpu"

// haveCLMUL: fold64 may run.
var haveCLMUL = cpu.X86.HasPCLMULQDQ // SSE2 is part of amd64

// fold64 folds p (a multiple of 64 bytes, at least 64) into 16 bytes (lo, then hi, each
// little-endian) that leave the same CRC-64 remainder from a zero register as p does from the
// register s. k holds foldConsts. In crc64_amd64.s.
//
//go:noescape
func fold64(s uint64, p []byte, k *[8]uint64) (lo, hi uint64)
