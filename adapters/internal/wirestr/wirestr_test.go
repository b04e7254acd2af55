package wirestr

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// check requires Of to decode every string value of doc as json.Unmarshal
// does.
func check(t *testing.T, doc string) {
	t.Helper()
	if !gjson.Valid(doc) || !json.Valid([]byte(doc)) {
		return
	}
	var walk func(v gjson.Result)
	walk = func(v gjson.Result) {
		switch {
		case v.Type == gjson.String:
			var want string
			if err := json.Unmarshal([]byte(v.Raw), &want); err != nil {
				t.Fatalf("json.Unmarshal(%q): %v", v.Raw, err)
			}
			if got := Of(v); got != want {
				t.Fatalf("Of(%q) = %q, want %q", v.Raw, got, want)
			}
		case v.IsObject() || v.IsArray():
			v.ForEach(func(_, e gjson.Result) bool { walk(e); return true })
		}
	}
	walk(gjson.Parse(doc))
}

var docs = []string{
	`"plain"`, `""`, `"a\"b"`, `"\u00e9\ud83d\ude00"`, `"\ud800x"`, `"\ud800\u0041"`, `"\/\b\f\n\r\t\\"`,
	"\"\xff\xe2\x80 ok \xc3\xa9\"", "\"\xed\xa0\x80\"", `"é ☃ 😀"`, `"<&>` + "\u2028" + `"`,
	`{"a":"x","b":["y\n",{"c":"z\u0000"}]}`,
}

func TestOfMatchesUnmarshal(t *testing.T) {
	for _, d := range docs {
		check(t, d)
	}
}

func FuzzOfMatchesUnmarshal(f *testing.F) {
	for _, d := range docs {
		f.Add(d)
	}
	f.Fuzz(check)
}

func checkAppend(t *testing.T, s string) {
	t.Helper()
	want, _ := json.Marshal(s)
	if got := AppendString([]byte("x"), s); string(got) != "x"+string(want) {
		t.Fatalf("AppendString(%q) = %s, want x%s", s, got, want)
	}
}

func TestAppendStringMatchesMarshal(t *testing.T) {
	for _, s := range []string{"", "a", "plain ascii text, long enough for words", "01234567", "0123456\x1f", "0123456\x7f",
		"\x00", "abc\"def", "abcdefg\\", "<", "0123456789abcde>", "&&&&&&&&&", "é", "0123456789\u2028", "\xff0123456789",
		"\x20\x21\x7e\x7f\x80\x1f\x19"} {
		checkAppend(t, s)
	}
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 9; pos++ {
			b := []byte("abcdefghijklmnop")
			b[pos] = byte(c)
			checkAppend(t, string(b))
		}
	}
}

func FuzzAppendStringMatchesMarshal(f *testing.F) {
	f.Add("plain ascii text")
	f.Add("a<b>c&d\"e\\f\n\u2028é\xff")
	f.Fuzz(checkAppend)
}
