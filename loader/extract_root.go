package loader

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// dirState is a directory's own metadata: owner, mode, times and extended attributes (POSIX
// ACLs included). Load saves its target's before the first byte and puts it back after every
// failure and before every restart, so that nothing of an unverified archive's "./" entry (a
// default ACL, inherited by every file made later) outlives the attempt.
type dirState struct {
	path         string
	uid, gid     uint32
	mode         uint32
	atime, mtime unix.Timespec
	xattrs       map[string][]byte
}

func (s *dirState) String() string {
	return fmt.Sprintf("%s: %d:%d mode %o, %d xattrs", s.path, s.uid, s.gid, s.mode&07777, len(s.xattrs))
}

// openDirNoFollow opens path, a directory, for its metadata.
func openDirNoFollow(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, nil
}

// saveDir records the metadata of the directory path.
func saveDir(path string) (*dirState, error) {
	fd, err := openDirNoFollow(path)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	xa, err := fdXattrs(fd)
	if err != nil {
		return nil, fmt.Errorf("reading xattrs of %s: %w", path, err)
	}
	return &dirState{path: path, uid: st.Uid, gid: st.Gid, mode: st.Mode, atime: st.Atim, mtime: st.Mtim, xattrs: xa}, nil
}

// fdXattrs returns the extended attributes of fd; none where the file system has none.
func fdXattrs(fd int) (map[string][]byte, error) {
	size, err := unix.Flistxattr(fd, nil)
	for err == nil && size > 0 {
		names := make([]byte, size)
		var n int
		if n, err = unix.Flistxattr(fd, names); errors.Is(err, unix.ERANGE) {
			size, err = unix.Flistxattr(fd, nil) // grew meanwhile
			continue
		}
		if err != nil {
			break
		}
		out := map[string][]byte{}
		for _, name := range strings.Split(strings.TrimRight(string(names[:n]), "\x00"), "\x00") {
			v, err := fdXattr(fd, name)
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("getxattr %s: %w", name, err)
			}
			out[name] = v
		}
		return out, nil
	}
	if errors.Is(err, unix.ENOTSUP) {
		err = nil
	}
	return nil, err
}

func fdXattr(fd int, name string) ([]byte, error) {
	for {
		size, err := unix.Fgetxattr(fd, name, nil)
		if err != nil {
			return nil, err
		}
		v := make([]byte, size)
		n, err := unix.Fgetxattr(fd, name, v)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		return v[:n], err
	}
}

// restore puts the recorded metadata back, in the order owner, xattrs, mode, times (chown may
// clear mode bits, and setting an access ACL changes the group bits). Only what differs is
// changed, so that an attribute the caller may not touch (security.selinux) is left alone.
func (s *dirState) restore() error {
	fd, err := openDirNoFollow(s.path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", s.path, err)
	}
	var errs []error
	if st.Uid != s.uid || st.Gid != s.gid {
		if err := unix.Fchown(fd, int(s.uid), int(s.gid)); err != nil {
			errs = append(errs, fmt.Errorf("chown %d:%d: %w", s.uid, s.gid, err))
		}
	}
	now, err := fdXattrs(fd)
	if err != nil {
		errs = append(errs, err)
	}
	for _, name := range slices.Sorted(maps.Keys(now)) {
		if _, keep := s.xattrs[name]; !keep {
			if err := unix.Fremovexattr(fd, name); err != nil && !errors.Is(err, unix.ENODATA) {
				errs = append(errs, fmt.Errorf("removexattr %s: %w", name, err))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.xattrs)) {
		if v, ok := now[name]; !ok || !bytes.Equal(v, s.xattrs[name]) {
			if err := unix.Fsetxattr(fd, name, s.xattrs[name], 0); err != nil {
				errs = append(errs, fmt.Errorf("setxattr %s: %w", name, err))
			}
		}
	}
	if err := unix.Fchmod(fd, s.mode&07777); err != nil {
		errs = append(errs, fmt.Errorf("chmod %o: %w", s.mode&07777, err))
	}
	if err := unix.UtimesNanoAt(fd, ".", []unix.Timespec{s.atime, s.mtime}, 0); err != nil {
		errs = append(errs, fmt.Errorf("setting times: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("restoring %s: %w", s.path, err)
	}
	return nil
}
