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
