package persistence

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"io"
	"sync"
)

// Compressor compresses stored state. Compression runs before encryption,
// since encrypted bytes do not compress.
type Compressor interface {
	Compress(data []byte) ([]byte, error)
	// Decompress returns an error wrapping ErrCorrupt for data it cannot
	// decompress, never a panic.
	Decompress(data []byte) ([]byte, error)
}

// ZlibCompressor compresses with zlib (RFC 1950). The zero value is ready
// to use and safe for concurrent use.
type ZlibCompressor struct {
	// Level is the compress/zlib level. Zero, the default, is the fastest:
	// a state of up to 2 KiB (most events) is one deflate block of
	// deflate's fixed codes, which costs a fraction of the time of
	// compress/flate (whose cost at that size is mostly building the
	// block's own codes) and comes out about 10% larger; a larger state is
	// compressed with zlib.BestSpeed, which on event-sized state
	// compresses about as well as the default level in half the time. Any
	// other level is compress/zlib's at every size. Every level writes
	// zlib that any zlib reader reads.
	Level int
	// MaxSize bounds the bytes one state may decompress to, so that a
	// damaged or hostile row cannot exhaust memory; a larger state fails to
	// decode with an error wrapping ErrData. Zero means
	// [DefaultMaxDecompressed]. COMPRESSOR_MAX_SIZE sets it.
	MaxSize int

	writers sync.Pool
	readers sync.Pool
}

// DefaultMaxDecompressed is the most bytes a [ZlibCompressor] decompresses
// one state to unless its MaxSize says otherwise: far more than an event
// or a snapshot of a sensible aggregate holds, far less than a process can
// spare many times over.
const DefaultMaxDecompressed = 16 << 20

// Compress returns data compressed with zlib.
func (z *ZlibCompressor) Compress(data []byte) ([]byte, error) {
	return z.appendCompress(make([]byte, 0, compressBound(len(data))), data)
}

// compressBound is the capacity that holds most compressed states of n
// bytes without growing: deflateFixed's stored fallback, at most.
func compressBound(n int) int { return n + 11 }

// appendCompress appends data compressed with zlib to dst, so that the
// mapper can compress into the buffer it encrypts in.
func (z *ZlibCompressor) appendCompress(dst, data []byte) ([]byte, error) {
	if z.Level == 0 && len(data) <= smallDeflate {
		return deflateFixed(dst, data), nil
	}
	buf := bytes.NewBuffer(dst)
	w, _ := z.writers.Get().(*zlib.Writer)
	if w == nil {
		level := z.Level
		if level == 0 {
			level = zlib.BestSpeed
		}
		var err error
		if w, err = zlib.NewWriterLevel(buf, level); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrConfig, err)
		}
	} else {
		w.Reset(buf)
	}
	defer z.writers.Put(w)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decompress returns the data that Compress was given.
func (z *ZlibCompressor) Decompress(data []byte) ([]byte, error) {
	var r io.ReadCloser
	if pooled, _ := z.readers.Get().(io.ReadCloser); pooled != nil {
		if err := pooled.(zlib.Resetter).Reset(bytes.NewReader(data), nil); err != nil {
			return nil, fmt.Errorf("decompress: %w: %v", ErrCorrupt, err)
		}
		r = pooled
	} else {
		var err error
		if r, err = zlib.NewReader(bytes.NewReader(data)); err != nil {
			return nil, fmt.Errorf("decompress: %w: %v", ErrCorrupt, err)
		}
	}
	defer z.readers.Put(r)
	limit := z.MaxSize
	if limit <= 0 {
		limit = DefaultMaxDecompressed
	}
	var out bytes.Buffer
	out.Grow(min(len(data)*3, limit))
	n, err := out.ReadFrom(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("decompress: %w: %v", ErrCorrupt, err)
	}
	if n > int64(limit) {
		return nil, fmt.Errorf("decompress: %w: the state decompresses to more than %d bytes, the limit (COMPRESSOR_MAX_SIZE)", ErrData, limit)
	}
	return out.Bytes(), nil
}
