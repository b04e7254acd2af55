// Package sse reads and writes Server-Sent Events streams as sent by LLM
// providers (Anthropic Messages, OpenAI Chat Completions).
//
// The Reader is on the hot path of every streamed call, so it works on one
// reusable buffer: an Event's Data and Raw point into that buffer and stay
// valid only until the next call to Next. Raw is the exact bytes the
// upstream sent for the event so that a gateway can relay it verbatim while
// looking at Name and Data.
package sse

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// DefaultMaxEventSize is the largest event (raw bytes, including its line
// terminators) a Reader accepts before Next fails with ErrEventTooLarge.
const DefaultMaxEventSize = 16 << 20

// ErrEventTooLarge is returned by Next when an event grows beyond the
// reader's maximum event size without being terminated by a blank line.
var ErrEventTooLarge = errors.New("sse: event too large")

// ErrNewline is returned by Write when the event name or data contains a
// line break, which would corrupt the SSE framing.
var ErrNewline = errors.New("sse: event name or data contains a line break")

const (
	initialBufSize = 4 << 10
	maxEmptyReads  = 100
)

// Event is one Server-Sent Event.
type Event struct {
	// Name is the value of the last "event:" field, or "" if there is none.
	Name string
	// Data is the value of the "data:" fields joined with "\n" (one optional
	// space after "data:" removed). It is nil when the event has no data
	// field, and valid only until the next call to Reader.Next.
	Data []byte
	// Raw is the exact bytes of this event as received, including its
	// terminating blank line (and any blank lines that preceded it). It is
	// valid only until the next call to Reader.Next.
	Raw []byte
	// Comment reports that the event held only ":" comment lines (for
	// example ": ping" keep-alives).
	Comment bool
	// Unterminated reports that the stream ended before the event's
	// terminating blank line: Raw is what arrived, perhaps cut mid-line.
	Unterminated bool
}

// Reader splits an SSE byte stream into events. It is not safe for
// concurrent use.
type Reader struct {
	rd      io.Reader
	buf     []byte
	r, w    int // buf[r:w] holds bytes not yet returned
	scan    int // absolute offset of the next line start to examine
	ls      lineScanner
	started bool  // the pending event has a non-blank line
	err     error // sticky error from rd
	max     int
	data    []byte // join buffer for multi-line data
	lastNm  string // last unknown event name, reused to avoid allocation
	ready   int    // end of a complete buffered event found by Ready; 0 = none
}

// NewReader returns a Reader reading SSE from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{rd: r, max: DefaultMaxEventSize, ls: lineScanner{nlPos: -1, crPos: -1}}
}

// SetMaxEventSize changes the largest accepted event size in bytes
// (DefaultMaxEventSize by default). Values below 1 restore the default.
func (r *Reader) SetMaxEventSize(n int) {
	if n < 1 {
		n = DefaultMaxEventSize
	}
	r.max = n
}

// Buffered reports whether bytes of a following event are already buffered,
// so a relaying caller can postpone flushing its output.
func (r *Reader) Buffered() bool {
	return r.w > r.r
}

// Ready reports whether Next would return at once with a complete event
// already buffered, so a relaying caller may postpone flushing its output
// until the burst that arrived together has been written. Unlike Buffered,
// a partly received event does not count: an event is never held back
// waiting for the next one to finish arriving.
func (r *Reader) Ready() bool {
	if r.ready > 0 {
		return true
	}
	end, ok := r.findEnd()
	if ok {
		r.ready = end
	}
	return ok
}

// Next returns the next event. At a clean end of the stream it returns
// io.EOF; an event not terminated by a blank line at the end of the stream
// is returned first, marked Unterminated. Blank lines that precede an event are part of its Raw;
// trailing blank lines at the end of the stream are returned as an event
// with no fields so that concatenating every Raw reproduces the input.
// Event.Data and Event.Raw are valid until the next call.
func (r *Reader) Next() (Event, error) {
	for {
		end, ok := r.ready, r.ready > 0
		r.ready = 0
		if !ok {
			end, ok = r.findEnd()
		}
		if ok {
			raw := r.buf[r.r:end]
			r.r = end
			r.started = false
			return r.parse(raw), nil
		}
		if r.err != nil {
			if r.err == io.EOF && r.r < r.w {
				raw := r.buf[r.r:r.w]
				r.r = r.w
				r.scan = r.w
				r.started = false
				ev := r.parse(raw)
				ev.Unterminated = true
				return ev, nil
			}
			return Event{}, r.err
		}
		if err := r.fill(); err != nil {
			r.err = err
			return Event{}, err
		}
	}
}

// fill reads more bytes into the buffer, compacting or growing it first.
// It returns an error only for ErrEventTooLarge; read errors are stored in
// r.err for Next to handle.
func (r *Reader) fill() error {
	if r.r > 0 {
		// Compact: the previous event's Raw/Data may be overwritten now.
		n := copy(r.buf, r.buf[r.r:r.w])
		r.scan -= r.r
		r.ls.shift(r.r)
		r.w = n
		r.r = 0
	}
	if r.w == len(r.buf) {
		if r.w >= r.max {
			return fmt.Errorf("%w (more than %d bytes without a blank line)", ErrEventTooLarge, r.max)
		}
		size := 2 * len(r.buf)
		if size < initialBufSize {
			size = initialBufSize
		}
		if size > r.max {
			size = r.max
		}
		nb := make([]byte, size)
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	for i := 0; i < maxEmptyReads; i++ {
		n, err := r.rd.Read(r.buf[r.w:])
		if n < 0 || n > len(r.buf)-r.w {
			r.err = fmt.Errorf("sse: reader returned invalid count %d", n)
			return nil
		}
		r.w += n
		if err != nil {
			r.err = err
			return nil
		}
		if n > 0 {
			return nil
		}
	}
	r.err = io.ErrNoProgress
	return nil
}

// findEnd scans buffered lines for the blank line ending the pending event
// and returns the absolute offset just past it.
func (r *Reader) findEnd() (int, bool) {
	eof := r.err == io.EOF
	for r.scan < r.w {
		start := r.scan
		termAt, termLen := r.ls.lineEnd(r.buf[:r.w], start, eof)
		if termAt < 0 {
			return 0, false
		}
		r.scan = termAt + termLen
		if termAt == start {
			if r.started {
				return r.scan, true
			}
			continue // a blank line before any field: keep it in Raw
		}
		r.started = true
	}
	return 0, false
}

// lineScanner finds line terminators ("\n", "\r\n" or a lone "\r") in a
// growing buffer. It remembers the next known position of each byte and how
// far it already searched, so scanning stays linear even when one line
// spans many reads or lines end in lone carriage returns.
type lineScanner struct {
	nlPos, nlSeen int // next '\n' at nlPos (if >= from); none in [.., nlSeen)
	crPos, crSeen int
}

// shift adjusts the remembered offsets after the buffer dropped n bytes
// from its front.
func (s *lineScanner) shift(n int) {
	s.nlPos -= n
	s.nlSeen -= n
	s.crPos -= n
	s.crSeen -= n
}

func find(b []byte, c byte, from int, pos, seen *int) int {
	if *pos >= from {
		return *pos
	}
	start := max(from, *seen)
	i := bytes.IndexByte(b[start:], c)
	if i < 0 {
		*seen = len(b)
		return -1
	}
	*pos, *seen = start+i, start+i
	return start + i
}

// lineEnd finds the first line terminator in b at or after from. It returns
// its offset and length (1 for "\n" or a lone "\r", 2 for "\r\n"), or -1
// if b holds no complete terminator yet. A '\r' at the very end of b is a
// terminator only at EOF, since a '\n' may follow in the next read.
func (s *lineScanner) lineEnd(b []byte, from int, eof bool) (int, int) {
	nl := find(b, '\n', from, &s.nlPos, &s.nlSeen)
	cr := find(b, '\r', from, &s.crPos, &s.crSeen)
	if cr >= 0 && (nl < 0 || cr < nl) {
		switch {
		case cr+1 < len(b) && b[cr+1] == '\n':
			return cr, 2
		case cr+1 < len(b) || eof:
			return cr, 1
		default:
			return -1, 0
		}
	}
	if nl >= 0 {
		return nl, 1
	}
	return -1, 0
}

// parse extracts the fields of one event from its raw bytes.
func (r *Reader) parse(raw []byte) Event {
	ev := Event{Raw: raw}
	var (
		nameVal   []byte
		hasName   bool
		dataLines int
		comments  int
		fields    int
	)
	var ls lineScanner
	ls.nlPos, ls.crPos = -1, -1
	p := 0
	for p < len(raw) {
		at, n := ls.lineEnd(raw, p, true)
		var line []byte
		if at < 0 {
			line = raw[p:]
			p = len(raw)
		} else {
			line = raw[p:at]
			p = at + n
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == ':' {
			comments++
			continue
		}
		fields++
		field, value := line, line[len(line):]
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			switch dataLines {
			case 0:
				ev.Data = value
			case 1:
				r.data = append(append(append(r.data[:0], ev.Data...), '\n'), value...)
				ev.Data = r.data
			default:
				r.data = append(append(r.data, '\n'), value...)
				ev.Data = r.data
			}
			dataLines++
		case "event":
			nameVal, hasName = value, true
		}
	}
	if hasName {
		ev.Name = r.intern(nameVal)
	}
	ev.Comment = comments > 0 && fields == 0
	return ev
}

// knownNames avoids allocating a string for the event names providers use.
var knownNames = map[string]string{}

func init() {
	for _, n := range []string{
		"message_start", "content_block_start", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop", "ping",
		"error", "message", "done",
	} {
		knownNames[n] = n
	}
}

func (r *Reader) intern(b []byte) string {
	if s, ok := knownNames[string(b)]; ok {
		return s
	}
	if r.lastNm == string(b) {
		return r.lastNm
	}
	r.lastNm = string(b)
	return r.lastNm
}

var writePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Write writes one event, "event: name\ndata: data\n\n", in a single Write
// call; the event line is omitted when name is "". Neither name nor data
// may contain a line break ('\n' or '\r'): compact JSON never does, and
// Write returns ErrNewline rather than emit a corrupt frame.
func Write(w io.Writer, name string, data []byte) error {
	if bytes.IndexByte(data, '\n') >= 0 || bytes.IndexByte(data, '\r') >= 0 ||
		strings.ContainsAny(name, "\r\n") {
		return ErrNewline
	}
	bp := writePool.Get().(*[]byte)
	b := (*bp)[:0]
	if name != "" {
		b = append(b, "event: "...)
		b = append(b, name...)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = append(b, data...)
	b = append(b, '\n', '\n')
	_, err := w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		writePool.Put(bp)
	}
	if err != nil {
		return fmt.Errorf("sse: writing event: %w", err)
	}
	return nil
}
