//go:build !amd64 && !arm64

package xzpar

// haveCLMUL is false: only amd64 and arm64 have fold64.
const haveCLMUL = false

func fold64(s uint64, p []byte, k *[8]uint64) (lo, hi uint64) {
	panic("xzpar: fold64 without carry-less multiplication")
}
