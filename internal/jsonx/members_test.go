package jsonx_test

import (
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/metisgateway/metis/internal/jsonx"
	"github.com/tidwall/gjson"
)

// members collects what Members reports for obj as key=raw pairs.
func members(obj string) []string {
	var got []string
	jsonx.Members(obj, func(k, raw string) bool {
		got = append(got, k+"="+raw)
		return true
	})
	return got
}

func TestMembers(t *testing.T) {
	for _, c := range []struct {
		obj  string
		want []string
	}{
		{`{}`, nil},
		{` { } `, nil},
		{`{"a":1,"b":"x","c":null}`, []string{`a=1`, `b="x"`, `c=null`}},
		{"{ \"a\" :\t[1, {\"b\": \"]}\"}] ,\n\"c\":-1.5e3 }", []string{`a=[1, {"b": "]}"}]`, `c=-1.5e3`}},
		{`{"k\"ey":"v\\","o":{"p":{}}}`, []string{`k\"ey="v\\"`, `o={"p":{}}`}},
		// Malformed input: members before the fault are reported.
		{`{"a":1,"b":`, []string{`a=1`}},
		{`{"a":1 "b":2}`, []string{`a=1`}},
		{`{"a" 1}`, nil},
		{`{"a":"open`, nil},
		{`{"a":[1,2`, nil},
		{`{"a":}`, nil},
		{`[1]`, nil},
		{`"x"`, nil},
		{``, nil},
	} {
		if got := members(c.obj); !slices.Equal(got, c.want) {
			t.Errorf("Members(%q) = %q, want %q", c.obj, got, c.want)
		}
	}
}

func TestMembersStops(t *testing.T) {
	n := 0
	jsonx.Members(`{"a":1,"b":2,"c":3}`, func(k, raw string) bool {
		n++
		return k != "b"
	})
	if n != 2 {
		t.Fatalf("fn called %d times after returning false at the second member, want 2", n)
	}
}

func TestMembersAllocatesNothing(t *testing.T) {
	obj := `{"type":"text_delta","text":"a \"quoted\" line\n","n":[1,{"x":"\u00e9"}]}`
	total := 0
	if a := testing.AllocsPerRun(100, func() {
		jsonx.Members(obj, func(_, raw string) bool {
			total += jsonx.StringLen(raw)
			return true
		})
	}); a != 0 {
		t.Fatalf("Members allocates %v times per scan", a)
	}
}

func TestStringLen(t *testing.T) {
	for raw, want := range map[string]int{
		`""`: 0, `"abc"`: 3, `"a\"b"`: 3, `"\u00e9"`: 2, `"é"`: 2, `"\u20ac"`: 3, `"\ud83d\ude00"`: 4,
		`"\ud83d"`: 3, `"\n\t\\\/"`: 4, `"{\"city\": \"Paris\"}"`: 17, `"\u00zz"`: 5,
		`"\ud83d\u00e9"`: 5, `"\ud83d\ud83d"`: 6, `"\ude00"`: 3, `"\uD83D\uDE00x"`: 5, `"a\"`: 2,
		`12`: 0, `null`: 0, `"`: 0, ``: 0, `{"a":"b"}`: 0,
	} {
		if got := jsonx.StringLen(raw); got != want {
			t.Errorf("StringLen(%q) = %d, want %d", raw, got, want)
		}
	}
	if a := testing.AllocsPerRun(100, func() { jsonx.StringLen(`"\u00zz \ud83d\ude00 \ud83d \"x\""`) }); a != 0 {
		t.Errorf("StringLen allocates %v times", a)
	}
}

func TestView(t *testing.T) {
	b := []byte(`{"a":1}`)
	if s := jsonx.View(b); s != `{"a":1}` {
		t.Fatalf("View = %q", s)
	}
	if s := jsonx.View(nil); s != "" {
		t.Fatalf("View(nil) = %q", s)
	}
}

func TestString(t *testing.T) {
	known := map[string]string{"stop": "stop"}
	buf := []byte(`{"a":"stop","b":"other","c":1,"d":"x\ny"}`)
	root := gjson.Parse(jsonx.View(buf))
	a := jsonx.String(root.Get("a"), known)
	b := jsonx.String(root.Get("b"), known)
	d := jsonx.String(root.Get("d"), known)
	if c := jsonx.String(root.Get("c"), known); c != "" {
		t.Errorf("String(number) = %q, want empty", c)
	}
	if m := jsonx.String(root.Get("missing"), known); m != "" {
		t.Errorf("String(missing) = %q, want empty", m)
	}
	// The results must survive the buffer's reuse.
	for i := range buf {
		buf[i] = '#'
	}
	if a != "stop" || b != "other" || d != "x\ny" {
		t.Fatalf("after reuse: %q %q %q", a, b, d)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		_ = jsonx.String(gjson.Parse(`"stop"`), known)
	}); allocs != 0 {
		t.Errorf("String of a known value allocates %v times", allocs)
	}
}

// FuzzMembers checks the member scanner against gjson on valid JSON
// objects, and that it never panics on anything else.
func FuzzMembers(f *testing.F) {
	for _, s := range []string{
		`{"type":"text_delta","text":"a \"quoted\" line\n"}`,
		` { "a" : [1, {"b": "]}"}], "c": null , "d":-1.5e3, "e": {"f": "\\"}} `,
		`{"content":"","refusal":null,"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}`,
		`{}`, `{"a":`, `{"a" 1}`, `[1]`, `"x"`,
		`{"a":"\ud83d\ude00 \ud83d\u00e9 \ude00 \u20ac \/"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, obj string) {
		var keys, raws []string
		jsonx.Members(obj, func(k, raw string) bool {
			keys = append(keys, k)
			raws = append(raws, raw)
			return true
		})
		var probe map[string]json.RawMessage
		if json.Unmarshal([]byte(obj), &probe) != nil || probe == nil {
			return // only well-formed objects are compared (null decodes too)
		}
		var wantKeys, wantRaws []string
		gjson.Parse(obj).ForEach(func(k, v gjson.Result) bool {
			wantKeys = append(wantKeys, k.Raw[1:len(k.Raw)-1])
			wantRaws = append(wantRaws, v.Raw)
			return true
		})
		if len(keys) != len(wantKeys) {
			t.Fatalf("keys %q, gjson %q", keys, wantKeys)
		}
		for i := range keys {
			if keys[i] != wantKeys[i] || raws[i] != wantRaws[i] {
				t.Fatalf("member %d: %q=%q, gjson %q=%q", i, keys[i], raws[i], wantKeys[i], wantRaws[i])
			}
			// A string value's decoded length is what encoding/json decodes
			// (providers send UTF-8; invalid bytes count as sent).
			var str string
			if !utf8.ValidString(raws[i]) {
				continue
			}
			if json.Unmarshal([]byte(raws[i]), &str) == nil {
				if got := jsonx.StringLen(raws[i]); got != len(str) {
					t.Fatalf("StringLen(%s) = %d, decoded %d bytes", raws[i], got, len(str))
				}
			} else if jsonx.StringLen(raws[i]) != 0 {
				t.Fatalf("StringLen(%s) of a non-string = %d", raws[i], jsonx.StringLen(raws[i]))
			}
		}
	})
}
