package openai

import (
	"encoding/json"
	"testing"

	"github.com/tidwall/gjson"
)

// FuzzUsageMembers checks the allocation-free member scanner against gjson
// on valid JSON objects, and that it never panics on anything else.
func FuzzUsageMembers(f *testing.F) {
	for _, s := range []string{
		`{"type":"text_delta","text":"a \"quoted\" line\n"}`,
		` { "a" : [1, {"b": "]}"}], "c": null , "d":-1.5e3, "e": {"f": "\\"}} `,
		`{"content":"","refusal":null,"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}`,
		`{}`, `{"a":`, `{"a" 1}`, `[1]`, `"x"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, obj string) {
		var keys, raws []string
		usageMembers(obj, func(k, raw string) bool {
			keys = append(keys, k)
			raws = append(raws, raw)
			return true
		})
		var probe map[string]json.RawMessage
		if json.Unmarshal([]byte(obj), &probe) != nil {
			return // only well-formed objects are compared
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
			if usageStringLen(raws[i]) < 0 {
				t.Fatal("negative length")
			}
		}
	})
}
