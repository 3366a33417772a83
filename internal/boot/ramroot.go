package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ramboot/ramboot/internal/hooks"
	"github.com/ramboot/ramboot/internal/layout"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/internal/report"
	"github.com/ramboot/ramboot/loader"
)

// prepareRamroot streams the image into a fresh tmpfs at Root and readies it; the returned
// step switches into it. On failure the tmpfs is unmounted again, so the next attempt starts
// from an empty one.
func (b *Booter) prepareRamroot(ctx context.Context, r *RamrootPlan, progress func(loader.Progress)) (exec Exec, err error) {
	if err := b.RunHooks(ctx, hooks.PreFetch); err != nil {
		return nil, err
	}
	size := r.Size
	if size == "" {
		size = defaultSize()
	}
	if b.MountRoot {
		unix.Unmount(b.Root, unix.MNT_DETACH) // a cancelled earlier attempt's
		os.MkdirAll(b.Root, 0o755)
		if err := unix.Mount("tmpfs", b.Root, "tmpfs", 0, "mode=0755,size="+size); err != nil {
			return nil, fmt.Errorf("mount tmpfs size=%s on %s: %w", size, b.Root, err)
		}
		defer func() {
			if err != nil {
				unix.Unmount(b.Root, unix.MNT_DETACH)
			}
		}()
	}
	b.logf("fetching %s into a %s tmpfs", r.Image.URLs[0], size)
	res, err := loader.Load(ctx, b.Root, r.Image.URLs, loader.Options{
		SHA256:    r.Image.SHA256,
		Fetcher:   b.fetcher(),
		Logf:      b.logf,
		Progress:  b.reportFetch(r.Image.URLs[0], progress),
		Verifiers: r.Image.Verify,
		Registry:  b.Registry,
	})
	if errors.Is(err, loader.ErrNoSpace) {
		return nil, fmt.Errorf("%w (the tmpfs is %s: set ramroot.size= or a menu entry's size: larger, or give the machine more RAM)", err, size)
	}
	if err != nil {
		return nil, err
	}
	b.reportDone(res)
	b.reportExtracted(res)
	verified := "no checksum given"
	if res.Verified {
		verified = "sha256 " + res.SHA256[:16] + "… verified"
	}
	if len(r.Image.Verify) > 0 {
		verified += ", signature verified"
	}
	b.logf("extracted %d entries, %s from %s of %s in %.1fs (%s)", res.Entries, loader.HumanBytes(res.Uncompressed),
		loader.HumanBytes(res.Size), res.Format, res.Duration.Seconds(), verified)
	if err := b.measure("image", res.URL, res.SHA256); err != nil {
		return nil, err
	}
	// The image must be bootable before anything is added to it.
	init := r.Init
	if init == "" {
		init = "/sbin/init"
	}
	if _, err := ResolveIn(b.Root, init); err != nil {
		return nil, fmt.Errorf("init=%s in the image: %w", init, err)
	}
	if err := copyKernelFiles(b.Root, b.KernelFiles, b.logf); err != nil {
		return nil, fmt.Errorf("copying modules into the image: %w", err)
	}
	if n := b.imageNet(); n != nil {
		files, err := netup.WriteImageConfig(b.Root, n)
		if err != nil {
			return nil, fmt.Errorf("writing the image's network config: %w", err)
		}
		b.logf("network config for %s: %s", b.Lease.MAC, strings.Join(files, " "))
	}
	if err := b.RunHooks(ctx, hooks.PostExtract); err != nil {
		return nil, err
	}
	line := strings.Join(append([]string{init}, r.Args...), " ")
	if err := b.TPM.MeasureData("cmdline", line, []byte(line)); err != nil {
		return nil, err
	}
	return func() error {
		b.logf("switching to the new root, exec %s %s", init, strings.Join(r.Args, " "))
		b.reportFinal(report.SwitchRoot)
		env := []string{"HOME=/", "TERM=linux", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		return b.SwitchRoot(b.Root, init, r.Args, env)
	}, nil
}

func (b *Booter) fetcher() *loader.Fetcher {
	client, err := loader.NewClient(caFile(), 0)
	if err != nil {
		b.logf("%v: using the system CAs only", err)
		client, _ = loader.NewClient("", 0)
	}
	return &loader.Fetcher{Client: client, Logf: b.logf, RetryFor: b.RetryFor}
}

func caFile() string {
	if _, err := os.Stat(layout.CA); err == nil {
		return layout.CA
	}
	return ""
}

// defaultSize leaves room for the kernel, the page cache and the loader: RAM less 384 MiB,
// but at least half of RAM (tmpfs's own default).
func defaultSize() string {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return "90%"
	}
	total := int64(si.Totalram) * int64(si.Unit)
	size := max(total-384<<20, total/2)
	return strconv.FormatInt(size>>20, 10) + "m"
}

// ConsoleProgress prints a progress line every two seconds, at each stage change and at each
// failed attempt: a serial console log stays readable, and a VGA console shows the same. While
// attempts fail the line names the URL, the attempt, its cause and when the next one starts.
func ConsoleProgress(logf func(string, ...any)) func(loader.Progress) {
	var last time.Time
	stage, retry := loader.Stage(-1), 0
	return func(p loader.Progress) {
		failed := p.Retry > 0 && p.Retry != retry && !p.NextTry.IsZero() // a new failure, its retry planned
		if failed || p.Retry == 0 {
			retry = p.Retry
		}
		if p.Stage == stage && time.Since(last) < 2*time.Second && !failed {
			return
		}
		stage, last = p.Stage, time.Now()
		var line string
		if p.Stage == loader.StageConnecting && p.Read == 0 {
			line = "connecting to " + p.URL // no byte count before the first byte
		} else {
			line = fmt.Sprintf("%s: %s", p.Stage, loader.HumanBytes(p.Read))
			if p.Total > 0 {
				line += fmt.Sprintf(" of %s (%.0f%%)", loader.HumanBytes(p.Total), 100*float64(p.Read)/float64(p.Total))
			}
			line += fmt.Sprintf(", %s/s, %s unpacked", loader.HumanBytes(int64(p.Rate)), loader.HumanBytes(p.Extracted))
			if eta := p.ETA(); eta > 0 {
				line += fmt.Sprintf(", ETA %v", eta.Round(time.Second))
			}
		}
		if p.Retry > 0 {
			next := "trying again"
			if d := time.Until(p.NextTry); !p.NextTry.IsZero() && d > 0 {
				next = fmt.Sprintf("next try in %ds", int((d+time.Second-1)/time.Second))
			}
			line += fmt.Sprintf(": attempt %d failed: %s; %s", p.Retry, p.LastErr, next)
		}
		logf("%s", line)
	}
}

// copyKernelFiles copies the running kernel's modules (and firmware) from the tree at from (the
// initramfs, "/") into the image when it has none for this kernel, as the seed did: images need
// not carry a kernel. from "" copies nothing.
func copyKernelFiles(root, from string, logf func(string, ...any)) error {
	if from == "" {
		return nil
	}
	var u unix.Utsname
	unix.Uname(&u)
	rel := path.Join("lib/modules", unix.ByteSliceToString(u.Release[:]))
	for _, d := range []string{rel, "lib/firmware"} {
		src := filepath.Join(from, d)
		if _, err := os.Stat(src); err != nil {
			continue
		}
		r, err := os.OpenRoot(root)
		if err != nil {
			return err
		}
		_, err = r.Stat(d)
		if err == nil {
			r.Close()
			continue // the image has its own
		}
		err = copyTree(r, d, src)
		r.Close()
		if err != nil {
			return err
		}
		logf("copied %s into the image", src)
	}
	return nil
}

// copyTree copies the host tree src to dst inside r. os.Root keeps it inside the image even
// when the image's lib is a symlink (usrmerge: lib -> usr/lib).
func copyTree(r *os.Root, dst, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := path.Join(dst, filepath.ToSlash(rel))
		if d.IsDir() {
			return r.MkdirAll(to, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := r.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		// Straight into the file (copy_file_range when the kernel can): no buffer of our own
		// that could keep the end of the file back. A failed write or close is the copy's.
		_, err = io.Copy(out, in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("copying %s: %w", p, err)
		}
		return nil
	})
}

// ResolveIn resolves p inside root as the new root will see it: symlinks, absolute ones
// included, are followed relative to root. It returns the host path of an executable file.
func ResolveIn(root, p string) (string, error) {
	cur := "/"
	rest := strings.Split(strings.Trim(p, "/"), "/")
	for hops := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		if c == "" || c == "." {
			continue
		}
		if c == ".." {
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		st, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", fmt.Errorf("%s is missing", next)
		}
		if st.Mode()&fs.ModeSymlink != 0 {
			if hops++; hops > 40 {
				return "", fmt.Errorf("too many symlinks at %s", next)
			}
			t, err := os.Readlink(filepath.Join(root, next))
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(t, "/") {
				cur = "/"
			}
			rest = append(strings.Split(strings.Trim(t, "/"), "/"), rest...)
			continue
		}
		cur = next
	}
	st, err := os.Stat(filepath.Join(root, cur))
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", cur)
	}
	return filepath.Join(root, cur), nil
}
