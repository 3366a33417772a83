package xzpar

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestDecodeFile decodes the file named by $XZPAR_FILE with $XZPAR_WORKERS
// workers and a memory budget of $XZPAR_BUDGET bytes, for measuring against
// xz and pixz; it writes the output to $XZPAR_OUT if set.
func TestDecodeFile(t *testing.T) {
	name := os.Getenv("XZPAR_FILE")
	if name == "" {
		t.Skip("XZPAR_FILE not set")
	}
	workers, _ := strconv.Atoi(os.Getenv("XZPAR_WORKERS"))
	budget, _ := strconv.ParseInt(os.Getenv("XZPAR_BUDGET"), 10, 64)
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var w io.Writer = io.Discard
	if out := os.Getenv("XZPAR_OUT"); out != "" {
		o, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		w = o
	}
	start := time.Now()
	r, err := NewReaderOptions(f, Options{Workers: workers, MemoryBudget: budget})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, err := io.Copy(w, r)
	if err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	st := r.(*reader).mem.stats()
	t.Logf("%s: %d bytes in %v (%.1f MB/s) with %d workers; budget %d, peak %d bytes mapped in %d blocks",
		name, n, d, float64(n)/d.Seconds()/1e6, workers, st.budget, st.peakMapped, st.peakBlocks)
}

// BenchmarkDecode decodes the test data compressed by xz into 512 KiB
// blocks, or the file named by $XZPAR_FILE, held in memory.
func BenchmarkDecode(b *testing.B) {
	var in []byte
	if name := os.Getenv("XZPAR_FILE"); name != "" {
		var err error
		if in, err = os.ReadFile(name); err != nil {
			b.Fatal(err)
		}
	} else {
		in = xzc(b, testData(b), "-T2", "--block-size=512KiB")
	}
	for _, workers := range []int{1, 2} {
		b.Run(strconv.Itoa(workers), func(b *testing.B) {
			var n int64
			for b.Loop() {
				r, err := NewReader(bytes.NewReader(in), workers)
				if err != nil {
					b.Fatal(err)
				}
				n, err = io.Copy(io.Discard, r)
				if err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
			b.SetBytes(n)
		})
	}
}
