package jsonx

import (
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

func TestDuplicateKey(t *testing.T) {
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"k` + strings.Repeat("x", i) + `":1`)
		}
		return b.String() + extra + "}"
	}
	for _, tc := range []struct {
		in, dup string
	}{
		{`{"model":"haiku","max_tokens":1}`, ""},
		{`{"model":"haiku","model":"opus"}`, "model"},
		{`{"model":"haiku","mod\u0065l":"opus"}`, "model"},
		{`{"mod\"el":1,"mod\"el":2}`, `mod"el`},
		{`{"a\\":1,"a\\":2}`, `a\`},
		{`{"a":{"b":1},"c":{"b":2}}`, ""},
		{`{"a":{"b":1,"b":2}}`, "b"},
		{`{"stream_options":{"include_usage":false,"include_usage":true}}`, "include_usage"},
		{`{"tools":[{"type":"x","max_uses":1},{"type":"y","max_uses":1,"max_uses":9}]}`, "max_uses"},
		{`[{"a":1},{"a":1}]`, ""},
		{`{"a":"a","b":["a","a"],"c":{"a":{"a":{}}}}`, ""},
		{`{"messages":[{"role":"user","content":"{\"model\":1,\"model\":2}"}]}`, ""},
		{`{"a":1,"b":{"x":1},"a":2}`, "a"},
		{many(40, ""), ""},
		{many(40, `,"k`+strings.Repeat("x", 39)+`":2`), "k" + strings.Repeat("x", 39)},
		{many(40, `,"k":2`), "k"},
		// Sibling objects of many keys reuse one map: it must start empty.
		{"[" + many(40, "") + "," + many(40, "") + "]", ""},
		{"[" + many(40, "") + "," + many(40, `,"kxx":2`) + "]", "kxx"},
		{`{"a":` + many(20, "") + `,"b":` + many(30, `,"inner":`+many(18, "")) + `}`, ""},
		{`"just a string"`, ""},
		{`{}`, ""},
	} {
		if !gjson.Valid(tc.in) {
			t.Fatalf("test input %q is not valid JSON", tc.in)
		}
		got, ok := DuplicateKey(tc.in, nil)
		if ok != (tc.dup != "") || got != tc.dup {
			t.Errorf("DuplicateKey(%q) = %q, %v; want %q", tc.in, got, ok, tc.dup)
		}
	}
}

// The values of skipped top-level members are not looked into; the top
// level itself, and every other member, still are.
func TestDuplicateKeySkip(t *testing.T) {
	conv := func(name string) bool { return name == "messages" || name == "system" }
	for _, tc := range []struct{ in, dup string }{
		{`{"messages":[{"role":"assistant","content":[{"type":"tool_use","input":{"q":"a","q":"b"}}]}]}`, ""},
		{`{"system":{"a":1,"a":2},"model":"x"}`, ""},
		{`{"messages":[],"model":"a","model":"b"}`, "model"},
		{`{"messages":[{"a":1,"a":2}],"messages":[]}`, "messages"},
		{`{"messages":[{"a":{"b":1,"b":2}}],"stream_options":{"include_usage":false,"include_usage":true}}`, "include_usage"},
		{`{"tools":[{"max_uses":1,"max_uses":9}],"messages":[]}`, "max_uses"},
		{`{"metadata":{"messages":{"x":1,"x":2}}}`, "x"},
	} {
		got, ok := DuplicateKey(tc.in, conv)
		if ok != (tc.dup != "") || got != tc.dup {
			t.Errorf("DuplicateKey(%q, conversation) = %q, %v; want %q", tc.in, got, ok, tc.dup)
		}
	}
}

// duplicateKeyRef finds duplicate names with encoding/json's tokenizer.
func duplicateKeyRef(s string) bool {
	dec := json.NewDecoder(strings.NewReader(s))
	type frame struct {
		obj     bool
		names   map[string]bool
		wantKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false
		}
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if top != nil && top.obj {
					top.wantKey = true
				}
				stack = append(stack, &frame{obj: v == '{', names: map[string]bool{}, wantKey: v == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
		case string:
			if top != nil && top.obj && top.wantKey {
				if top.names[v] {
					return true
				}
				top.names[v] = true
				top.wantKey = false
				continue
			}
			if top != nil && top.obj {
				top.wantKey = true
			}
		default:
			if top != nil && top.obj {
				top.wantKey = true
			}
		}
	}
}

func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"a":{"b":[1,{"c":1,"c":2}]}}`, `{"x":"\"","x":1}`,
		`{"\ud800":1,"\ufffd":2}`, `[{"a":1},{"a":1}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !gjson.Valid(s) || !json.Valid([]byte(s)) {
			return
		}
		_, got := DuplicateKey(s, nil)
		if want := duplicateKeyRef(s); got != want {
			t.Fatalf("DuplicateKey(%q) reports %v, encoding/json's tokens %v", s, got, want)
		}
	})
}

// BenchmarkDuplicateKeyManyKeys scans objects of 40 keys each, numbers
// for values: the map path, and the bytes between structural ones.
func BenchmarkDuplicateKeyManyKeys(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 2000 {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString("{")
		for k := range 40 {
			if k > 0 {
				sb.WriteString(",")
			}
			sb.WriteString(`"field_` + strings.Repeat("x", k%7) + string(rune('a'+k%26)) + string(rune('a'+k/26)) + `":1234567.25`)
		}
		sb.WriteString("}")
	}
	sb.WriteString("]")
	s := sb.String()
	if !gjson.Valid(s) {
		b.Fatal("invalid body")
	}
	if _, dup := DuplicateKey(s, nil); dup {
		b.Fatal("duplicate")
	}
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		DuplicateKey(s, nil)
	}
}

// BenchmarkDuplicateKey scans a Claude Code-like body: a long system
// prompt, tool definitions and a conversation of text and tool blocks.
func BenchmarkDuplicateKey(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"model":"claude-sonnet-4-5","max_tokens":32000,"stream":true,"system":[{"type":"text","text":"`)
	sb.WriteString(strings.Repeat(`You are an agent. Use \"tools\" wisely.\n`, 400))
	sb.WriteString(`"}],"tools":[`)
	for i := range 20 {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"name":"tool","description":"` + strings.Repeat("does things ", 40) +
			`","input_schema":{"type":"object","properties":{"path":{"type":"string"},"n":{"type":"integer"}},"required":["path"]}}`)
	}
	sb.WriteString(`],"messages":[`)
	for i := range 60 {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"role":"user","content":[{"type":"text","text":"` + strings.Repeat("some words here ", 60) + `"}]}`)
	}
	sb.WriteString(`]}`)
	s := sb.String()
	if !gjson.Valid(s) {
		b.Fatal("invalid body")
	}
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		if _, dup := DuplicateKey(s, nil); dup {
			b.Fatal("duplicate")
		}
	}
}
