package openai

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// randomInputArgs writes {"input": s} for a random s as a model might:
// characters raw or escaped (\u in either case, surrogate pairs, \/, the
// short escapes), now and then a lone surrogate escape, with random
// whitespace between the tokens.
func randomInputArgs(rng *rand.Rand) string {
	ws := []string{"", " ", "\n", "\t ", "\r\n"}
	w := func() string { return ws[rng.IntN(len(ws))] }
	var b strings.Builder
	b.WriteString(w() + "{" + w() + `"input"` + w() + ":" + w() + `"`)
	for range rng.IntN(30) {
		var r rune
		switch rng.IntN(6) {
		case 0:
			r = rune(rng.IntN(0x80))
		case 1:
			r = rune(0x80 + rng.IntN(0x800))
		case 2:
			r = rune(0x10000 + rng.IntN(0x10000))
		case 3:
			r = []rune{'"', '\\', '\n', '\t', '/', 0, 0x1f, 0x2028}[rng.IntN(8)]
		case 4:
			fmt.Fprintf(&b, `\u%04x`, 0xD800+rng.IntN(0x800)) // a lone surrogate
			continue
		default:
			r = rune(0xE000 + rng.IntN(0x1000))
		}
		hex := `\u%04x`
		if rng.IntN(2) == 0 {
			hex = `\u%04X`
		}
		switch {
		case r >= 0x10000 && rng.IntN(2) == 0:
			hi, lo := utf16.EncodeRune(r)
			fmt.Fprintf(&b, hex+hex, hi, lo)
		case r == '/' && rng.IntN(2) == 0:
			b.WriteString(`\/`)
		case r == '\n' && rng.IntN(2) == 0:
			b.WriteString(`\n`)
		case r < 0x10000 && (r < 0x20 || r == '"' || r == '\\' || rng.IntN(3) == 0):
			fmt.Fprintf(&b, hex, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(`"` + w() + "}" + w())
	return b.String()
}

// TestInputReaderMatchesEncodingJSON: a custom call's text, read from its
// JSON arguments cut anywhere between characters (streamed) or whole
// (CustomInput), is what encoding/json reads as the input member.
func TestInputReaderMatchesEncodingJSON(t *testing.T) {
	for seed := range uint64(20000) {
		rng := rand.New(rand.NewPCG(seed, 3))
		args := randomInputArgs(rng)
		var want struct{ Input string }
		if err := json.Unmarshal([]byte(args), &want); err != nil {
			t.Fatalf("the generator wrote bad JSON %q: %v", args, err)
		}
		var r inputReader
		got := ""
		for rest := args; rest != ""; {
			n := 1 + rng.IntN(min(len(rest), 7))
			for n < len(rest) && !utf8.RuneStart(rest[n]) {
				n++
			}
			got += r.feed(rest[:n])
			rest = rest[n:]
		}
		got += r.end()
		if got != want.Input {
			t.Fatalf("seed %d, %q streamed: %q, want %q", seed, args, got, want.Input)
		}
		if whole := CustomInput(json.RawMessage(args)); whole != want.Input {
			t.Fatalf("seed %d, %q whole: %q, want %q", seed, args, whole, want.Input)
		}
	}
}
