// Package loader turns an image URL into a populated root directory: it fetches the image
// (HTTP(S) with Range resume, mirrors and retries, or a local file), verifies its SHA-256 while
// streaming, decompresses it by magic bytes (xz in parallel, zstd, gzip, bzip2, plain tar) and
// extracts the tar stream into a directory exactly as GNU tar does as root, refusing anything
// that would land outside it.
//
// A docker://HOST/REPO:TAG (or @sha256:DIGEST) URL names an image in an OCI registry instead:
// the loader resolves it to this machine's platform and streams its layers in order, each blob
// verified against its digest, whiteouts applied (registry*.go).
//
// It is the code both /init (for ramroot=URL) and the host command `ramboot fetch` run. It does
// one pass over the data with no temporary copy of the image. On failure the directory is
// emptied again, so a caller never sees a partial or unverified tree.
package loader
