package openai

import (
	"encoding/json"
	"unicode/utf8"
)

// inputReader reads a custom tool's text out of the arguments a JSON tool
// streams for it (ir.CustomTool.AsFunction), as the fragments arrive: the
// value of the string member input, decoded, in as many pieces as came.
// Arguments that do not open with that member ({"other":…,"input":…}, or
// input not a string) are held whole and read at the end by CustomInput.
type inputReader struct {
	state   uint8
	held    []byte // all the fragments, while seeking or holding
	pending []byte // an escape or a UTF-8 sequence cut between fragments
}

const (
	inputSeeking uint8 = iota // before the string's opening quote
	inputString               // inside the string
	inputDone                 // after its closing quote
	inputHolding              // not the expected form: read at the end
)

// inputOpening is the start of the arguments, whitespace aside, before
// the text: {"input":"
var inputOpening = []byte(`{"input":"`)

// feed reads one fragment and returns the text it completes (possibly
// none).
func (r *inputReader) feed(frag string) string {
	switch r.state {
	case inputSeeking:
		r.held = append(r.held, frag...)
		rest, ok, more := afterOpening(r.held)
		if more {
			return ""
		}
		if !ok {
			r.state = inputHolding
			return ""
		}
		r.state = inputString
		return r.text(string(rest))
	case inputString:
		return r.text(frag)
	case inputHolding:
		r.held = append(r.held, frag...)
	}
	return ""
}

// end returns the text still to send once the arguments are complete:
// all of it for held arguments, else none.
func (r *inputReader) end() string {
	if r.state == inputSeeking || r.state == inputHolding {
		r.state = inputDone
		return CustomInput(r.held)
	}
	return ""
}

// afterOpening matches b against inputOpening, skipping JSON whitespace
// between tokens: ok with what follows the opening quote, more when b
// ends before it could tell.
func afterOpening(b []byte) (rest []byte, ok, more bool) {
	j := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		// Whitespace is allowed outside the key: before '{', around it and
		// around ':'.
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') && (j == 0 || j == 1 || j == 8 || j == 9) {
			continue
		}
		if c != inputOpening[j] {
			return nil, false, false
		}
		j++
		if j == len(inputOpening) {
			return b[i+1:], true, false
		}
	}
	return nil, false, true
}

// text decodes the string's content in s up to its closing quote; an
// escape cut at the end of s waits for the next fragment.
func (r *inputReader) text(s string) string {
	if len(r.pending) > 0 {
		s = string(r.pending) + s
		r.pending = r.pending[:0]
	}
	var out []byte
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			r.state = inputDone
			return string(append(out, s[:i]...))
		case c == '\\':
			n := escapeLen(s[i:])
			if n == 0 {
				r.pending = append(r.pending, s[i:]...)
				return string(append(out, s[:i]...))
			}
			out = append(out, s[:i]...)
			var dec string
			if json.Unmarshal([]byte(`"`+s[i:i+n]+`"`), &dec) != nil {
				dec = string(utf8.RuneError)
			}
			out = append(out, dec...)
			s, i = s[i+n:], 0
		default:
			i++
		}
	}
	// A character cut between fragments waits for its other bytes.
	if cut := incompleteRune(s); cut > 0 {
		r.pending = append(r.pending, s[len(s)-cut:]...)
		s = s[:len(s)-cut]
	}
	return string(append(out, s...))
}

// incompleteRune is the length of a UTF-8 sequence begun but not ended
// at the end of s, else 0.
func incompleteRune(s string) int {
	for n := 1; n <= 3 && n <= len(s); n++ {
		c := s[len(s)-n]
		if c < 0x80 {
			return 0
		}
		if c >= 0xC0 { // a leading byte: is its sequence longer than n?
			if !utf8.FullRuneInString(s[len(s)-n:]) {
				return n
			}
			return 0
		}
	}
	return 0
}

// escapeLen is the length of the escape at the start of s (which begins
// with a backslash), or 0 when s ends before it does. A high surrogate
// (\uD800–\uDBFF) is read with the low one (\uDC00–\uDFFF) that should
// follow it; alone, it is read alone (and decodes to U+FFFD).
func escapeLen(s string) int {
	if len(s) < 2 {
		return 0
	}
	if s[1] != 'u' {
		return 2
	}
	if len(s) < 6 {
		return 0
	}
	if (s[2] == 'd' || s[2] == 'D') && ('8' <= s[3] && s[3] <= '9' || s[3] >= 'a' && s[3] <= 'b' || s[3] >= 'A' && s[3] <= 'B') {
		// A high surrogate: take the low one with it when one follows.
		if len(s) < 8 {
			if len(s) == 6 || s[6] == '\\' {
				return 0
			}
			return 6
		}
		if s[6] == '\\' && s[7] == 'u' {
			if len(s) < 12 {
				return 0
			}
			if (s[8] == 'd' || s[8] == 'D') && ('c' <= s[9] && s[9] <= 'f' || 'C' <= s[9] && s[9] <= 'F') {
				return 12
			}
		}
		return 6
	}
	return 6
}
