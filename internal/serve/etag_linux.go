package serve

import (
	"fmt"
	"io/fs"
	"syscall"
)

// fileID returns "DEV.INODE-CTIME-" in hex, or "" when st has no syscall.Stat_t.
func fileID(st fs.FileInfo) string {
	s, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%x.%x-%x-", s.Dev, s.Ino, s.Ctim.Nano())
}
