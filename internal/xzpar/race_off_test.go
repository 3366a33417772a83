//go:build !race

package xzpar

// raceEnabled: see race_on_test.go.
const raceEnabled = false
