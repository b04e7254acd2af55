package openai

import (
	"reflect"
	"testing"

	"github.com/metisgateway/metis/adapters/internal/goldens"
)

// checkFastMatchesStd requires DecodeRequest (fast reader when it can) to
// give exactly what the encoding/json reader gives: the same neutral
// request or the same error.
func checkFastMatchesStd(t *testing.T, body []byte) bool {
	t.Helper()
	want, werr := decodeRequestStd(body, &inRequest{})
	got, gerr := DecodeRequest(body)
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
		t.Fatalf("errors differ: encoding/json %v, fast %v\nbody: %s", werr, gerr, body)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("requests differ\nbody: %s\n got: %#v\nwant: %#v", body, got, want)
	}
	var in inRequest
	return fillRequest(&in, body)
}

// fastEdgeBodies are inputs where encoding/json's rules are easy to get
// wrong: null members, escapes, invalid UTF-8, folded keys, duplicates.
var fastEdgeBodies = []string{
	`{"model":"m","messages":[{"role":"user","content":"a\u00e9\ud83d\ude00\ud800x\ud800\u0041\"\\\/\b\f\n\r\t"}]}`,
	`{"model":"m","messages":[{"role":"user","content":"` + "\xff\xe2\x80 ok \xc3\xa9" + `"}]}`,
	`{"Model":"m","messages":[]}`,
	`{"model":"m","MESSAGES":[{"role":"user","content":"x"}]}`,
	`{"model":"m","modeſ":"k","messages":[]}`,
	`{"model":"a","model":"b","messages":[]}`,
	`{"model":null,"messages":null,"tools":null,"stream":null,"stream_options":null,"response_format":null,"stop":null,"tool_choice":null,"n":null,"temperature":null}`,
	`{"model":"m","messages":[null]}`,
	`{"model":"m","messages":[{"role":"user","content":[null]}]}`,
	`{"model":"m","messages":[{"role":"user","content":5}]}`,
	`{"model":5,"messages":[]}`,
	`{"model":"m","max_tokens":1.0,"messages":[]}`,
	`{"model":"m","max_tokens":1e2,"messages":[]}`,
	`{"model":"m","max_tokens":-0,"n":99999999999999999999,"messages":[]}`,
	`{"model":"m","temperature":1e400,"messages":[]}`,
	`{"model":"m","temperature":-0.0,"top_p":1E-7,"messages":[]}`,
	`{"model":"m","stream":"true","messages":[]}`,
	`{"model":"m","stream_options":{"include_usage":true,"include_usage":false},"messages":[]}`,
	`{"model":"m","stream_options":{"Include_Usage":true},"messages":[]}`,
	`{"model":"m","stream_options":[],"messages":[]}`,
	`{"model":"m","functions":null,"messages":[]}`,
	`{"model":"m","functions":[],"messages":[]}`,
	`{"model":"m","response_format":{"type":"json_schema","json_schema":null},"messages":[]}`,
	`{"model":"m","response_format":{"type":"json_schema","json_schema":{"name":"n","schema":null,"strict":null}},"messages":[]}`,
	`{"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":null,"strict":true},"cache_control":null}],"messages":[]}`,
	`{"model":"m","tools":[{"type":"function","function":null}],"messages":[]}`,
	`{"model":"m","tools":[{"type":"function","function":{"name":"f"},"extra":{"a":[1,{"b":null}]}}],"messages":[]}`,
	`{"model":"m","messages":[{"role":"assistant","content":null,"refusal":null,"tool_calls":[{"id":"c","type":"function","function":null}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","content":"","refusal":"no","tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":null}}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"index":1.5,"id":"c","function":{"name":"f"}}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":null}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"f"}}]}]}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a","cache_control":null},{"type":"text","text":null}]}]}`,
	`{"model":"m","messages":[{"role":"tool","tool_call_id":"t","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`,
	`{"model":"m","tools":[{"type":"custom","custom":{"name":"g","description":"d","format":{"type":"grammar","grammar":{"syntax":"lark","definition":"start: /.+/"}}},"cache_control":{"type":"ephemeral"}}],"tool_choice":{"type":"custom","custom":{"name":"g"}},"messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"g","input":"a\nb\u00e9"}}]}]}`,
	`{"model":"m","tools":[{"type":"custom","custom":null},{"type":"custom","custom":{"name":"g","format":null}}],"messages":[]}`,
	`{"model":"m","tools":[{"type":"custom","custom":{"name":"g","format":{"type":"text"},"other":1}}],"messages":[]}`,
	`{"model":"m","tools":[{"type":"custom","custom":{"name":"g","format":{"type":"grammar","grammar":{"syntax":"ebnf","definition":"x"}}}}],"messages":[]}`,
	`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"g","input":null}},{"id":"d","type":"custom","custom":null}]}]}`,
	`{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"custom","custom":{"name":"g","input":5}}]}]}`,
	`null`, `[]`, `"x"`, `{}`, `{"model":"m","messages":[]} x`, ``,
}

func TestFastRequestReaderMatchesEncodingJSON(t *testing.T) {
	bodies, err := goldens.RequestBodies()
	if err != nil {
		t.Fatal(err)
	}
	fast := 0
	for _, b := range bodies {
		if checkFastMatchesStd(t, b) {
			fast++
		}
	}
	// The golden OpenAI bodies must take the fast path (the Anthropic
	// ones fail either way).
	t.Logf("fast reader took %d of %d golden bodies", fast, len(bodies))
	if fast < len(bodies)/3 {
		t.Errorf("fast reader took only %d of %d golden bodies", fast, len(bodies))
	}
	for _, b := range fastEdgeBodies {
		checkFastMatchesStd(t, []byte(b))
	}
}

func FuzzFastRequestReaderMatchesEncodingJSON(f *testing.F) {
	bodies, err := goldens.RequestBodies()
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range bodies {
		f.Add(b)
	}
	for _, b := range fastEdgeBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkFastMatchesStd(t, body) })
}
