package bootbench

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ramboot/ramboot/internal/initramfs"
	"github.com/ramboot/ramboot/internal/serve"
	"github.com/ramboot/ramboot/internal/vmtest"
)

// BenchmarkBoot boots the VM BENCH_BOOTS times (default 5) and prints each stage's median,
// minimum and maximum. Run it once (`make bench-boot`: -benchtime 1x); it does its own count
// of boots, as every boot costs seconds of emulation.
//
// Environment: BENCH_BOOTS; BENCH_BOOT_MB, the image: bench/genimage -mb N with the VM tests'
// init added (default 20, about 25 MB of tar and 2,500 entries; 0 for the VM tests' image of
// just that init); BENCH_BOOT_FORMAT, zst (zstd -19) or xz (xz -T0 -6); BENCH_BOOT_SOURCE, menu
// (a ramboot serve menu with timeout 0, default) or cmdline (ramroot= on the command line);
// RAMBOOT_KERNEL_DIR, the kernel (vmtest.FindKernel).
func BenchmarkBoot(b *testing.B) {
	kernel := vmtest.FindKernel(b)
	boots := envInt(b, "BENCH_BOOTS", 5)
	mb := envInt(b, "BENCH_BOOT_MB", 20)
	format := envStr(b, "BENCH_BOOT_FORMAT", "zst", "zst", "xz")
	source := envStr(b, "BENCH_BOOT_SOURCE", "menu", "menu", "cmdline")
	for _, tool := range []string{"go", map[string]string{"zst": "zstd", "xz": "xz"}[format]} {
		vmtest.Tool(b, tool)
	}

	dir := b.TempDir()
	start := time.Now()
	initrd, img, desc := build(b, dir, kernel, mb, format)
	sum := sha256File(b, filepath.Join(dir, img))
	menu := ""
	if source == "menu" {
		menu = filepath.Join(b.TempDir(), "menu.yaml")
		text := fmt.Sprintf("title: bench-boot\ndefault: image\ntimeout: 0\nentries:\n  - name: image\n    ramroot: {url: http://SERVER/%s, sha256: %q}\n", img, sum)
		if err := os.WriteFile(menu, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	h, err := serve.New(dir, serve.Options{Menu: menu, Reports: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := h.Server(nil)
	go srv.Serve(l)
	b.Cleanup(func() {
		srv.Close()
		h.Close()
	})
	base := fmt.Sprintf("http://10.0.2.2:%d", l.Addr().(*net.TCPAddr).Port)
	b.Logf("built in %v: %s", time.Since(start).Round(100*time.Millisecond), desc)

	var all [][]Span
	b.ResetTimer()
	for i := range boots {
		// A MAC per boot: the server's events of that MAC are this boot's.
		mac := fmt.Sprintf("52:54:00:be:00:%02x", i+1)
		appendLine := fmt.Sprintf("ramboot.report=%s%s BOOTIF=01-%s ramboot.onerror=poweroff ramboot.retry=0",
			base, serve.EventsPath, strings.ReplaceAll(mac, ":", "-"))
		if source == "menu" {
			appendLine += fmt.Sprintf(" ramboot.menu=%s%s", base, h.MenuPath())
		} else {
			appendLine += fmt.Sprintf(" ramroot=%s/%s ramroot.sha256=%s", base, img, sum)
		}
		vm := vmtest.Start(b, vmtest.Options{
			Kernel: kernel, Initrd: initrd, Append: appendLine, Memory: "2G",
			NICs: []vmtest.NIC{{Model: "virtio-net-pci", MAC: mac}},
		})
		const timeout = 10 * time.Minute // software emulation on a shared machine
		var bt Boot
		vm.Expect(`ramboot: starting`, timeout)
		bt.InitStart = vm.Elapsed()
		vm.Expect(`switching to the new root`, timeout)
		bt.Switch = vm.Elapsed()
		vm.Expect(`TESTINIT-MARKER ramroot-ok`, timeout)
		bt.ImageInit = vm.Elapsed()
		vm.Expect(`TESTINIT-DONE`, time.Minute)
		vm.Wait(time.Minute)
		recs, ok := h.Fleet().Events(mac)
		if !ok {
			b.Fatalf("boot %d: no events from %s", i+1, mac)
		}
		for _, r := range recs {
			bt.Events = append(bt.Events, r.Event)
		}
		spans, err := Spans(bt)
		if err != nil {
			b.Fatalf("boot %d: %v", i+1, err)
		}
		all = append(all, spans)
		b.Logf("boot %d of %d: %.2f s to the image's init", i+1, boots, bt.ImageInit.Seconds())
	}
	b.StopTimer()

	stats := Summarize(all)
	fmt.Printf("\nbench-boot: %d boot(s) with %s in QEMU (software emulation, -smp 1, 2 GiB), kernel %s, image %s, %s;\n"+
		"host %d CPUs, load average %s; stage times: median (min, max)\n\n",
		boots, map[string]string{"menu": "a menu (ramboot serve, timeout 0)", "cmdline": "ramroot= on the command line"}[source],
		kernel.Version, img, desc, runtime.NumCPU(), loadavg())
	if err := Table(os.Stdout, stats, boots); err != nil {
		b.Fatal(err)
	}
	for _, s := range stats {
		if s.Name == StageTotal {
			b.ReportMetric(s.Median.Seconds(), "s/boot(median)")
		}
	}
	b.ReportMetric(0, "ns/op") // the loop's own time per op says nothing: the table does
}

// build makes the initramfs (/init as the Makefile builds it, the kernel's network modules)
// and the image in dir; it returns the initramfs's path, the image's name in dir and a
// description of the image.
func build(b *testing.B, dir string, kernel vmtest.Kernel, mb int, format string) (string, string, string) {
	b.Helper()
	initBin := filepath.Join(dir, "ramboot-init")
	goBuild(b, initBin, "./cmd/ramboot-init")
	initrd := filepath.Join(b.TempDir(), "initrd.cpio.zst")
	f, err := os.Create(initrd)
	if err != nil {
		b.Fatal(err)
	}
	zw, err := zstd.NewWriter(f)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := initramfs.Write(zw, initramfs.Spec{Init: initBin, Modules: kernel.Modules}); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}

	testInit := filepath.Join(b.TempDir(), "testinit")
	goBuild(b, testInit, "./internal/vmtest/testinit")
	initData, err := os.ReadFile(testInit)
	if err != nil {
		b.Fatal(err)
	}
	var base io.Reader = bytes.NewReader(nil)
	if mb > 0 {
		gen := filepath.Join(b.TempDir(), "genimage")
		goBuild(b, gen, "./bench/genimage")
		genTar := filepath.Join(b.TempDir(), "gen.tar")
		if out, err := exec.Command(gen, "-mb", strconv.Itoa(mb), "-o", genTar).CombinedOutput(); err != nil {
			b.Fatalf("genimage: %v: %s", err, out)
		}
		g, err := os.Open(genTar)
		if err != nil {
			b.Fatal(err)
		}
		defer g.Close()
		base = g
	}
	plain := filepath.Join(dir, "rootfs.tar")
	entries, size := withTestInit(b, base, initData, plain)
	desc := fmt.Sprintf("%.1f MB of tar, %d entries", float64(size)/1e6, entries)
	if mb > 0 {
		desc = fmt.Sprintf("bench/genimage -mb %d with the VM tests' init: %s", mb, desc)
	} else {
		desc = "the VM tests' init alone: " + desc
	}
	cmd := map[string][]string{"zst": {"zstd", "-q", "-19", "-T0", "--rm", plain}, "xz": {"xz", "-T0", "-6", plain}}[format]
	if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v: %s", cmd[0], err, out)
	}
	img := "rootfs.tar." + format
	st, err := os.Stat(filepath.Join(dir, img))
	if err != nil {
		b.Fatal(err)
	}
	return initrd, img, fmt.Sprintf("%s; %s: %.1f MB", desc, map[string]string{"zst": "zstd -19", "xz": "xz -T0 -6"}[format], float64(st.Size())/1e6)
}

// withTestInit copies the tar base (possibly empty) to out with the VM tests' init added as
// /usr/sbin/init (reached through the image's /sbin, a symlink on a generated root) and the
// marker it prints; it returns the entries and bytes written.
func withTestInit(b *testing.B, base io.Reader, initData []byte, out string) (int, int64) {
	b.Helper()
	f, err := os.Create(out)
	if err != nil {
		b.Fatal(err)
	}
	cw := &counter{w: f}
	tw := tar.NewWriter(cw)
	n := 0
	have := map[string]bool{}
	tr := tar.NewReader(base)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		have[strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")] = true
		if err := tw.WriteHeader(hdr); err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			b.Fatal(err)
		}
		n++
	}
	for _, d := range []string{"", "usr", "usr/sbin", "usr/lib", "etc", "proc", "sys", "dev", "run", "tmp"} {
		if have[d] || (d == "" && have["."]) {
			continue
		}
		name := "./" + d + "/"
		if d == "" {
			name = "./"
		}
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755})
		n++
	}
	if !have["sbin"] {
		tw.WriteHeader(&tar.Header{Name: "./sbin", Typeflag: tar.TypeSymlink, Linkname: "usr/sbin"})
		n++
	}
	file := func(name string, data []byte, mode int64) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	file("./usr/lib/testinit", initData, 0o755)
	if err := tw.WriteHeader(&tar.Header{Name: "./usr/sbin/init", Typeflag: tar.TypeSymlink, Linkname: "/usr/lib/testinit"}); err != nil {
		b.Fatal(err)
	}
	n++
	file("./etc/marker", []byte("ramroot-ok\n"), 0o644)
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return n, cw.n
}

type counter struct {
	w io.Writer
	n int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// goBuild builds pkg (relative to the module root) as the Makefile builds /init: static,
// stripped, without net/http's HTTP/2.
func goBuild(b *testing.B, out, pkg string) {
	b.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags", "nethttpomithttp2", "-o", out, pkg)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build %s: %v: %s", pkg, err, o)
	}
}

func sha256File(b *testing.B, name string) string {
	b.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		b.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || (n == 0 && name == "BENCH_BOOTS") {
		b.Fatalf("%s=%s: want a number (BENCH_BOOTS at least 1)", name, v)
	}
	return n
}

func envStr(b *testing.B, name, def string, allowed ...string) string {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	b.Fatalf("%s=%s: want one of %s", name, v, strings.Join(allowed, ", "))
	return ""
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}
