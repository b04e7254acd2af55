package jsonx

import (
	"bytes"
	"encoding/json"
	"sync"
)

// maxPooled is the largest scratch buffer Marshal keeps for reuse; a
// buffer grown past it by an unusually large value is left to the GC.
const maxPooled = 1 << 20

// scratch holds Marshal's buffers.
var scratch = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// Marshal returns what app appends to an empty buffer, copied out at its
// exact size. The buffer app writes into is pooled, so a hand-written
// encoder pays for one allocation of the result instead of a growing
// buffer per call. On error Marshal returns nil and app's error.
func Marshal(app func(dst []byte) ([]byte, error)) ([]byte, error) {
	bp := scratch.Get().(*[]byte)
	b, err := app((*bp)[:0])
	var res []byte
	if err == nil {
		res = make([]byte, len(b))
		copy(res, b)
	}
	if cap(b) <= maxPooled {
		*bp = b[:0]
		scratch.Put(bp)
	}
	return res, err
}

// AppendArray appends s as a JSON array whose elements app writes, as
// encoding/json.Marshal writes a slice: a nil slice is null, an empty one
// []. It stops at app's first error, returning it.
func AppendArray[T any](dst []byte, s []T, app func(elem *T, dst []byte) ([]byte, error)) ([]byte, error) {
	if s == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '[')
	var err error
	for i := range s {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = app(&s[i], dst); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// AppendStrings appends ss as encoding/json.Marshal writes a []string.
func AppendStrings(dst []byte, ss []string) []byte {
	if ss == nil {
		return append(dst, "null"...)
	}
	dst = append(dst, '[')
	for i, s := range ss {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendString(dst, s)
	}
	return append(dst, ']')
}

// AppendMarshal appends json.Marshal(v): the fallback of a hand-written
// encoder for values its fast path does not know.
func AppendMarshal(dst []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	return append(dst, j...), err
}

// MarshalNoEscape is encoding/json.Marshal without its escaping of <, > and &
// as \u003c, \u003e and \u0026: for bodies a person may read as they are
// (an error message such as "215000 tokens > 200000 maximum" that a
// client prints raw). v must be a value that encodes.
func MarshalNoEscape(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
