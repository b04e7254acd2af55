package metis

import (
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// requestCoding reads a request's Content-Encoding: "" for none (or
// identity), else one of the codings newBodyDecoder reads. Any other
// coding, or more than one, is refused with 415 rather than read as JSON,
// which would say "not valid JSON" and send the developer looking at the
// wrong thing. Anthropic's API takes compressed request bodies, and a
// client that compresses for it (Claude Code can, for api.anthropic.com)
// works through the gateway too.
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

// newBodyDecoder returns a reader of src decoded from coding. A zstd frame
// may ask for a window of up to limit bytes, no more (the body it decodes to
// is bounded by limit anyway).
func newBodyDecoder(coding string, src io.Reader, limit int64) (io.ReadCloser, error) {
	switch coding {
	case "gzip", "x-gzip":
		return gzip.NewReader(src)
	case "deflate": // HTTP's deflate is the zlib format (RFC 9110 §8.4.1.2)
		return zlib.NewReader(src)
	}
	window := uint64(min(max(limit, zstd.MinWindowSize), zstd.MaxWindowSize))
	d, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(window))
	if err != nil {
		return nil, err
	}
	return d.IOReadCloser(), nil
}

// errDecodedTooLarge: a compressed body decodes to more than the limit.
var errDecodedTooLarge = errors.New("decoded body over the limit")

// decodedLimit reads r until n bytes have come; one more is
// errDecodedTooLarge, so a small body that decodes to gigabytes (a
// compression bomb) costs the gateway no more than the limit.
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

// sourceReader remembers the error, other than io.EOF, of the reader of
// the bytes the client sent: a decoder's error with none is the coding's
// (bytes that do not decode), not the connection's.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// bodyNotDecoded is the 400 for a body that does not decode as its
// Content-Encoding says.
func bodyNotDecoded(coding string, err error) *apiError {
	return reject(http.StatusBadRequest, "malformed_encoding",
		fmt.Sprintf("request body is not valid %s, as its Content-Encoding says (%v)", coding, err))
}
