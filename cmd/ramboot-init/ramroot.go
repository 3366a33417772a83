package main

import (
	"bufio"
	"context"
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

	"github.com/ramboot/ramboot/internal/layout"
	"github.com/ramboot/ramboot/internal/netup"
	"github.com/ramboot/ramboot/internal/switchroot"
	"github.com/ramboot/ramboot/loader"
)

// image is one file to fetch: a URL with its mirrors and expected checksum.
type image struct {
	URLs   []string
	SHA256 string
}

// plan is what to boot, from the kernel command line or a menu entry.
type plan struct {
	Name    string
	Ramroot *ramrootPlan
	Kexec   *kexecPlan
}

type ramrootPlan struct {
	Image      image
	Size, Init string
	Args       []string // for init: parameters handed to the image
}

type kexecPlan struct {
	Kernel   image
	Initrds  []image
	Cmdline  string
	IPAppend bool // add ip= of the lease
}

// prepare does everything that can still be abandoned, and returns the irreversible step.
func (b *booter) prepare(ctx context.Context, p plan, progress func(loader.Progress)) (func() error, error) {
	switch {
	case p.Ramroot != nil:
		return b.prepareRamroot(ctx, p.Ramroot, progress)
	case p.Kexec != nil:
		return b.prepareKexec(ctx, p.Kexec, progress)
	}
	return nil, fmt.Errorf("%s: nothing to boot", p.Name)
}

// prepareRamroot streams the image into a fresh tmpfs at /newroot and readies it; the returned
// step switches into it. On failure /newroot is unmounted again.
func (b *booter) prepareRamroot(ctx context.Context, r *ramrootPlan, progress func(loader.Progress)) (exec func() error, err error) {
	if err := runHooks(ctx, layout.HooksDir, "pre-fetch", b.env(), b.logf); err != nil {
		return nil, err
	}
	size := r.Size
	if size == "" {
		size = defaultSize()
	}
	unix.Unmount(layout.NewRoot, unix.MNT_DETACH) // a cancelled earlier attempt's
	os.MkdirAll(layout.NewRoot, 0o755)
	if err := unix.Mount("tmpfs", layout.NewRoot, "tmpfs", 0, "mode=0755,size="+size); err != nil {
		return nil, fmt.Errorf("mount tmpfs size=%s on %s: %w", size, layout.NewRoot, err)
	}
	defer func() {
		if err != nil {
			unix.Unmount(layout.NewRoot, unix.MNT_DETACH)
		}
	}()
	b.logf("fetching %s into a %s tmpfs", r.Image.URLs[0], size)
	res, err := loader.Load(ctx, layout.NewRoot, r.Image.URLs, loader.Options{
		SHA256:   r.Image.SHA256,
		Fetcher:  b.fetcher(),
		Logf:     b.logf,
		Progress: progress,
	})
	if err != nil {
		return nil, err
	}
	verified := "no checksum given"
	if res.Verified {
		verified = "sha256 " + res.SHA256[:16] + "… verified"
	}
	b.logf("extracted %d entries, %s from %s of %s in %.1fs (%s)", res.Entries, loader.HumanBytes(res.Uncompressed),
		loader.HumanBytes(res.Size), res.Format, res.Duration.Seconds(), verified)
	if err := copyKernelFiles(layout.NewRoot, b.logf); err != nil {
		return nil, fmt.Errorf("copying modules into the image: %w", err)
	}
	if b.lease != nil {
		files, err := netup.WriteImageConfig(layout.NewRoot, b.lease)
		if err != nil {
			return nil, fmt.Errorf("writing the image's network config: %w", err)
		}
		b.logf("network config for %s: %s", b.lease.MAC, strings.Join(files, " "))
	}
	if err := runHooks(ctx, layout.HooksDir, "post-extract", b.env(), b.logf); err != nil {
		return nil, err
	}
	init := r.Init
	if init == "" {
		init = "/sbin/init"
	}
	if _, err := resolveIn(layout.NewRoot, init); err != nil {
		return nil, fmt.Errorf("init=%s in the image: %w", init, err)
	}
	return func() error {
		b.logf("switching to the new root, exec %s %s", init, strings.Join(r.Args, " "))
		// Past this point the initramfs is deleted: nothing to go back to.
		env := []string{"HOME=/", "TERM=linux", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
		return switchroot.SwitchRoot(layout.NewRoot, init, r.Args, env)
	}, nil
}

func (b *booter) fetcher() *loader.Fetcher {
	client, err := loader.NewClient(caFile(), 0)
	if err != nil {
		b.logf("%v: using the system CAs only", err)
		client, _ = loader.NewClient("", 0)
	}
	return &loader.Fetcher{Client: client, Logf: b.logf}
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

// consoleProgress prints a progress line every two seconds and at each stage change: a serial
// console log stays readable, and a VGA console shows the same.
func consoleProgress(logf func(string, ...any)) func(loader.Progress) {
	var last time.Time
	stage := loader.Stage(-1)
	return func(p loader.Progress) {
		if p.Stage == stage && time.Since(last) < 2*time.Second {
			return
		}
		stage, last = p.Stage, time.Now()
		line := fmt.Sprintf("%s: %s", p.Stage, loader.HumanBytes(p.Read))
		if p.Total > 0 {
			line += fmt.Sprintf(" of %s (%.0f%%)", loader.HumanBytes(p.Total), 100*float64(p.Read)/float64(p.Total))
		}
		line += fmt.Sprintf(", %s/s, %s unpacked", loader.HumanBytes(int64(p.Rate)), loader.HumanBytes(p.Extracted))
		if eta := p.ETA(); eta > 0 {
			line += fmt.Sprintf(", ETA %v", eta.Round(time.Second))
		}
		logf("%s", line)
	}
}

// copyKernelFiles copies the running kernel's modules (and firmware) from the initramfs into
// the image when it has none for this kernel, as the seed did: images need not carry a kernel.
func copyKernelFiles(root string, logf func(string, ...any)) error {
	var u unix.Utsname
	unix.Uname(&u)
	rel := path.Join("lib/modules", unix.ByteSliceToString(u.Release[:]))
	for _, d := range []string{rel, "lib/firmware"} {
		src := "/" + d
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
		_, err = io.Copy(bufio.NewWriter(out), in)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	})
}

// resolveIn resolves p inside root as the new root will see it: symlinks, absolute ones
// included, are followed relative to root. It returns the host path of an executable file.
func resolveIn(root, p string) (string, error) {
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
