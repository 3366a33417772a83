package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// gen names how a regular file's content is made.
type gen int

const (
	genEmpty     gen = iota
	genProse         // documentation: wrapped sentences and paragraphs
	genCopyright     // debian/copyright: a header, then one of a few licence texts in full
	genConfig        // key/value configuration with comments
	genShell         // shell scripts (init scripts, maintainer scripts)
	genPython        // Python modules
	genPerl          // Perl modules
	genHeader        // C headers
	genManGz         // roff manual page, gzip-compressed
	genDocGz         // changelog, gzip-compressed
	genELF           // executables and shared libraries
	genRandom        // firmware and other already-compressed blobs
	genMO            // gettext catalogues
	genTZif          // time zone data
	genPEM           // certificates: base64 of random bytes
	genDerived       // content computed from other entries (dpkg lists and md5sums, bundles)
	numGens
)

var genNames = [numGens]string{"empty", "prose", "copyright", "config", "shell", "python", "perl", "c-header",
	"man.gz", "doc.gz", "elf", "random", "mo", "tzif", "pem", "derived"}

func (g gen) String() string { return genNames[g] }

// sampler draws indices with a Zipf-Mandelbrot law in O(1) from a precomputed table: word
// frequencies in text and instruction frequencies in code both follow such a law, which is
// what makes them compress the way real files do.
type sampler []int32

func newSampler(n int, s, q float64) sampler {
	const slots = 1 << 20
	cum := make([]float64, n)
	var sum float64
	for i := range n {
		sum += 1 / math.Pow(float64(i)+q, s)
		cum[i] = sum
	}
	t := make(sampler, slots)
	i := 0
	for j := range t {
		x := (float64(j) + 0.5) / slots * sum
		for i < n-1 && cum[i] < x {
			i++
		}
		t[j] = int32(i)
	}
	return t
}

func (s sampler) draw(r *rand.Rand) int { return int(s[r.Uint32()>>12]) }

// lexicon is the generated language shared by every text file: the same words recur across
// files, as English and identifiers do across a real distribution.
type lexicon struct {
	words     []string
	wordPick  sampler
	idents    []string
	identPick sampler
	licenses  []string // licence texts quoted in full by many copyright files
	ops       [][]byte // x86-like instruction templates: opcode bytes, then operand kind
	opKind    []byte
	opPick    sampler
	idioms    [][]byte // canned instruction sequences
	idiomPick sampler
}

var common = strings.Fields(`the of and to a in is for that this file be with on by not are or you
it as if from at can will license software use see version default system which an may under all
any copyright program must should used without other set when no option directory value data user
configuration following free public general gnu distributed warranty more terms new also each only
one two has have been there these time name path list error return code debian package support
server client network enable disable true false none string number first output input command line
run start stop status service module object type function argument options file files level log
read write open close size buffer memory device kernel boot root mount host address port protocol`)

func newLexicon(r *rand.Rand) *lexicon {
	lx := &lexicon{}
	seen := map[string]bool{}
	for _, w := range common {
		seen[w] = true
		lx.words = append(lx.words, w)
	}
	const onsets = "b c d f g h j k l m n p r s t v w z bl br ch cr dr fl gr pl pr sh st str th tr"
	const nuclei = "a e i o u a e i o ai ea ou io"
	const codas = " n r s t l m nd nt st ng ck x"
	on, nu, co := strings.Fields(onsets), strings.Fields(nuclei), append([]string{""}, strings.Fields(codas)...)
	for len(lx.words) < 8000 {
		var sb strings.Builder
		for range 1 + r.IntN(2) + r.IntN(3)/2 {
			sb.WriteString(on[r.IntN(len(on))] + nu[r.IntN(len(nu))] + co[r.IntN(len(co))])
		}
		if w := sb.String(); !seen[w] {
			seen[w] = true
			lx.words = append(lx.words, w)
		}
	}
	lx.wordPick = newSampler(len(lx.words), 1.07, 2.7)

	for len(lx.idents) < 6000 {
		n := 1 + r.IntN(3)
		parts := make([]string, n)
		for i := range parts {
			parts[i] = lx.words[lx.wordPick.draw(r)%3000]
		}
		id := strings.Join(parts, "_")
		if !seen[id] && len(id) > 1 {
			seen[id] = true
			lx.idents = append(lx.idents, id)
		}
	}
	lx.identPick = newSampler(len(lx.idents), 1.0, 5)

	for _, n := range []int{18000, 7000, 1500, 1100} {
		var sb strings.Builder
		writeProse(&sb, lx, r, n)
		lx.licenses = append(lx.licenses, sb.String())
	}

	// Instruction templates: optional REX or operand-size prefix, one or two opcode bytes,
	// an optional ModRM byte, then an operand whose bytes are drawn at emission time.
	for range 600 {
		var op []byte
		switch r.IntN(6) {
		case 0, 1:
			op = append(op, 0x48)
		case 2:
			op = append(op, []byte{0x49, 0x4c, 0x4d, 0x66, 0x41}[r.IntN(5)])
		}
		if r.IntN(5) == 0 {
			op = append(op, 0x0f)
		}
		op = append(op, byte(r.IntN(256)))
		if r.IntN(10) < 7 {
			op = append(op, byte(r.IntN(256)))
		}
		lx.ops = append(lx.ops, op)
		lx.opKind = append(lx.opKind, []byte("nnnnbbbddrri")[r.IntN(12)])
	}
	lx.opPick = newSampler(len(lx.ops), 1.3, 3)
	for range 2000 {
		var seq []byte
		for range 2 + r.IntN(8) {
			seq = lx.instruction(r, seq)
		}
		lx.idioms = append(lx.idioms, seq)
	}
	lx.idiomPick = newSampler(len(lx.idioms), 1.0, 10)
	return lx
}

// instruction appends one x86-like instruction: a template and its operand.
func (lx *lexicon) instruction(r *rand.Rand, b []byte) []byte {
	i := lx.opPick.draw(r)
	b = append(b, lx.ops[i]...)
	switch lx.opKind[i] {
	case 'b':
		b = append(b, byte(r.IntN(64)))
	case 'd':
		b = append(b, byte(int8(8*(r.IntN(32)-16))))
	case 'r':
		b = binary.LittleEndian.AppendUint32(b, uint32(int32(r.IntN(1<<14)-1<<13)))
	case 'i':
		if r.IntN(4) != 0 {
			b = binary.LittleEndian.AppendUint32(b, uint32(r.IntN(4096)))
		} else {
			b = binary.LittleEndian.AppendUint32(b, r.Uint32())
		}
	}
	return b
}

func (lx *lexicon) word(r *rand.Rand) string  { return lx.words[lx.wordPick.draw(r)] }
func (lx *lexicon) ident(r *rand.Rand) string { return lx.idents[lx.identPick.draw(r)] }

// logNormal draws a size with the given median and spread, clamped to [lo, hi]: file sizes in a
// distribution are roughly log-normal.
func logNormal(r *rand.Rand, median float64, sigma float64, lo, hi int) int {
	n := int(median * math.Exp(sigma*r.NormFloat64()))
	return max(lo, min(hi, n))
}

// writeProse appends about n bytes of wrapped sentences in paragraphs.
func writeProse(sb *strings.Builder, lx *lexicon, r *rand.Rand, n int) {
	end := sb.Len() + n
	col := 0
	for sb.Len() < end {
		words := 5 + r.IntN(20)
		for i := range words {
			w := lx.word(r)
			if i == 0 {
				w = strings.ToUpper(w[:1]) + w[1:]
			}
			if i == words-1 {
				w += "."
			} else if r.IntN(12) == 0 {
				w += ","
			}
			if col+len(w)+1 > 74 {
				sb.WriteByte('\n')
				col = 0
			} else if col > 0 {
				sb.WriteByte(' ')
				col++
			}
			sb.WriteString(w)
			col += len(w)
		}
		if r.IntN(6) == 0 {
			sb.WriteString("\n\n")
			col = 0
		}
	}
	sb.WriteByte('\n')
}

// codeStyle describes a language for writeCode: line templates (see fill) that open a block,
// close the block opened by the template at the same index, or stay at the same depth.
type codeStyle struct {
	header       string
	indent       string
	open, closer []string
	body         []string
}

var styles = map[gen]*codeStyle{
	genShell: {
		header: "#!/bin/sh\n# {S}\nset -e\n\n",
		indent: "\t",
		open:   []string{"{I}() {", "if [ -x {P} ]; then", "case \"${I}\" in", "for {I} in ${I}; do", "{W})", "while read {I}; do"},
		closer: []string{"}", "fi", "esac", "done", ";;", "done"},
		body: []string{"echo \"{S}\"", "[ -f {P} ] || exit 0", "{I}=\"${I}\"", ". {P}", "log_daemon_msg \"{S}\" \"{I}\"",
			"start-stop-daemon --start --quiet --pidfile {P} --exec {P} -- ${I}", "rm -f {P}", "# {S}",
			"{I}=$({I} \"${I}\" | sed -e 's/{W}/{W}/')", "return {N}", "test -d {P} || mkdir -p {P}"},
	},
	genPython: {
		header: "# {S}\n\"\"\"{S}\"\"\"\n\nimport {I}\nimport {I}\nfrom {I} import {I}, {I}\n\n",
		indent: "    ",
		open:   []string{"def {I}(self, {I}, {I}=None):", "class {I}({I}):", "if {I} is not None:", "for {I} in {I}.{I}:", "try:", "with open({I}) as {I}:"},
		closer: []string{"return {I}", "pass", "return None", "raise {I}(\"{S}\")", "return self.{I}", "return {I}({I})"},
		body: []string{"{I} = {I}.{I}({I}, {I})", "self.{I} = {I}", "# {S}", "{I}.append({I})", "\"\"\"{S}\"\"\"", "{I} = {\"{W}\": {I}, \"{W}\": {N}}",
			"if not {I}:", "{I} += {N}", "log.debug(\"{S} %s\", {I})", "{I} = {I}[{N}:]"},
	},
	genPerl: {
		header: "# {S}\npackage {I}::{I};\n\nuse strict;\nuse warnings;\n\nour $VERSION = '{N}';\n\n",
		indent: "    ",
		open:   []string{"sub {I} {", "if (${I}) {", "foreach my ${I} (@{I}) {", "unless (defined ${I}) {", "while (my ${I} = shift @{I}) {"},
		closer: []string{"}", "}", "}", "}", "}"},
		body: []string{"my ${I} = shift;", "my (${I}, ${I}) = @_;", "return ${I}->{{I}};", "${I}{{I}} = ${I};", "# {S}",
			"push @{I}, ${I};", "die \"{S}\\n\" unless ${I};", "$self->{{I}} = {N};", "next if ${I} =~ /{W}/;"},
	},
	genHeader: {
		header: "/* {S}\n * {S}\n */\n\n#ifndef {I}_H\n#define {I}_H\n\n#include <{I}.h>\n#include <{I}/{I}.h>\n\n",
		indent: "\t",
		open:   []string{"typedef struct {I} {", "struct {I} {", "enum {I} {", "#ifdef {I}"},
		closer: []string{"} {I}_t;", "};", "};", "#endif"},
		body: []string{"int {I};", "unsigned long {I};", "const char *{I};", "struct {I} *{I};", "/* {S} */",
			"#define {I} {N}", "#define {I}({I}) (({I}) & {N})", "extern int {I}(const char *{I}, size_t {I});",
			"void *{I}(struct {I} *{I}, int {I});", "{I}_{N},", "uint32_t {I}[{N}];"},
	},
}

// writeCode appends about n bytes of indented code in style st.
func writeCode(sb *strings.Builder, lx *lexicon, r *rand.Rand, st *codeStyle, n int) {
	end := sb.Len() + n
	fill(sb, lx, r, st.header)
	depth := 0
	var stack []int
	for sb.Len() < end {
		switch {
		case depth < 5 && r.IntN(6) == 0:
			i := r.IntN(len(st.open))
			sb.WriteString(strings.Repeat(st.indent, depth))
			fill(sb, lx, r, st.open[i])
			stack = append(stack, i)
			depth++
		case depth > 0 && r.IntN(5) == 0:
			depth--
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			sb.WriteString(strings.Repeat(st.indent, depth))
			fill(sb, lx, r, st.closer[i%len(st.closer)])
			if depth == 0 {
				sb.WriteByte('\n')
			}
		default:
			sb.WriteString(strings.Repeat(st.indent, depth))
			fill(sb, lx, r, st.body[r.IntN(len(st.body))])
		}
		sb.WriteByte('\n')
	}
}

// fill writes a template with its placeholders replaced: {I} an identifier, {W} a word, {N} a
// number, {P} a path, {S} a short sentence. Other characters, braces included, are copied.
func fill(sb *strings.Builder, lx *lexicon, r *rand.Rand, tmpl string) {
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '{' || i+2 >= len(tmpl) || tmpl[i+2] != '}' || !strings.ContainsRune("IWNPS", rune(tmpl[i+1])) {
			sb.WriteByte(c)
			continue
		}
		switch tmpl[i+1] {
		case 'I':
			sb.WriteString(lx.ident(r))
		case 'W':
			sb.WriteString(lx.word(r))
		case 'N':
			fmt.Fprint(sb, []int{0, 1, 2, 8, 16, 64, 255, 1024, r.IntN(100), r.IntN(100000)}[r.IntN(10)])
		case 'P':
			sb.WriteString([]string{"/etc/", "/usr/lib/", "/var/lib/", "/usr/share/", "/run/"}[r.IntN(5)])
			sb.WriteString(lx.word(r) + "/" + lx.ident(r))
		case 'S':
			for j := range 3 + r.IntN(8) {
				if j > 0 {
					sb.WriteByte(' ')
				}
				sb.WriteString(lx.word(r))
			}
		}
		i += 2
	}
}

// writeConfig appends about n bytes of configuration in one of the common syntaxes.
func writeConfig(sb *strings.Builder, lx *lexicon, r *rand.Rand, n int) {
	end := sb.Len() + n
	sep := []string{" = ", "=", " ", ": "}[r.IntN(4)]
	for sb.Len() < end {
		switch k := r.IntN(10); {
		case k < 3:
			sb.WriteString("# ")
			fill(sb, lx, r, "{S}")
		case k == 3:
			sb.WriteString("\n[")
			sb.WriteString(lx.ident(r))
			sb.WriteByte(']')
		default:
			if r.IntN(3) == 0 {
				sb.WriteString("#")
			}
			sb.WriteString(lx.ident(r) + sep)
			fill(sb, lx, r, []string{"{N}", "{W}", "yes", "no", "{P}", "\"{S}\"", "{I}"}[r.IntN(7)])
		}
		sb.WriteByte('\n')
	}
}

func writeMan(sb *strings.Builder, lx *lexicon, r *rand.Rand, name string, n int) {
	end := sb.Len() + n
	fmt.Fprintf(sb, ".TH %s 1 \"%d-%02d-%02d\" \"%s\"\n.SH NAME\n%s \\- ", strings.ToUpper(name),
		2018+r.IntN(7), 1+r.IntN(12), 1+r.IntN(28), name, name)
	fill(sb, lx, r, "{S}\n.SH SYNOPSIS\n.B "+name+"\n[\\fB\\-{W}\\fR] [\\fI{W}\\fR]\n.SH DESCRIPTION\n")
	for sb.Len() < end {
		if r.IntN(3) == 0 {
			fill(sb, lx, r, ".TP\n.BR \\-{W} \", \" \\-\\-{I}\n")
		} else if r.IntN(8) == 0 {
			fill(sb, lx, r, ".SH {W}\n")
		}
		writeProse(sb, lx, r, 100+r.IntN(400))
	}
}

// content produces exactly size bytes of kind g for the file name.
func content(lx *lexicon, r *rand.Rand, g gen, name string, size int) []byte {
	var sb strings.Builder
	switch g {
	case genEmpty:
		return nil
	case genProse:
		writeProse(&sb, lx, r, size)
	case genCopyright:
		fmt.Fprintf(&sb, "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"+
			"Upstream-Name: %s\n\nFiles: *\nCopyright: %d-%d %s %s <%s@%s.org>\nLicense: %s\n",
			lx.ident(r), 1990+r.IntN(30), 2020+r.IntN(5), lx.word(r), lx.word(r), lx.word(r), lx.word(r), lx.word(r))
		writeProse(&sb, lx, r, size/2)
		sb.WriteString("\nLicense: " + lx.word(r) + "\n")
		sb.WriteString(lx.licenses[[]int{0, 0, 1, 1, 2, 3}[r.IntN(6)]])
		return []byte(sb.String())
	case genConfig:
		writeConfig(&sb, lx, r, size)
	case genShell, genPython, genPerl, genHeader:
		writeCode(&sb, lx, r, styles[g], size)
	case genManGz:
		writeMan(&sb, lx, r, strings.TrimSuffix(baseName(name), ".1.gz"), size*3)
		return gz(sb.String())
	case genDocGz:
		for sb.Len() < size*3 {
			fmt.Fprintf(&sb, "%s (%d.%d-%d) unstable; urgency=medium\n\n", baseName(name), r.IntN(9), r.IntN(30), 1+r.IntN(5))
			for range 1 + r.IntN(6) {
				sb.WriteString("  * ")
				fill(&sb, lx, r, "{S} {S}\n")
			}
			fmt.Fprintf(&sb, "\n -- %s %s <%s@debian.org>  %s\n\n", lx.word(r), lx.word(r), lx.word(r), "Mon, 01 Jan 2024 12:00:00 +0100")
		}
		return gz(sb.String())
	case genELF:
		return elf(lx, r, size)
	case genRandom:
		b := make([]byte, size)
		fillRandom(r, b)
		return b
	case genMO:
		return mo(lx, r, size)
	case genTZif:
		return tzif(r, size)
	case genPEM:
		b := make([]byte, size*3/4)
		fillRandom(r, b)
		sb.WriteString("-----BEGIN CERTIFICATE-----\n")
		s := base64.StdEncoding.EncodeToString(b)
		for len(s) > 64 {
			sb.WriteString(s[:64] + "\n")
			s = s[64:]
		}
		sb.WriteString(s + "\n-----END CERTIFICATE-----\n")
		return []byte(sb.String())
	}
	b := []byte(sb.String())
	if len(b) > size {
		b = b[:size]
		if size > 0 {
			b[size-1] = '\n'
		}
	}
	return b
}

func baseName(name string) string { return name[strings.LastIndexByte(name, '/')+1:] }

func gz(s string) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	w.Write([]byte(s))
	w.Close()
	return buf.Bytes()
}

func fillRandom(r *rand.Rand, b []byte) {
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, r.Uint64())
		b = b[8:]
	}
	for i := range b {
		b[i] = byte(r.Uint32())
	}
}

// elf builds an executable-looking file: an ELF header, then machine code, read-only strings,
// pointer tables, a symbol table and page padding, in roughly the proportions of a Debian
// binary. It compresses about as well as real ones (xz: 3 to 4 times).
func elf(lx *lexicon, r *rand.Rand, size int) []byte {
	b := make([]byte, 0, size+4096)
	b = append(b, 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x3e, 0, 1, 0, 0, 0)
	b = binary.LittleEndian.AppendUint64(b, uint64(0x1000+r.IntN(0x10000)))
	b = binary.LittleEndian.AppendUint64(b, 64)
	b = binary.LittleEndian.AppendUint64(b, uint64(size-0x800))
	b = append(b, 0, 0, 0, 0, 64, 0, 56, 0, 13, 0, 64, 0, 30, 0, 29, 0)
	for i := range 13 {
		b = binary.LittleEndian.AppendUint32(b, uint32([]int{6, 3, 1, 1, 1, 1, 2, 4, 4, 0x6474e553, 0x6474e550, 0x6474e551, 0x6474e552}[i]))
		b = binary.LittleEndian.AppendUint32(b, uint32([]int{4, 4, 4, 5, 4, 6, 6, 4, 4, 4, 4, 6, 4}[i]))
		for range 6 {
			b = binary.LittleEndian.AppendUint64(b, uint64(r.IntN(size+1))&^7)
		}
	}
	pad := func(align int) {
		for len(b)%align != 0 {
			b = append(b, 0)
		}
	}
	pad(4096)

	text := size * 55 / 100
	for len(b) < text {
		// A function: prologue, body, return, padding to 16 bytes.
		b = append(b, 0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5)
		for range 3 + r.IntN(30) {
			// Compilers repeat idioms (spills, calls through the PLT, bounds checks):
			// a third of the time a whole canned sequence, else a single instruction.
			if r.IntN(3) == 0 {
				b = append(b, lx.idioms[lx.idiomPick.draw(r)]...)
			} else {
				b = lx.instruction(r, b)
			}
		}
		b = append(b, 0x5d, 0xc3)
		for len(b)%16 != 0 {
			b = append(b, 0xcc)
		}
	}
	pad(4096)

	rodata := len(b) + size*20/100
	var sb strings.Builder
	for sb.Len() < rodata-len(b) {
		switch r.IntN(4) {
		case 0:
			sb.WriteString(lx.ident(r))
		case 1:
			fill(&sb, lx, r, "%s: {S}: %s\n")
		default:
			fill(&sb, lx, r, "{S}")
		}
		sb.WriteByte(0)
	}
	b = append(b, sb.String()...)
	pad(4096)

	data := len(b) + size*10/100
	base := uint64(0x40000 + r.IntN(1<<20))
	for len(b) < data {
		base += uint64(8 * r.IntN(64))
		b = binary.LittleEndian.AppendUint64(b, base)
		if r.IntN(8) == 0 {
			b = binary.LittleEndian.AppendUint64(b, 0)
		}
	}

	sym := len(b) + size*8/100
	name, value := uint32(1), uint64(0x1000)
	for len(b) < sym {
		b = binary.LittleEndian.AppendUint32(b, name)
		b = append(b, []byte{0x12, 0x11, 0x22, 0x10}[r.IntN(4)], 0)
		b = binary.LittleEndian.AppendUint16(b, uint16([]int{0, 14, 15, 24}[r.IntN(4)]))
		value += uint64(16 * (1 + r.IntN(200)))
		b = binary.LittleEndian.AppendUint64(b, value)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.IntN(2000)))
		name += uint32(8 + r.IntN(24))
	}
	for len(b) < size {
		b = append(b, lx.ident(r)...)
		b = append(b, 0)
		if r.IntN(50) == 0 {
			pad(4096)
		}
	}
	return b[:size]
}

// mo builds a gettext catalogue: a header, offset tables, then original and translated strings.
func mo(lx *lexicon, r *rand.Rand, size int) []byte {
	n := max(1, size/120)
	b := binary.LittleEndian.AppendUint32(nil, 0x950412de)
	b = binary.LittleEndian.AppendUint32(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(n))
	off := uint32(28 + 16*n)
	for range 2 * n {
		l := uint32(10 + r.IntN(80))
		b = binary.LittleEndian.AppendUint32(b, l)
		b = binary.LittleEndian.AppendUint32(b, off)
		off += l + 1
	}
	var sb strings.Builder
	for sb.Len() < size {
		fill(&sb, lx, r, "{S}")
		sb.WriteByte(0)
	}
	b = append(b, sb.String()...)
	return b[:size]
}

// tzif builds a time zone file: header, transition times, types, abbreviations, POSIX footer.
func tzif(r *rand.Rand, size int) []byte {
	b := append([]byte("TZif2"), make([]byte, 15)...)
	n := max(0, (size-80)/9)
	for _, c := range []int{0, 0, 0, n, 2, 8} {
		b = binary.BigEndian.AppendUint32(b, uint32(c))
	}
	t := int64(-2717640000)
	for range n {
		t += int64(15000000 + r.IntN(2000000))
		b = binary.BigEndian.AppendUint64(b, uint64(t))
	}
	for i := range n {
		b = append(b, byte(i%2))
	}
	b = append(b, 0xff, 0xff, 0xb9, 0xb0, 0, 0, 0, 0, 0xc7, 0xc0, 1, 4)
	b = append(b, "EST\x00EDT\x00\nEST5EDT,M3.2.0,M11.1.0\n"...)
	return b
}
