// Package xzpar decodes xz data from a stream, decoding independent blocks
// in parallel.
//
// Multi-threaded xz encoders (xz -T, pixz) split their input into blocks
// whose headers record the compressed size, so a sequential reader can cut
// the input into blocks without decoding it and hand each block to a
// different core. Output is delivered in order; the block being read streams
// to the consumer as it is decoded. Memory is bounded by a budget: blocks are
// decoded ahead only as far as their buffers fit in it, and blocks too large
// for it, like blocks without recorded sizes (single-threaded xz), are
// decoded sequentially as they are read, into a window of about the
// dictionary size.
//
// Only the LZMA2 filter is supported; that is what xz and pixz produce by
// default.
//
// # The formats, and where the names come from
//
// The container (stream header and footer, block headers, index, padding,
// and the CRC32, CRC64 and SHA-256 checks) is read as the .xz file format
// specification, version 1.1.0, published by the Tukaani project, defines it
// (format.go). That specification gives LZMA2 its filter ID and its
// properties byte (the dictionary size), not the format of its data.
//
// The LZMA decoder (lzma.go) implements the algorithm of the LZMA
// specification that Igor Pavlov publishes, in the public domain, with the
// LZMA SDK (lzma-specification.txt, with its reference decoder LzmaSpec.cpp):
// a range decoder over adaptive 11-bit probabilities, literals coded in the
// context of the previous byte (lc) and of the position (lp), a 12-state
// machine over the kinds of the last symbols, four repeated distances, and
// length and distance coders built of bit trees. Its probability arrays are
// named as that reference decoder names them (IsMatch, IsRep, IsRepG0 to
// IsRepG2 and IsRep0Long become isMatch, isRep, isRepG0 to isRepG2 and
// isRep0Long). The LZMA2 layer (lzma2.go) reads chunks as the LZMA SDK's
// LZMA2 decoder (Lzma2Dec.c) and XZ Embedded read them: a control byte per
// chunk that resets the dictionary, the state or the properties, or announces
// uncompressed data.
//
// The LZMA and LZMA2 decoders were written for this package on 1 December
// 2026. They replaced the package's first decoder (25 November 2026), whose
// header said it was derived from github.com/xi2/xz, a Go translation of XZ
// Embedded by Lasse Collin and Igor Pavlov. The rewrite kept some of that
// version's names: lzmaDec and lzma2Dec, with the flags needDictReset and
// needProps, are XZ Embedded's lzma_dec, lzma2_dec, need_dict_reset and
// need_props in xi2/xz's Go spelling; the LZMA SDK's Lzma2Dec.c calls the two
// flags needInitDic and needInitProp. They name what any LZMA2 decoder keeps
// track of: the first chunk must reset the dictionary, and the first LZMA
// chunk after a dictionary reset must set the properties. The output window
// and the chunk sources (window.go) were written for this package's parallel
// reader in its first version and moved unchanged: a linear buffer shared with
// the consumer under the block's lock, which slides only when a block is
// decoded as it streams. XZ Embedded decodes into a ring buffer of its own;
// the first version's header listed the linear window among the ways it
// departed from that design.
//
// The CRC-64 check (crc64.go, written here on 5 December 2026) folds the data
// with carry-less multiplication on amd64 and arm64, the method of Intel's white paper
// "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ Instruction"
// (Gopal et al., 2009); its multipliers are worked out at start-up from the
// polynomial, and hash/crc64's tables finish the last 16 bytes and the tail.
package xzpar
