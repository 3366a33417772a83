package loader

import (
	"archive/tar"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The extractor's tar headers are read here when they are of the common kind, and by
// archive/tar otherwise, entry by entry over the same bytes (tarEntries).
//
// Why by hand: on a root image archive/tar's header parsing was 15% of a zstd load's CPU
// (70 ms of 470 ms on the 175 MB generated bench image, 11,734 entries with a PAX header
// each), and the load is CPU-bound on 2 cores. Half of that went to guessing the header's
// format (archive/tar decodes every byte of each ustar block as UTF-8 to tell ustar from an
// unknown format), which extraction never asks for; most of the rest to trimming and
// allocating for each numeric field. No maintained library parses tar headers faster while
// keeping archive/tar's semantics, which the extractor's fidelity to GNU tar is built on.
//
// The fast path takes only what it can parse exactly as archive/tar does, and declines the
// rest before consuming a byte: a ustar or GNU header block whose checksum is the unsigned
// sum, whose numbers are plain octal, of type regular (0 or NUL), hard link, symlink, device,
// directory, fifo or contiguous file, perhaps after one PAX extended header whose records
// are well formed, whose numbers and times are plain decimals and which has no GNU sparse
// record. Everything else (v7 and star headers, GNU long names, base-256 numbers, global
// headers, sparse members, zero blocks, checksums archive/tar would refuse, truncated
// headers) goes to archive/tar, which decides and reports exactly as before. The fields the
// fast path sets are archive/tar's but Format (its guess of the writer's format) and the
// deprecated Xattrs; TestTarFastMatchesArchiveTar and FuzzTarFast hold it to that.

// maxFastPAX bounds the PAX extended header the fast path reads (a root image's are a few
// hundred bytes; archive/tar takes larger ones, up to its own limit of 1 MiB).
const maxFastPAX = 16 << 10

// tarSource is the tar stream under both parsers: it serves the bytes the fast path looked at
// but did not take first, then the stream; off counts the bytes consumed.
type tarSource struct {
	r        io.Reader
	buf      []byte // buf[pos:end] are read from r and not consumed yet
	pos, end int
	off      int64
	scratch  []byte // for discarding
}

func newTarSource(r io.Reader) *tarSource {
	return &tarSource{r: r, buf: make([]byte, 2*blockSize+maxFastPAX+blockSize)}
}

// Read consumes bytes: the pending ones first, then the stream's.
func (s *tarSource) Read(p []byte) (int, error) {
	if s.pos < s.end {
		n := copy(p, s.buf[s.pos:s.end])
		s.pos += n
		s.off += int64(n)
		return n, nil
	}
	n, err := s.r.Read(p)
	s.off += int64(n)
	return n, err
}

// peek returns the next n bytes without consuming them (n <= len(buf)); fewer when the stream
// ends first (with err nil: whoever consumes them sees the end). It reads no more than n.
func (s *tarSource) peek(n int) ([]byte, error) {
	if s.end-s.pos < n && s.pos > 0 {
		s.end = copy(s.buf, s.buf[s.pos:s.end])
		s.pos = 0
	}
	for s.end-s.pos < n {
		m, err := s.r.Read(s.buf[s.end : s.pos+n])
		s.end += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return s.buf[s.pos:s.end], nil
}

// discard consumes n bytes; io.ErrUnexpectedEOF if the stream ends first.
func (s *tarSource) discard(n int64) error {
	for n > 0 {
		if s.pos < s.end {
			k := min(int64(s.end-s.pos), n)
			s.pos += int(k)
			s.off += k
			n -= k
			continue
		}
		if s.scratch == nil {
			s.scratch = make([]byte, 32<<10)
		}
		m, err := s.r.Read(s.scratch[:min(int64(len(s.scratch)), n)])
		s.off += int64(m)
		n -= int64(m)
		if err == io.EOF && n > 0 {
			return io.ErrUnexpectedEOF
		}
		if err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// fastData reads the data of the entry the fast path returned: remain bytes, then io.EOF.
type fastData struct {
	s      *tarSource
	remain int64
}

func (d *fastData) Read(p []byte) (int, error) {
	if d.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > d.remain {
		p = p[:d.remain]
	}
	n, err := d.s.Read(p)
	d.remain -= int64(n)
	if err == io.EOF {
		if d.remain > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

// tarEntries walks a tar stream's entries for the extractor: next returns an entry, and done
// consumes what is left of it (data and padding) before the next one.
type tarEntries struct {
	src *tarSource
	tp  *tarTap
	// The current entry's data: fast (the fast path's), tr (archive/tar's), or sp (a sparse
	// member, read raw through tp).
	fast fastData
	pad  int64
	tr   *tar.Reader
	sp   *sparseMap
	// fastN counts the entries the fast path read (tests look).
	fastN  int
	noFast bool // every entry through archive/tar (tests compare)
	// lone is set when a lone zero block ended the archive, at offset loneAt.
	lone   bool
	loneAt int64
}

func newTarEntries(r io.Reader) *tarEntries {
	src := newTarSource(r)
	return &tarEntries{src: src, tp: &tarTap{src: src}}
}

// next returns the next entry, its data and (for a sparse member) its map; io.EOF at the end
// of the archive (see Extractor.Extract); a *StreamError when the stream fails or is not a
// valid archive.
func (e *tarEntries) next() (*tar.Header, io.Reader, *sparseMap, error) {
	e.tr, e.sp = nil, nil
	var hdr *tar.Header
	var n int
	var err error
	if !e.noFast {
		hdr, n, err = e.fastHeader()
	}
	if err != nil {
		return nil, nil, nil, &StreamError{err}
	}
	if hdr != nil {
		e.src.discard(int64(n)) // peeked: cannot fail
		e.fast = fastData{s: e.src, remain: dataSize(hdr)}
		e.pad = -e.fast.remain & (blockSize - 1)
		e.fastN++
		return hdr, &e.fast, nil, nil
	}
	// archive/tar, for this entry only: it keeps no state from one entry to the next but the
	// padding to skip, which done skips.
	tr := tar.NewReader(e.tp)
	e.tp.record()
	hdr, err = tr.Next()
	e.tp.on = false
	if err == io.EOF || errors.Is(err, tar.ErrHeader) {
		if end, lone := e.tp.endMarker(); end {
			e.lone, e.loneAt = lone, e.tp.headerStart()
			return nil, nil, nil, io.EOF
		}
		if err == io.EOF {
			return nil, nil, nil, fmt.Errorf("%w: the tar archive has no end-of-archive marker", ErrTruncated)
		}
	}
	if err != nil {
		return nil, nil, nil, &StreamError{err}
	}
	if isSparse(hdr) {
		if e.sp = readSparseMap(hdr, e.tp); e.sp != nil {
			return hdr, e.tp, e.sp, nil // the fragments are read raw, holes are never read at all
		}
	}
	e.tr = tr
	return hdr, tr, nil, nil
}

// done consumes the rest of the current entry: data not read (a hard link's, say) and the
// padding to the next header.
func (e *tarEntries) done() error {
	var err error
	switch {
	case e.sp != nil:
		// archive/tar still expects the fragments; a new reader starts at the next header.
		return skipPadding(e.tp, e.sp.physical)
	case e.tr != nil:
		if _, err = io.Copy(io.Discard, e.tr); err == nil {
			err = e.src.discard(-e.src.off & (blockSize - 1))
		}
	default:
		if err = e.src.discard(e.fast.remain); err == nil {
			e.fast.remain = 0
			err = e.src.discard(e.pad)
		}
	}
	if err != nil {
		return &StreamError{err}
	}
	return nil
}

// dataSize is how many bytes of data follow an entry's header: none for the types that have
// none whatever their size field says, as archive/tar reads them.
func dataSize(hdr *tar.Header) int64 {
	switch hdr.Typeflag {
	case tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock, tar.TypeDir, tar.TypeFifo:
		return 0
	}
	return hdr.Size
}

// fastHeader parses the next entry's headers when the fast path takes them: the header and how
// many bytes its headers take; a nil header otherwise, with nothing consumed.
func (e *tarEntries) fastHeader() (*tar.Header, int, error) {
	b, err := e.src.peek(blockSize)
	if err != nil || len(b) < blockSize {
		return nil, 0, err
	}
	var pax []byte
	n := blockSize
	if b[156] == tar.TypeXHeader {
		var x tar.Header
		if !parseBlock(b, &x) || x.Size > maxFastPAX {
			return nil, 0, nil
		}
		n += int(x.Size+blockSize-1) &^ (blockSize - 1)
		if b, err = e.src.peek(n + blockSize); err != nil || len(b) < n+blockSize {
			return nil, 0, err
		}
		pax, b = b[blockSize:blockSize+int(x.Size)], b[n:]
		n += blockSize
	}
	switch b[156] {
	case tar.TypeReg, typeRegA, tar.TypeLink, tar.TypeSymlink, tar.TypeChar, tar.TypeBlock,
		tar.TypeDir, tar.TypeFifo, tar.TypeCont:
	default:
		return nil, 0, nil
	}
	hdr := new(tar.Header)
	if !parseBlock(b, hdr) {
		return nil, 0, nil
	}
	if pax != nil && !mergeFastPAX(hdr, pax) {
		return nil, 0, nil
	}
	if hdr.Typeflag == typeRegA {
		hdr.Typeflag = tar.TypeReg
		if strings.HasSuffix(hdr.Name, "/") {
			hdr.Typeflag = tar.TypeDir // old archives mark directories so
		}
	}
	return hdr, n, nil
}

// typeRegA is the old type of regular files ('\x00'), which archive/tar reports as TypeReg (or
// TypeDir when the name ends in a slash); its constant is deprecated for writers.
const typeRegA = '\x00'

// Header block layout (POSIX ustar; GNU's differs after the device numbers).
const (
	hName, hMode, hUID, hGID, hSize, hMtime, hChksum = 0, 100, 108, 116, 124, 136, 148
	hLink, hMagic, hUname, hGname, hDevMajor         = 157, 257, 265, 297, 329
	hDevMinor, hPrefix, hGNUAtime, hGNUCtime         = 337, 345, 345, 357
)

// parseBlock fills hdr from a ustar or GNU header block, as archive/tar would; false when the
// block is anything else, or anything archive/tar would parse otherwise or refuse.
func parseBlock(b []byte, hdr *tar.Header) bool {
	sum, ok := octal(b[hChksum : hChksum+8])
	if !ok || sum != unsignedSum(b) {
		return false
	}
	var gnu bool
	switch {
	case string(b[hMagic:hMagic+6]) == "ustar\x00":
		if string(b[508:512]) == "tar\x00" {
			return false // star
		}
	case string(b[hMagic:hMagic+8]) == "ustar  \x00":
		// archive/tar parses GNU access and change times with a fallback for files of old Go
		// writers; GNU tar writes them only for incremental dumps.
		if b[hGNUAtime] != 0 || b[hGNUCtime] != 0 {
			return false
		}
		gnu = true
	default:
		return false // v7
	}
	var oks [7]bool
	hdr.Size, oks[0] = octal(b[hSize : hSize+12])
	hdr.Mode, oks[1] = octal(b[hMode : hMode+8])
	uid, ok2 := octal(b[hUID : hUID+8])
	gid, ok3 := octal(b[hGID : hGID+8])
	mtime, ok4 := octal(b[hMtime : hMtime+12])
	hdr.Devmajor, oks[5] = octal(b[hDevMajor : hDevMajor+8])
	hdr.Devminor, oks[6] = octal(b[hDevMinor : hDevMinor+8])
	oks[2], oks[3], oks[4] = ok2, ok3, ok4
	if oks != [7]bool{true, true, true, true, true, true, true} {
		return false
	}
	hdr.Typeflag = b[156]
	hdr.Uid, hdr.Gid = int(uid), int(gid)
	hdr.ModTime = time.Unix(mtime, 0)
	hdr.Name = cString(b[hName : hName+100])
	hdr.Linkname = cString(b[hLink : hLink+100])
	hdr.Uname = internName(b[hUname : hUname+32])
	hdr.Gname = internName(b[hGname : hGname+32])
	if !gnu {
		if p := cBytes(b[hPrefix : hPrefix+155]); len(p) > 0 {
			hdr.Name = string(p) + "/" + hdr.Name
		}
	}
	return true
}

// unsignedSum is the header checksum: the sum of the block's bytes with the checksum field
// taken as spaces. Eight bytes at a time, in four 16-bit lanes (64 words of at most 2*255 per
// lane stay below 65536).
func unsignedSum(b []byte) int64 {
	b = b[:blockSize]
	const lanes = 0x00ff00ff00ff00ff
	var acc uint64
	for i := 0; i < blockSize; i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		acc += v&lanes + v>>8&lanes
	}
	s := acc&0xffff + acc>>16&0xffff + acc>>32&0xffff + acc>>48
	for _, c := range b[hChksum : hChksum+8] {
		s -= uint64(c)
	}
	return int64(s) + 8*' '
}

// octal parses a numeric field the way archive/tar does when it holds plain octal: spaces and
// NULs around the digits; false for anything else (base-256, digits 8 or 9, a NUL or space
// between digits), which the fast path leaves to archive/tar.
func octal(b []byte) (int64, bool) {
	i, j := 0, len(b)
	for i < j && (b[i] == ' ' || b[i] == 0) {
		i++
	}
	for j > i && (b[j-1] == ' ' || b[j-1] == 0) {
		j--
	}
	if j-i > 21 { // 63 bits
		return 0, false
	}
	var x int64
	for _, c := range b[i:j] {
		if c < '0' || c > '7' {
			return 0, false
		}
		x = x<<3 | int64(c-'0')
	}
	return x, true
}

// cBytes is a NUL-terminated field's bytes.
func cBytes(b []byte) []byte {
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

func cString(b []byte) string { return string(cBytes(b)) }

// internName returns common user and group names without allocating.
func internName(b []byte) string {
	b = cBytes(b)
	switch string(b) {
	case "":
		return ""
	case "root":
		return "root"
	}
	return string(b)
}

// mergeFastPAX applies a PAX extended header's records to hdr as archive/tar does; false when
// a record is malformed, a number or time is not a plain decimal, or the member is sparse.
func mergeFastPAX(hdr *tar.Header, data []byte) bool {
	s := string(data)
	recs := make(map[string]string, 4)
	for len(s) > 0 {
		// "LEN KEY=VALUE\n", LEN counting the whole record.
		sp := strings.IndexByte(s, ' ')
		if sp <= 0 {
			return false
		}
		n, ok := decimal(s[:sp])
		if !ok || n < 5 || n > int64(len(s)) || n <= int64(sp+1) || s[n-1] != '\n' {
			return false
		}
		k, v, ok := strings.Cut(s[sp+1:n-1], "=")
		if !ok || k == "" || strings.HasPrefix(k, "GNU.sparse.") {
			return false
		}
		switch k {
		case "path", "linkpath", "uname", "gname":
			if strings.IndexByte(v, 0) >= 0 {
				return false
			}
		default:
			if strings.IndexByte(k, 0) >= 0 {
				return false
			}
		}
		recs[k] = v
		s = s[n:]
	}
	for k, v := range recs {
		if v == "" {
			continue // the header's own field stays
		}
		ok := true
		var id int64
		switch k {
		case "path":
			hdr.Name = v
		case "linkpath":
			hdr.Linkname = v
		case "uname":
			hdr.Uname = v
		case "gname":
			hdr.Gname = v
		case "uid":
			id, ok = decimal(v)
			hdr.Uid = int(id)
		case "gid":
			id, ok = decimal(v)
			hdr.Gid = int(id)
		case "size":
			hdr.Size, ok = decimal(v)
		case "mtime":
			hdr.ModTime, ok = paxTime(v)
		case "atime":
			hdr.AccessTime, ok = paxTime(v)
		case "ctime":
			hdr.ChangeTime, ok = paxTime(v)
		}
		if !ok {
			return false
		}
	}
	hdr.PAXRecords = recs
	return true
}

// decimal parses 1 to 18 decimal digits (no sign).
func decimal(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	var x int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		x = x*10 + int64(c-'0')
	}
	return x, true
}

// paxTime parses a PAX time without a sign: seconds, and perhaps a dot and a fraction, of which
// nanoseconds are kept.
func paxTime(s string) (time.Time, bool) {
	secs, frac, dot := strings.Cut(s, ".")
	sec, ok := decimal(secs)
	if !ok {
		return time.Time{}, false
	}
	if !dot || frac == "" {
		return time.Unix(sec, 0), true
	}
	var ns int64
	for i := 0; i < len(frac); i++ {
		c := frac[i]
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		if i < 9 {
			ns = ns*10 + int64(c-'0')
		}
	}
	for i := len(frac); i < 9; i++ {
		ns *= 10
	}
	return time.Unix(sec, ns), true
}
