package metis

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// requestCoding reads a request's Content-Encoding: "" for none (or
// identity), else one of the codings decodeRequestBody reads. Any other
// coding, or more than one, is refused with 415 rather than read as JSON,
// which would say "not valid JSON" and send the developer looking at the
// wrong thing. Anthropic's API takes compressed request bodies, and a client
// that compresses for it (Claude Code can, for api.anthropic.com) works
// through the gateway too.
func requestCoding(r *http.Request) (string, *apiError) {
	vs := r.Header.Values("Content-Encoding")
	if len(vs) == 0 {
		return "", nil
	}
	ce := strings.ToLower(strings.TrimSpace(strings.Join(vs, ",")))
	switch ce {
	case "", "identity":
		return "", nil
	case "gzip", "x-gzip", "deflate", "zstd":
		return ce, nil
	}
	return "", reject(http.StatusUnsupportedMediaType, "unsupported_encoding",
		fmt.Sprintf("Content-Encoding %q is not supported: send the request body uncompressed, or compressed with gzip, deflate or zstd", strings.Join(vs, ", ")))
}

// zstdWindow is the largest window a zstd request body may use: RFC 9659
// bounds the zstd content coding's at 8 MB. The decoder allocates the
// window a frame declares, whatever the body's size: a streaming encoder
// (the zstd CLI reading stdin, Go's zstd.NewWriter) declares its level's
// window (2 to 8 MB) for a 100-byte body. A bound at a small max_body
// refused such bodies (review 25R3), so the memory is bounded instead by
// how many decode at once (zstdSlots).
const zstdWindow = 8 << 20

// zstdSlots bounds the zstd bodies decoding at once, and so the windows
// held (review 25R2: at max_body 256 KiB, 10 bytes sent took 9.6 MB, per
// request). Decoding is CPU work on a body already read whole, so more at
// once than there are processors gains nothing.
var zstdSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// decodeRequestBody decodes a whole request body sent in coding, to at
// most limit bytes (errDecodedTooLarge past it, so a few kilobytes that
// decode to gigabytes cost no more than the limit). The result is held for the whole
// call, so it sits in a buffer of about its size: the coding's own record
// of the size sizes it when there is one, and a buffer grown well past
// the body is copied to fit (review 25R: 20 MiB decoded sat in 35 MiB).
func decodeRequestBody(coding string, sent []byte, limit int64) ([]byte, error) {
	var dec io.Reader
	var err error
	src := bytes.NewReader(sent)
	switch coding {
	case "gzip", "x-gzip":
		dec, err = gzip.NewReader(src)
	case "deflate":
		// HTTP's deflate is the zlib format (RFC 9110 §8.4.1.2), which
		// some clients write bare (.NET's DeflateStream): both are read,
		// as in the provider's answers.
		dec, err = openDeflate(src)
	default:
		zstdSlots <- struct{}{}
		defer func() { <-zstdSlots }()
		var zd *zstd.Decoder
		zd, err = zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(zstdWindow))
		if err == nil {
			defer zd.Close()
			dec = zd
		}
	}
	if err != nil {
		return nil, err
	}
	b, err := readAnnounced(&decodedLimit{r: dec, n: limit}, decodedSize(coding, sent, limit))
	if err != nil {
		return nil, err
	}
	if cap(b)-len(b) > max(len(b)/8, preGrow) {
		b = append(make([]byte, 0, len(b)), b...)
	}
	return b, nil
}

// decodedSize is the size a coded body says it decodes to, or -1: gzip's
// trailer (the size modulo 2^32 of its last member, right for a body of one
// member), a zstd frame's content size when its header has one. A size
// over the limit is not believed (the body will be refused at the limit).
func decodedSize(coding string, sent []byte, limit int64) int64 {
	n := int64(-1)
	switch coding {
	case "gzip", "x-gzip":
		if len(sent) >= 18 {
			n = int64(binary.LittleEndian.Uint32(sent[len(sent)-4:]))
		}
	case "zstd":
		var h zstd.Header
		if h.Decode(sent) == nil && h.HasFCS {
			n = int64(min(h.FrameContentSize, uint64(limit)+1))
		}
	}
	if n > limit {
		return -1
	}
	return n
}

// errDecodedTooLarge: a compressed body decodes to more than the limit.
var errDecodedTooLarge = errors.New("decoded body over the limit")

// decodedLimit reads r until n bytes have come; one more is
// errDecodedTooLarge.
type decodedLimit struct {
	r io.Reader
	n int64
}

func (l *decodedLimit) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, errDecodedTooLarge
	}
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n - 1, errDecodedTooLarge
	}
	return n, err
}

// bodyNotDecoded is the 400 for a body that does not decode as its
// Content-Encoding says.
func bodyNotDecoded(coding string, err error) *apiError {
	return reject(http.StatusBadRequest, "malformed_encoding",
		fmt.Sprintf("request body is not valid %s, as its Content-Encoding says (%v)", coding, err))
}
