// Package imageconv makes ramboot root-filesystem images without a container engine: it reads
// a root tree from a directory, a tar archive, a `docker save` archive, an OCI layout or a
// registry, flattens container layers (whiteouts honoured), and writes one reproducible tar
// stream compressed by the output's extension (.tar.zst, .tar.xz in parallel blocks, .tar.gz,
// .tar) with a sha256sum file beside it.
//
// The archive is what `tar --numeric-owner --xattrs --format=posix -C ROOT -c .` would write
// of the tree, made reproducible: entries sorted by path (each directory's entries together),
// numeric owners only (no user or group names), nanosecond mtimes (optionally clamped), no
// atime or ctime, xattrs as SCHILY.xattr.* records, hard links pointing at the first path of
// their inode. The same input gives the same bytes.
//
// It is host-only code: /init never links it (cmd/ramboot-init's dependency test guards that).
package imageconv
