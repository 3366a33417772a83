//go:build race

package xzpar

// raceEnabled: the tests run under the race detector, which slows decoding about tenfold;
// tests that repeat the same single-threaded work many times do less of it then, and
// cover it in full in the run without the detector.
const raceEnabled = true
