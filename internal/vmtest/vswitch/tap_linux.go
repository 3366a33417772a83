package vswitch

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// tapLink is a TAP device (IFF_TAP|IFF_NO_PI: whole Ethernet frames, no packet header).
type tapLink struct{ f *os.File }

func (l *tapLink) ReadFrame(b []byte) (int, error) { return l.f.Read(b) }

// WriteFrame ignores the error of a device that is down (EIO): a cable to a switched-off host.
func (l *tapLink) WriteFrame(b []byte) error { _, err := l.f.Write(b); return err }
func (l *tapLink) Close() error              { return l.f.Close() }

// AddTap adds a port that is a new TAP device named dev, created in the network namespace
// whose file is netns (as /run/netns/NAME; "" for the switch's own). The device lives as
// long as the switch: Close deletes it. The namespace's side brings it up and addresses it.
// Needs CAP_NET_ADMIN.
func (s *Switch) AddTap(name, netns, dev string, m Mode) (*Port, error) {
	if err := m.check(); err != nil {
		return nil, err
	}
	f, err := openTap(netns, dev)
	if err != nil {
		return nil, fmt.Errorf("vswitch: port %s: %w", name, err)
	}
	return s.add(&bport{name: name, mode: m}, []link{&tapLink{f}}, []string{name})[0], nil
}

// openTap opens /dev/net/tun and creates the TAP on a thread switched into netns: a TUN/TAP
// device belongs to the namespace its file was opened in.
func openTap(netns, dev string) (*os.File, error) {
	runtime.LockOSThread()
	if netns != "" {
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer orig.Close()
		target, err := os.Open(netns)
		if err != nil {
			runtime.UnlockOSThread()
			return nil, err
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			return nil, fmt.Errorf("setns %s: %w", netns, err)
		}
		defer func() {
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			} // else the thread stays locked, and the runtime discards it with its goroutine
		}()
	} else {
		defer runtime.UnlockOSThread()
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(dev)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", dev, err)
	}
	// Non-blocking, so that the runtime's poller serves Read and Close interrupts it.
	return os.NewFile(uintptr(fd), "/dev/net/tun:"+dev), nil
}
