package xzpar

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzNewReader checks that no input makes the decoder panic or hang, that
// the result does not depend on the number of workers nor on whether blocks
// are decoded from buffers or as they are read (a budget of one byte), and
// that UncompressedSize agrees with a successful decode.
func FuzzNewReader(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.xz"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got1, err1 := decodeLimited(in, Options{Workers: 1})
		got2, err2 := decodeLimited(in, Options{Workers: 2})
		gotS, errS := decodeLimited(in, Options{Workers: 2, MemoryBudget: 1})
		// The reader recovers from panics; for the fuzzer they are still bugs.
		for _, err := range []error{err1, err2, errS} {
			if errors.Is(err, ErrPanic) {
				t.Fatal(err)
			}
		}
		if (err1 == nil) != (err2 == nil) || !bytes.Equal(got1, got2) {
			t.Fatalf("1 worker: %d bytes, %v; 2 workers: %d bytes, %v", len(got1), err1, len(got2), err2)
		}
		// A block decoded as it is read delivers its output before a truncation or a bad
		// check shows, and one decoded from a buffer may not: compare what both delivered in
		// full.
		if (len(got1) < fuzzLimit && len(gotS) < fuzzLimit && (err1 == nil) != (errS == nil)) ||
			(err1 == nil && errS == nil && !bytes.Equal(got1, gotS)) {
			t.Fatalf("from buffers: %d bytes, %v; as read: %d bytes, %v", len(got1), err1, len(gotS), errS)
		}
		size, err := UncompressedSize(bytes.NewReader(in), int64(len(in)))
		if err1 == nil && len(got1) < fuzzLimit && (err != nil || size != int64(len(got1))) {
			t.Fatalf("decoded %d bytes, UncompressedSize says %d, %v", len(got1), size, err)
		}
	})
}

func TestSeedsDecode(t *testing.T) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.xz"))
	for _, name := range seeds {
		t.Run(filepath.Base(name), func(t *testing.T) {
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decode(b, 2); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// fuzzLimit caps the output read per input: a few kilobytes of LZMA2 can
// legitimately expand to hundreds of megabytes, which only slows fuzzing.
const fuzzLimit = 1 << 20

func decodeLimited(in []byte, o Options) ([]byte, error) {
	r, err := NewReaderOptions(bytes.NewReader(in), o)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(io.LimitReader(r, fuzzLimit))
}
