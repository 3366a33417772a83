package xzpar

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
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

// BenchmarkSingleCore decodes a realistic .xz with one worker and, in the same run, has
// `xz -T1 -d` decode it, reporting both speeds and the ratio of CPU times (xzpar / xz,
// below 1 when xzpar is faster). The file is $XZPAR_FILE, or else the first 100 MB of a
// tar of /usr compressed by `xz -T1 -6`, made once in the temporary directory (that
// takes a minute or two).
func BenchmarkSingleCore(b *testing.B) {
	name := os.Getenv("XZPAR_FILE")
	if name == "" {
		name = usrTarXZ(b)
	}
	in, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	xz := needTool(b, "xz")
	var n int64
	var self, tool time.Duration
	for b.Loop() {
		cpu0 := cpuTime()
		r, err := NewReaderOptions(bytes.NewReader(in), Options{Workers: 1})
		if err != nil {
			b.Fatal(err)
		}
		if n, err = io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
		r.Close()
		self += cpuTime() - cpu0

		b.StopTimer()
		cmd := exec.Command(xz, "-T1", "-d", "-c")
		cmd.Stdin = bytes.NewReader(in)
		if err := cmd.Run(); err != nil {
			b.Fatalf("xz -d: %v", err)
		}
		tool += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		b.StartTimer()
	}
	b.SetBytes(n)
	b.ReportMetric(float64(n)*float64(b.N)/self.Seconds()/1e6, "cpu-MB/s")
	b.ReportMetric(float64(n)*float64(b.N)/tool.Seconds()/1e6, "xz-cpu-MB/s")
	b.ReportMetric(self.Seconds()/tool.Seconds(), "cpu-ratio")
}

// cpuTime is the CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// usrTarXZ returns the name of the benchmark's default input, making it if absent.
func usrTarXZ(b *testing.B) string {
	name := filepath.Join(os.TempDir(), "xzpar-bench-usr-100M.tar.xz")
	if _, err := os.Stat(name); err == nil {
		return name
	}
	xz := needTool(b, "xz")
	tmp := name + ".tmp"
	cmd := exec.Command("sh", "-c", `tar -cf - /usr 2>/dev/null | head -c 100M | "$0" -T1 -6 >"$1"`, xz, tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		b.Fatalf("making %s: %v: %s", name, err, out)
	}
	if err := os.Rename(tmp, name); err != nil {
		b.Fatal(err)
	}
	return name
}
