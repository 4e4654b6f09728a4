package persistence

import (
	"encoding/binary"
	"hash/adler32"
	"math/bits"
)

// smallDeflate is the largest state that [ZlibCompressor] compresses with
// deflateFixed rather than compress/flate. Below it, compress/flate's
// cost is mostly building the block's Huffman codes (a profile of the
// mapper's benchmark shows two thirds of the time there), and the code
// tables it writes take a good part of what compression saves; deflate's
// fixed codes need neither, and for JSON of this size give output about as
// small.
const smallDeflate = 2 << 10

// deflateFixed appends to dst data compressed as a zlib stream (RFC 1950)
// of one deflate block (RFC 1951) with the fixed Huffman codes, with
// matches found greedily through a hash of 4-byte sequences, or one stored
// block if that would be shorter. Any zlib reader reads it. data must not
// be longer than smallDeflate.
func deflateFixed(dst, data []byte) []byte {
	dst = append(dst, 0x78, 0x01) // deflate, 32 KiB window, fastest
	start := len(dst)
	w := bitWriter{out: dst}
	w.write(1|1<<1, 3) // BFINAL, BTYPE=01 (fixed codes)
	// Positions are stored plus one, so that the zero table is empty.
	var table [1 << deflateHashBits]uint16
	n := len(data)
	lit := 0
	for i := 0; i+4 <= n; {
		cur := binary.LittleEndian.Uint32(data[i:])
		h := (cur * 0x1e35a7bd) >> (32 - deflateHashBits)
		cand := int(table[h]) - 1
		table[h] = uint16(i + 1)
		if cand < 0 || binary.LittleEndian.Uint32(data[cand:]) != cur {
			i++
			continue
		}
		l := 4
		for i+l < n && l < 258 && data[cand+l] == data[i+l] {
			l++
		}
		for _, c := range data[lit:i] {
			w.literal(c)
		}
		w.match(l, i-cand)
		i += l
		lit = i
	}
	for _, c := range data[lit:] {
		w.literal(c)
	}
	w.write(0, 7) // end of block: symbol 256, code 0000000
	dst = w.flush()
	if len(dst)-start > n+5 {
		// Stored: BFINAL and BTYPE=00 padded to a byte, then LEN and NLEN.
		dst = append(dst[:start], 1, byte(n), byte(n>>8), ^byte(n), ^byte(n>>8))
		dst = append(dst, data...)
	}
	return binary.BigEndian.AppendUint32(dst, adler32.Checksum(data))
}

const deflateHashBits = 10

// bitWriter writes deflate's bit stream: fields from their least
// significant bit, Huffman codes (here stored reversed) likewise.
type bitWriter struct {
	out   []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) write(v uint64, n uint) {
	w.acc |= v << w.nbits
	w.nbits += n
	if w.nbits >= 32 {
		w.out = binary.LittleEndian.AppendUint32(w.out, uint32(w.acc))
		w.acc >>= 32
		w.nbits -= 32
	}
}

func (w *bitWriter) flush() []byte {
	for w.nbits > 0 {
		w.out = append(w.out, byte(w.acc))
		w.acc >>= 8
		w.nbits -= min(w.nbits, 8)
	}
	return w.out
}

// literal writes byte c with the fixed literal codes.
func (w *bitWriter) literal(c byte) {
	code := fixedLiteral[c]
	w.write(uint64(code&0x1ff), uint(code>>9))
}

// fixedLiteral holds the fixed code of each byte, reversed, in its low 9
// bits, and the code's length above them: 0–143 are 8 bits from
// 00110000, 144–255 are 9 bits from 110010000.
var fixedLiteral = func() (t [256]uint16) {
	for c := range t {
		if c < 144 {
			t[c] = uint16(reverse(0x30+uint32(c), 8)) | 8<<9
		} else {
			t[c] = uint16(reverse(0x190+uint32(c)-144, 9)) | 9<<9
		}
	}
	return t
}()

// match writes a length (3–258) and a distance (1–32,768).
func (w *bitWriter) match(length, dist int) {
	code := lengthCode[length]
	sym := 257 + uint32(code)
	if sym < 280 {
		w.write(uint64(reverse(sym-256, 7)), 7)
	} else {
		w.write(uint64(reverse(0xc0+sym-280, 8)), 8)
	}
	if e := lengthExtra[code]; e > 0 {
		w.write(uint64(length-int(lengthBase[code])), uint(e))
	}
	dc := distCode(dist)
	w.write(uint64(reverse(uint32(dc), 5)), 5)
	if e := distExtra[dc]; e > 0 {
		w.write(uint64(dist-int(distBase[dc])), uint(e))
	}
}

func reverse(code uint32, n uint) uint32 { return bits.Reverse32(code) >> (32 - n) }

// distCode returns the deflate distance code of dist: codes 2k and 2k+1
// (k ≥ 1) cover distances from 2^k+1, each half of that octave.
func distCode(dist int) int {
	d := uint32(dist - 1)
	if d < 4 {
		return int(d)
	}
	k := bits.Len32(d) - 1 // d in [2^k, 2^(k+1))
	return 2*k + int(d>>(k-1)&1)
}

var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [30]uint16{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [30]uint8{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
	// lengthCode maps a match length (3–258) to its index in lengthBase.
	lengthCode = func() (t [259]uint8) {
		for c := range lengthBase {
			hi := 259
			if c+1 < len(lengthBase) {
				hi = int(lengthBase[c+1])
			}
			for l := int(lengthBase[c]); l < hi; l++ {
				t[l] = uint8(c)
			}
		}
		return t
	}()
)
