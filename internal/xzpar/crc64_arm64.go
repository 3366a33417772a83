package xzpar

import "golang.org/x/sys/cpu"

// haveCLMUL: fold64 may run (PMULL, the carry-less multiplication of the crypto extension).
var haveCLMUL = cpu.ARM64.HasPMULL

// fold64 is crc64_amd64.go's, with PMULL and PMULL2. In crc64_arm64.s.
//
//go:noescape
func fold64(s uint64, p []byte, k *[8]uint64) (lo, hi uint64)
