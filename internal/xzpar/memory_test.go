package xzpar

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseMemAvailable(t *testing.T) {
	tests := []struct {
		name, in string
		want     int64
		ok       bool
	}{
		{"linux", "MemTotal:       24683620 kB\nMemFree:        22238816 kB\nMemAvailable:   24246120 kB\nBuffers: 18452 kB\n", 24246120 << 10, true},
		{"zero", "MemAvailable: 0 kB\n", 0, true},
		{"missing (before Linux 3.14)", "MemTotal: 1000 kB\nMemFree: 500 kB\n", 0, false},
		{"no unit", "MemAvailable: 1000\n", 0, false},
		{"not a number", "MemAvailable: lots kB\n", 0, false},
		{"negative", "MemAvailable: -4 kB\n", 0, false},
		{"overflow", "MemAvailable: 99999999999999999999 kB\n", 0, false},
		{"empty", "", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMemAvailable(strings.NewReader(tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("got %d, %v; want %d, ok %v", got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestBudgetFromAvailable(t *testing.T) {
	tests := []struct {
		avail, reserve, want int64
	}{
		{8 << 30, 0, 2 << 30},
		{8 << 30, 4 << 30, 1 << 30},
		{8 << 30, -1, 2 << 30},
		{8 << 30, 16 << 30, MinMemoryBudget}, // the tmpfs will not fit anyway: still decode
		{64 << 20, 0, MinMemoryBudget},
	}
	for _, tt := range tests {
		if got := budgetFromAvailable(tt.avail, tt.reserve); got != tt.want {
			t.Errorf("budgetFromAvailable(%d, %d) = %d, want %d", tt.avail, tt.reserve, got, tt.want)
		}
	}
}

// TestDerivedBudget: a budget of 0 is read from /proc/meminfo only when a buffer could exceed
// any derived budget.
func TestDerivedBudget(t *testing.T) {
	m := newMemory(Options{})
	if !m.fits(MinMemoryBudget) || m.stats().budget != 0 {
		t.Fatalf("a buffer of MinMemoryBudget: budget %d resolved, want it unresolved", m.stats().budget)
	}
	m.fits(1 << 50)
	avail, err := memAvailable()
	if err != nil {
		t.Skipf("no MemAvailable: %v", err)
	}
	if got := m.stats().budget; got < MinMemoryBudget || got > max(avail/2, MinMemoryBudget) {
		t.Errorf("budget %d with MemAvailable %d, want about a quarter", got, avail)
	}
	m = newMemory(Options{Reserve: 1 << 50})
	m.fits(1 << 50)
	if got := m.stats().budget; got != MinMemoryBudget {
		t.Errorf("with a reserve larger than memory: budget %d, want %d", got, MinMemoryBudget)
	}
}

// bigStream compresses n bytes (records of 4 KiB: a line with the record's number, then zeros,
// which xz compresses quickly about 3000 times) into blocks of blockSize, feeding xz through
// a pipe so that the input is not kept; it returns the compressed data and the input's SHA-256.
func bigStream(t *testing.T, n, blockSize int64, args ...string) ([]byte, [32]byte) {
	t.Helper()
	args = append([]string{"-c", "-q", "-T2", fmt.Sprintf("--block-size=%d", blockSize)}, args...)
	cmd := exec.Command(needTool(t, "xz"), args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(stdin, h), 1<<20)
	var werr error
	rec := make([]byte, 4096)
	for i := 0; int64(i)*4096 < n && werr == nil; i++ {
		copy(rec, fmt.Sprintf("record %025d\n", i))
		_, werr = w.Write(rec)
	}
	if werr == nil {
		werr = w.Flush()
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil || werr != nil {
		t.Fatalf("xz %s: %v, %v: %s", strings.Join(args, " "), err, werr, stderr.String())
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return out.Bytes(), sum
}

// xzdSum returns the SHA-256 of what xz -d makes of in.
func xzdSum(t *testing.T, in []byte) [32]byte {
	t.Helper()
	cmd := exec.Command(needTool(t, "xz"), "-dc")
	cmd.Stdin = bytes.NewReader(in)
	h := sha256.New()
	cmd.Stdout = h
	if err := cmd.Run(); err != nil {
		t.Fatalf("xz -d: %v", err)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// TestBigBlocksWithinBudget: blocks larger than the budget are decoded as they are read, and the
// memory mapped for the reader never exceeds the budget; the output is what xz -d makes.
func TestBigBlocksWithinBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 200 MiB")
	}
	const block = 64 << 20
	// Three blocks larger than the budget, then one that fits.
	in, inSum := bigStream(t, 3*block+6<<20, block)
	if want := xzdSum(t, in); want != inSum {
		t.Fatal("xz -d does not give back xz's input")
	}
	for _, tc := range []struct {
		budget  int64
		workers int
	}{
		{32 << 20, 2},
		{32 << 20, 4},
		{14 << 20, 2}, // the window of xz -6 (8 MiB dictionary + 4 MiB) and little more
	} {
		t.Run(fmt.Sprintf("budget %d MiB, %d workers", tc.budget>>20, tc.workers), func(t *testing.T) {
			r, err := NewReaderOptions(bytes.NewReader(in), Options{Workers: tc.workers, MemoryBudget: tc.budget})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			h := sha256.New()
			n, err := io.Copy(h, r)
			if err != nil {
				t.Fatal(err)
			}
			var got [32]byte
			h.Sum(got[:0])
			if got != inSum {
				t.Fatalf("decoded %d bytes that differ from xz -d's", n)
			}
			st := r.(*reader).mem.stats()
			t.Logf("%+v", st)
			if st.peakMapped > tc.budget || st.peakUsed > tc.budget {
				t.Errorf("peak mapped %d, reserved %d: over the budget of %d", st.peakMapped, st.peakUsed, tc.budget)
			}
			if st.peakMapped < 4<<20 {
				t.Errorf("peak mapped %d: the buffers are not mapped", st.peakMapped)
			}
			if st.mapped != 0 || st.used != 0 || st.blocks != 0 {
				t.Errorf("after the end: %d bytes mapped, %d reserved, %d blocks; want none", st.mapped, st.used, st.blocks)
			}
		})
	}
}

// TestBlocksInFlight: blocks that fit in the budget are decoded ahead of the consumer, as many
// as the workers (and one more, with more than one worker) and the budget allow; no more blocks
// are decoded at once than there are workers.
func TestBlocksInFlight(t *testing.T) {
	var text bytes.Buffer
	for i := 0; text.Len() < 3<<20; i++ {
		fmt.Fprintf(&text, "line %026d\n", i)
	}
	d := text.Bytes()
	// 6 blocks of 512 KiB that take a few KiB compressed: a block in flight holds about
	// 512 KiB while it is decoded, and 512 KiB once decoded.
	in := xzc(t, d, "-T2", "--block-size=512KiB")
	tests := []struct {
		name  string
		o     Options
		wantN int // blocks in flight while nothing is read, and at most
	}{
		{"budget for all", Options{Workers: 3, MemoryBudget: 64 << 20}, 4},
		{"default budget", Options{Workers: 2}, 3},
		{"one worker", Options{Workers: 1}, 1},
		{"budget for two", Options{Workers: 6, MemoryBudget: 3 << 19}, 2},
		{"budget for one", Options{Workers: 3, MemoryBudget: 1 << 20}, 1},
	}
	// Blocks decoding at once, and their peak, per reader: decoders of earlier tests' readers
	// may linger.
	var mu sync.Mutex
	decoding, peakDecoding := map[*reader]int{}, map[*reader]int{}
	hook := func(x *reader, d int) {
		mu.Lock()
		decoding[x] += d
		peakDecoding[x] = max(peakDecoding[x], decoding[x])
		mu.Unlock()
		if d > 0 {
			// Long enough for every block in flight to be decoding at once, if they may.
			time.Sleep(20 * time.Millisecond)
		}
	}
	decodingHook.Store(&hook)
	t.Cleanup(func() { decodingHook.Store(nil) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewReaderOptions(bytes.NewReader(in), tt.o)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			x := r.(*reader)
			// Nothing is read yet: the dispatcher goes as far as it may, and stops.
			deadline := time.Now().Add(10 * time.Second)
			for x.mem.stats().blocks < tt.wantN && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			if got := x.mem.stats().blocks; got != tt.wantN {
				t.Errorf("before reading: %d blocks in flight, want %d", got, tt.wantN)
			}
			got, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, d) {
				t.Fatalf("got %d bytes, want %d", len(got), len(d))
			}
			st := x.mem.stats()
			t.Logf("%+v", st)
			if st.peakBlocks != tt.wantN {
				t.Errorf("peak %d blocks in flight, want %d", st.peakBlocks, tt.wantN)
			}
			mu.Lock()
			peak := peakDecoding[x]
			mu.Unlock()
			if peak > tt.o.Workers || peak == 0 {
				t.Errorf("peak %d blocks decoded at once, want 1 to %d (the workers)", peak, tt.o.Workers)
			}
			if tt.o.MemoryBudget > 0 && st.peakMapped > tt.o.MemoryBudget {
				t.Errorf("peak mapped %d, over the budget of %d", st.peakMapped, tt.o.MemoryBudget)
			}
			if st.mapped != 0 || st.used != 0 {
				t.Errorf("after the end: %d bytes mapped, %d reserved; want none", st.mapped, st.used)
			}
		})
	}
}

// TestTinyBudget: with a budget of a byte every block is decoded as it is read, one window at a
// time, whatever its header says.
func TestTinyBudget(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			in, want := tc.input(t)
			for _, budget := range []int64{-1, 1, 3 << 20} {
				// One byte per read; under the race detector, where that costs minutes,
				// short reads of changing sizes.
				var src io.Reader = oneByteReader{bytes.NewReader(in)}
				if raceEnabled {
					src = shortReader{bytes.NewReader(in), new(int)}
				}
				r, err := NewReaderOptions(src, Options{Workers: 2, MemoryBudget: budget})
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil {
					t.Fatalf("budget %d: %v", budget, err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("budget %d: got %d bytes, want %d (first difference at %d)", budget, len(got), len(want), firstDiff(got, want))
				}
				if st := r.(*reader).mem.stats(); st.mapped != 0 || st.used != 0 || st.blocks != 0 {
					t.Errorf("budget %d, after the end: %+v; want nothing held", budget, st)
				}
			}
		})
	}
}

// TestCloseWhileWaitingForMemory: Close releases a dispatcher that waits for the consumer to
// free memory.
func TestCloseWhileWaitingForMemory(t *testing.T) {
	in := xzc(t, testData(t), "-T2", "--block-size=512KiB")
	r, err := NewReaderOptions(bytes.NewReader(in), Options{Workers: 4, MemoryBudget: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	x := r.(*reader)
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := x.mem.stats()
		if st.used == 0 && st.mapped == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after Close: %+v, want nothing held", st)
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := r.Read(buf); !errors.Is(err, errClosed) {
		t.Errorf("Read after Close: %v", err)
	}
}
