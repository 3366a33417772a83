// Command loadtest is `make loadtest`: many `ramboot fetch` clients booting from one server at
// once, through a proxy that breaks their downloads, to show that the loader's retries resume
// rather than restart and spread out rather than stampede.
//
// Setup: a generated root file system (bench/genimage) compressed with zstd, served by nginx on
// loopback; in front of it a proxy (this program) that
//   - paces every response (-rate bytes per second, so that downloads are in flight long
//     enough to be cut),
//   - cuts a random share of responses (-cut) at a random point of their body,
//   - at -mass-at cuts every response in flight at once, then for -outage answers every
//     connection with a reset (it accepts and resets, rather than closing its listening
//     socket, so that it can count the attempts);
//
// and -clients concurrent `ramboot fetch --sha256 SUM URL DIR`, each into a directory of its
// own.
//
// It reports whether every client finished, whether every tree equals GNU tar's extraction of
// the same image (paths, types, modes, owners, sizes, link targets, SHA-256 of the content),
// the bytes nginx served against the ideal (clients × image size: a resume costs only what
// was lost in flight, a restart the whole image again), and how the retries spread: the
// largest number of requests (connection attempts) within any 100 ms.
//
// Needs root (GNU tar extracts owners and devices only as root), nginx, GNU tar and zstd.
// Exit status: 0 when every client finished with a tree identical to tar's and the bytes
// served are within -max-ratio of the ideal; 1 otherwise.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

type config struct {
	ramboot, dir string
	mb, clients  int
	rate         int64
	cut          float64
	massAt       time.Duration
	outage       time.Duration
	maxRatio     float64
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fl.SetOutput(stderr)
	var c config
	fl.StringVar(&c.ramboot, "ramboot", "bin/ramboot", "the ramboot binary to test")
	fl.StringVar(&c.dir, "dir", "/tmp/ramboot-loadtest", "work directory (emptied first)")
	fl.IntVar(&c.mb, "mb", 16, "size of the generated image's content, in MB")
	fl.IntVar(&c.clients, "clients", 50, "concurrent ramboot fetch clients")
	fl.Int64Var(&c.rate, "rate", 512<<10, "bytes per second of each response")
	fl.Float64Var(&c.cut, "cut", 0.3, "share of responses cut at a random point of their body")
	fl.DurationVar(&c.massAt, "mass-at", 2*time.Second, "when every response in flight is cut, after the last client's first request")
	fl.DurationVar(&c.outage, "outage", 30*time.Second, "how long the proxy then resets every connection")
	fl.Float64Var(&c.maxRatio, "max-ratio", 1.10, "most bytes served, as a multiple of the ideal, that passes")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: GNU tar, the reference, extracts owners and devices only as root")
	}
	ramboot, err := filepath.Abs(c.ramboot)
	if err != nil {
		return err
	}
	c.ramboot = ramboot
	for _, tool := range []string{c.ramboot, "nginx", "tar", "zstd", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (make build; apt-get install nginx zstd)", tool)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		return err
	}
	www := filepath.Join(c.dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return err
	}

	// The image, and GNU tar's tree of it.
	start := time.Now()
	tarPath := filepath.Join(c.dir, "rootfs.tar")
	img := filepath.Join(www, "rootfs.tar.zst")
	steps := [][]string{
		{"go", "run", "./bench/genimage", "-mb", fmt.Sprint(c.mb), "-seed", "1", "-o", tarPath},
		{"zstd", "-q", "-6", "-T0", "-f", tarPath, "-o", img},
		{"mkdir", filepath.Join(c.dir, "ref")},
		{"tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", tarPath, "-C", filepath.Join(c.dir, "ref")},
	}
	for _, s := range steps {
		cmd := exec.CommandContext(ctx, s[0], s[1:]...)
		cmd.Stdout, cmd.Stderr = io.Discard, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s: %w", strings.Join(s, " "), err)
		}
	}
	sum, size, err := fileSum(img)
	if err != nil {
		return err
	}
	ref, err := manifest(filepath.Join(c.dir, "ref"))
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "loadtest: image %s: %.1f MB zstd, %d entries (prepared in %.0fs)\n", img, float64(size)/1e6, len(ref), time.Since(start).Seconds())

	upstream, stopNginx, err := startNginx(ctx, c.dir, www)
	if err != nil {
		return err
	}
	defer stopNginx()
	p, err := newProxy(upstream, c)
	if err != nil {
		return err
	}
	defer p.close()

	// The clients, all at once; the mass cut and the outage on their clock.
	fmt.Fprintf(stderr, "loadtest: %d clients through %s: %.0f%% of responses cut at random, all cut at %v, then %v of resets\n",
		c.clients, p.url, c.cut*100, c.massAt, c.outage)
	begin := time.Now()
	p.begin = begin
	go func() {
		// Starting 50 processes takes seconds on 2 CPUs: the mass cut comes -mass-at after the
		// last client's first request, when every client has a download in flight.
		for p.firstRequests() < c.clients {
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(c.massAt):
			n := p.massCut(c.outage)
			fmt.Fprintf(stderr, "loadtest: %v: cut %d responses in flight; resetting connections for %v\n", time.Since(begin).Round(time.Millisecond), n, c.outage)
		}
	}()
	type result struct {
		err  error
		took time.Duration
		same bool
		diff string
	}
	results := make([]result, c.clients)
	var wg sync.WaitGroup
	for i := range c.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dest := filepath.Join(c.dir, fmt.Sprintf("client%02d", i))
			logf, err := os.Create(dest + ".log")
			if err != nil {
				results[i].err = err
				return
			}
			defer logf.Close()
			cmd := exec.CommandContext(ctx, c.ramboot, "fetch", "--sha256", sum, p.url+"/rootfs.tar.zst", dest)
			cmd.Stdout, cmd.Stderr = logf, logf
			err = cmd.Run()
			results[i].took = time.Since(begin)
			if err != nil {
				results[i].err = fmt.Errorf("client %d: %w (see %s.log)", i, err, dest)
				return
			}
			got, err := manifest(dest)
			if err != nil {
				results[i].err = err
				return
			}
			results[i].same, results[i].diff = compare(ref, got)
			if results[i].same {
				os.RemoveAll(dest) // room for the others' trees
			}
		}()
	}
	wg.Wait()
	wall := time.Since(begin)

	finished, same := 0, 0
	var slowest time.Duration
	for i, r := range results {
		switch {
		case r.err != nil:
			fmt.Fprintf(stderr, "loadtest: %v\n", r.err)
		case !r.same:
			finished++
			fmt.Fprintf(stderr, "loadtest: client %d: tree differs from GNU tar's: %s\n", i, r.diff)
		default:
			finished++
			same++
		}
		slowest = max(slowest, r.took)
	}
	st := p.stats()
	ideal := int64(c.clients) * size
	ratio := float64(st.served) / float64(ideal)
	fmt.Fprintf(stdout, "\nramboot fetch load test: %d clients, %.1f MB zstd image (%d entries), %.0f KiB/s per response, %d CPUs\n",
		c.clients, float64(size)/1e6, len(ref), float64(c.rate)/1024, runtime.NumCPU())
	fmt.Fprintf(stdout, "faults: %d responses cut at random, %d cut at once at %v, then %v of resets (%d connections reset)\n",
		st.randomCuts, st.massCuts, c.massAt, c.outage, st.reset)
	fmt.Fprintf(stdout, "finished:               %d of %d (the last after %.1fs; wall %.1fs)\n", finished, c.clients, slowest.Seconds(), wall.Seconds())
	fmt.Fprintf(stdout, "trees identical to tar: %d of %d\n", same, c.clients)
	fmt.Fprintf(stdout, "bytes served:           %.1f MB for an ideal %.1f MB: %.3fx (limit %.2fx)\n", float64(st.served)/1e6, float64(ideal)/1e6, ratio, c.maxRatio)
	fmt.Fprintf(stdout, "requests:               %d HTTP (%d with Range), %d connections reset during the outage\n", st.requests, st.ranged, st.reset)
	fmt.Fprintf(stdout, "retry spread:           at most %d attempts within any 100 ms after the mass cut (%d attempts then); %d within any 100 ms of the 5 s after the outage\n",
		st.peakRetries, st.retries, st.peakAfter)
	fmt.Fprintf(stdout, "                        (at most %d within any 100 ms over the whole run, the clients' start included)\n", st.peak)
	fmt.Fprintf(stdout, "first request after the outage: %v after its end\n", st.firstAfter.Round(time.Millisecond))
	if same != c.clients || ratio > c.maxRatio {
		return fmt.Errorf("%d of %d clients ended with GNU tar's tree; %.3fx the ideal bytes served", same, c.clients, ratio)
	}
	return nil
}

// proxy forwards to nginx, pacing, cutting and refusing as configured.
type proxy struct {
	c        config
	upstream string
	url      string
	srv      *http.Server
	ln       net.Listener
	client   *http.Client
	rng      *rand.Rand
	begin    time.Time

	mu         sync.Mutex
	inflight   map[*http.Request]context.CancelFunc
	outageEnd  time.Time
	massAt     time.Duration   // since begin
	attempts   []time.Duration // since begin: every request and every reset connection
	requests   int
	ranged     int
	reset      int
	randomCuts int
	massCuts   int
	served     atomic.Int64 // bytes read from nginx
}

func newProxy(upstream string, c config) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{
		c: c, upstream: upstream, url: "http://" + ln.Addr().String(),
		client:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}},
		rng:      rand.New(rand.NewPCG(1, 2)),
		inflight: map[*http.Request]context.CancelFunc{},
		begin:    time.Now(),
	}
	p.ln = &resetListener{Listener: ln, p: p}
	p.srv = &http.Server{Handler: p}
	p.srv.SetKeepAlivesEnabled(false) // a request per connection: every attempt is counted
	go p.srv.Serve(p.ln)
	return p, nil
}

func (p *proxy) close() { p.srv.Close() }

// resetListener resets every connection during the outage.
type resetListener struct {
	net.Listener
	p *proxy
}

func (l *resetListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.p.mu.Lock()
		down := time.Now().Before(l.p.outageEnd)
		if down {
			l.p.reset++
			l.p.attempts = append(l.p.attempts, time.Since(l.p.begin))
		}
		l.p.mu.Unlock()
		if !down {
			return c, nil
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, as a host with nothing listening answers
		}
		c.Close()
	}
}

// firstRequests counts requests without Range: every client's first.
func (p *proxy) firstRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests - p.ranged
}

// massCut cuts every response in flight and starts the outage; it returns how many it cut.
func (p *proxy) massCut(outage time.Duration) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.massAt = time.Since(p.begin)
	p.outageEnd = time.Now().Add(outage)
	n := 0
	for _, cancel := range p.inflight {
		cancel()
		n++
	}
	p.massCuts += n
	return n
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	p.mu.Lock()
	p.requests++
	if r.Header.Get("Range") != "" {
		p.ranged++
	}
	p.attempts = append(p.attempts, time.Since(p.begin))
	p.inflight[r] = cancel
	cutShare := p.rng.Float64()
	cutAt := p.rng.Float64()
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.inflight, r)
		p.mu.Unlock()
	}()

	req, err := http.NewRequestWithContext(ctx, r.Method, p.upstream+r.URL.RequestURI(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for _, h := range []string{"Range", "If-Range", "User-Agent"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Length", "Content-Range", "Content-Type", "ETag", "Last-Modified", "Accept-Ranges"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	limit := int64(-1)
	if cutShare < p.c.cut && resp.ContentLength > 0 {
		limit = int64(cutAt * float64(resp.ContentLength))
	}
	// Paced copy: a chunk every 1/64 s, so each response runs at c.rate.
	chunk := max(1024, p.c.rate/64)
	buf := make([]byte, chunk)
	tick := time.NewTicker(time.Second / 64)
	defer tick.Stop()
	var sent int64
	for {
		select {
		case <-ctx.Done():
			panic(http.ErrAbortHandler) // the mass cut
		case <-tick.C:
		}
		n, err := resp.Body.Read(buf)
		p.served.Add(int64(n))
		if limit >= 0 && sent+int64(n) > limit {
			w.Write(buf[:limit-sent])
			w.(http.Flusher).Flush()
			p.mu.Lock()
			p.randomCuts++
			p.mu.Unlock()
			panic(http.ErrAbortHandler)
		}
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			w.(http.Flusher).Flush()
			sent += int64(n)
		}
		if err != nil {
			return
		}
	}
}

type proxyStats struct {
	served                                        int64
	requests, ranged, reset, randomCuts, massCuts int
	peak, peakRetries, peakAfter, retries         int
	firstAfter                                    time.Duration
}

func (p *proxy) stats() proxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := proxyStats{served: p.served.Load(), requests: p.requests, ranged: p.ranged, reset: p.reset,
		randomCuts: p.randomCuts, massCuts: p.massCuts}
	ts := slices.Clone(p.attempts)
	slices.Sort(ts)
	st.peak = peakWindow(ts, 100*time.Millisecond)
	end := p.outageEnd.Sub(p.begin)
	st.firstAfter = -1
	var retries, after []time.Duration
	for _, t := range ts {
		if t >= p.massAt {
			retries = append(retries, t)
		}
		if t >= end {
			if st.firstAfter < 0 {
				st.firstAfter = t - end
			}
			if t < end+5*time.Second {
				after = append(after, t)
			}
		}
	}
	st.retries = len(retries)
	st.peakRetries = peakWindow(retries, 100*time.Millisecond)
	st.peakAfter = peakWindow(after, 100*time.Millisecond)
	return st
}

// peakWindow is the largest number of sorted times within any window w.
func peakWindow(ts []time.Duration, w time.Duration) int {
	peak, j := 0, 0
	for i := range ts {
		for ts[i]-ts[j] >= w {
			j++
		}
		peak = max(peak, i-j+1)
	}
	return peak
}

// startNginx serves www on a free loopback port, in the foreground (so that it is stopped by
// pid), and returns its URL.
func startNginx(ctx context.Context, dir, www string) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	run := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(run, 0o755); err != nil {
		return "", nil, err
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen %[2]s;
		root %[3]s;
	}
}
`, run, addr, www)
	cf := filepath.Join(run, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.Command("nginx", "-c", cf, "-e", filepath.Join(run, "error.log"))
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "http://" + addr, stop, nil
		}
		if i > 100 || ctx.Err() != nil {
			stop()
			return "", nil, fmt.Errorf("nginx did not start on %s: see %s/error.log", addr, run)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fileSum(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// manifest lists a tree: for each path, its type and mode, owner, size, link target and the
// SHA-256 of a regular file's content.
func manifest(root string) (map[string]string, error) {
	m := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			s, _, err := fileSum(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %d %s", fi.Size(), s)
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + t
		case fi.Mode()&(fs.ModeDevice|fs.ModeCharDevice) != 0:
			line += fmt.Sprintf(" dev %d", st.Rdev)
		}
		m[rel] = line
		return nil
	})
	return m, err
}

// compare tells whether two manifests are equal, and if not, the first few differences.
func compare(want, got map[string]string) (bool, string) {
	var diffs []string
	for p, w := range want {
		if g, ok := got[p]; !ok {
			diffs = append(diffs, "missing "+p)
		} else if g != w {
			diffs = append(diffs, fmt.Sprintf("%s: %s, tar: %s", p, g, w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, "extra "+p)
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 5 {
		diffs = append(diffs[:5], fmt.Sprintf("and %d more", len(diffs)-5))
	}
	return len(diffs) == 0, strings.Join(diffs, "; ")
}
