package serve

import (
	"fmt"
	"io/fs"
)

// etag returns a strong ETag for a regular file, from what identifies its content without
// reading it: on Linux the device and inode (a file replaced by rename, as builders write
// images, is a new inode), the size, the modification time and the change time (a file
// rewritten in place gets a new mtime; one whose mtime was then set back, by touch -r or an
// rsync -t in place, still gets a new ctime), all in nanoseconds.
//
// Strong means byte-for-byte identity, which is what If-Range needs for a resume to be safe.
// The one case it misses is a same-size rewrite in place within one tick of the kernel's
// coarse clock (a few milliseconds) — not a thing a lab does to an image being downloaded, and
// ramboot's loader verifies the SHA-256 anyway. A content hash would be exact but costs a full
// read of a multi-gigabyte image before the first byte can be sent, and a cache of hashes
// would need the same validators to know when it is stale.
func etag(st fs.FileInfo) string {
	return fmt.Sprintf("%q", fileID(st)+fmt.Sprintf("%x-%x", st.Size(), st.ModTime().UnixNano()))
}
