package xzpar

import (
	"bytes"
	"math/rand/v2"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// runXZ runs the xz command with args on in. (compress caches by input length, which
// does not tell apart the streams decoded here.)
func runXZ(t *testing.T, in []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(needTool(t, "xz"), args...)
	cmd.Stdin = bytes.NewReader(in)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("xz %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out.Bytes()
}

// chunkKinds lists the kinds of LZMA2 chunks in the blocks of in, walking the chunk
// headers from the offsets xz gives.
func chunkKinds(t *testing.T, in []byte) map[string]bool {
	t.Helper()
	names := map[byte]string{0: "lzma", 1: "lzma state reset", 2: "lzma new props", 3: "lzma dict reset"}
	kinds := map[string]bool{}
	for _, b := range listBlocks(t, in) {
		p := b.offset + b.header
		for {
			ctl := in[p]
			switch {
			case ctl == 0:
			case ctl == 1:
				kinds["uncompressed dict reset"] = true
				p += 3 + (int(in[p+1])<<8 | int(in[p+2])) + 1
			case ctl == 2:
				kinds["uncompressed"] = true
				p += 3 + (int(in[p+1])<<8 | int(in[p+2])) + 1
			case ctl >= 0x80:
				kinds[names[ctl>>5&3]] = true
				hlen := 5
				if ctl >= 0xc0 {
					hlen = 6
				}
				p += hlen + (int(in[p+3])<<8 | int(in[p+4])) + 1
			default:
				t.Fatalf("bad control byte %#x at %d", ctl, p)
			}
			if ctl == 0 {
				break
			}
		}
	}
	return kinds
}

// TestLZMA2Chunks decodes streams made by xz with many LZMA settings, covering every
// kind of LZMA2 chunk, and compares the output with xz's.
func TestLZMA2Chunks(t *testing.T) {
	text := testData(t)[:600000]
	rnd := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 300000)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	// Incompressible data first makes an uncompressed chunk that resets the dictionary,
	// then an LZMA chunk that sets the properties only; incompressible data later makes
	// plain uncompressed chunks, and the LZMA chunk after them resets the state.
	var mixed []byte
	mixed = append(mixed, random[:100000]...)
	mixed = append(mixed, text[:250000]...)
	mixed = append(mixed, random[100000:]...)
	mixed = append(mixed, text[250000:]...)

	inputs := map[string][]byte{"text": text, "mixed": mixed, "random": random[:70000], "tiny": []byte("a"), "empty": nil}
	filters := []string{
		"preset=6",
		"preset=0,lc=0,lp=4,pb=4",
		"preset=6,lc=0,lp=4,pb=4,dict=64KiB",
		"preset=6,lc=4,lp=0,pb=0",
		"preset=6,lc=1,lp=3,pb=1,dict=4KiB",
		"preset=9e,lc=2,lp=2,pb=3,dict=4KiB",
		"preset=1,lc=3,lp=1,pb=4,dict=16KiB",
		"preset=6,lc=0,lp=0,pb=0,dict=4KiB,mode=fast",
	}
	layouts := [][]string{
		{"-T1"},                       // one block, no sizes: decoded as read
		{"-T2", "--block-size=90KiB"}, // blocks with sizes, decoded in parallel
		{"-T1", "--block-size=130KiB"},
	}
	seen := map[string]bool{}
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	sort.Strings(names)
	options := []Options{{Workers: 1}, {Workers: 2}, {Workers: 2, MemoryBudget: 1}}
	big := []string{"mixed", "text", "random"}
	if raceEnabled {
		// The detector watches the workers, not the decoder's arithmetic: decode with
		// the concurrent options only, and with each filter one of the big inputs, in
		// turn (every filter, input and chunk kind is still decoded).
		options = options[1:]
	}
	for _, name := range names {
		in := inputs[name]
		for j, filter := range filters {
			if raceEnabled && len(in) > 1 && name != big[j%len(big)] {
				continue
			}
			for _, layout := range layouts {
				args := append([]string{"-c", "-q", "--lzma2=" + filter}, layout...)
				comp := runXZ(t, in, args...)
				want := runXZ(t, comp, "-d", "-c")
				if !bytes.Equal(want, in) {
					t.Fatalf("%s %v: xz does not round-trip", name, args)
				}
				for kind := range chunkKinds(t, comp) {
					seen[kind] = true
				}
				for _, o := range options {
					got, err := decodeOptions(comp, o)
					if err != nil {
						t.Fatalf("%s %v, %+v: %v", name, args, o, err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s %v, %+v: got %d bytes, want %d, first difference at %d",
							name, args, o, len(got), len(want), firstDiff(got, want))
					}
				}
			}
		}
	}
	for _, kind := range []string{"uncompressed dict reset", "uncompressed", "lzma", "lzma state reset", "lzma new props", "lzma dict reset"} {
		if !seen[kind] {
			t.Errorf("no %s chunk in the streams", kind)
		}
	}
}
