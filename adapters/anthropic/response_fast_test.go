package anthropic

import (
	"reflect"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/internal/goldens"
)

// checkReadResponse requires ReadResponse and DecodeResponse (fast reader
// when they can) to give exactly what json.Unmarshal and ResponseUsage
// give: the same neutral response or error, the same usage, meta or
// error. It reports whether the fast reader read body.
func checkReadResponse(t *testing.T, body []byte) bool {
	t.Helper()
	want, werr := decodeResponseStd(body)
	wu, wm, wuerr := ResponseUsage(body)
	sameErr := func(what string, a, b error) {
		if (a == nil) != (b == nil) || a != nil && a.Error() != b.Error() {
			t.Fatalf("%s errors differ: want %v, got %v\nbody: %s", what, a, b, body)
		}
	}
	got, gerr := DecodeResponse(body)
	sameErr("DecodeResponse", werr, gerr)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeResponse differs\nbody: %s\n got: %#v\nwant: %#v", body, got, want)
	}
	rd := ReadResponse(body)
	sameErr("ReadResponse", werr, rd.Err)
	sameErr("ReadResponse usage", wuerr, rd.UsageErr)
	if !reflect.DeepEqual(rd.Response, want) || rd.Usage != wu || rd.Meta != wm {
		t.Fatalf("ReadResponse differs\nbody: %s\n got: %#v %+v %+v\nwant: %#v %+v %+v", body, rd.Response, rd.Usage, rd.Meta, want, wu, wm)
	}
	var w inResponse
	var us usageScan
	return gjson.ValidBytes(body) && fillResponse(&w, &us, gjson.ParseBytes(body))
}

// responseEdgeBodies are inputs where encoding/json's rules are easy to
// get wrong: nulls, escapes, invalid UTF-8, folded and repeated keys,
// numbers that are not int64, error bodies.
var responseEdgeBodies = []string{
	`{"id":"msg_1","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"a\u00e9\ud83d\ude00\ud800x\"\\\/\b\f\n\r\t<&>"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":1,"output_tokens":2}}`,
	`{"id":"msg_1","type":"message","content":[{"type":"text","text":"` + "\xff\xe2\x80 ok \xc3\xa9" + `"}],"usage":{"input_tokens":1,"output_tokens":2}}`,
	`{"ID":"x","type":"message","content":[],"usage":{"input_tokens":1}}`,
	`{"id":"x","Type":"message","content":[]}`,
	`{"id":"a","id":"b","type":"message","content":[]}`,
	`{"id":null,"type":null,"model":null,"content":null,"stop_reason":null,"stop_sequence":null,"usage":null}`,
	`{"id":5,"type":"message"}`,
	`{"type":"message","content":[null]}`,
	`{"type":"message","content":{}}`,
	`{"type":"message","content":[{"type":"tool_use","id":"t","name":"f","input":null},{"type":"tool_use","id":"t2","name":"g","input":{ "a" : [1, 2] }},{"type":"tool_use","id":"t3","name":"h"}]}`,
	`{"type":"message","content":[{"type":"thinking","thinking":"hm","signature":"sig"},{"type":"redacted_thinking","data":"xyz"},{"type":"server_tool_use","id":"s","name":"web_search","input":{}},{"type":"web_search_tool_result","tool_use_id":"s","content":[{"type":"web_search_result","url":"u"}]}]}`,
	`{"type":"message","content":[{"type":"text","text":"a","citations":[{"type":"char_location"}],"cache_control":{"type":"ephemeral"},"is_error":null,"title":null}]}`,
	`{"type":"message","content":[{"type":"text","text":"a","is_error":"yes"}]}`,
	`{"type":"message","content":[{"type":"document","source":{"type":"text","data":"x"}}]}`,
	`{"type":"message","content":[{"type":"text","Text":"a"}]}`,
	`{"type":"message","content":[{"type":"text","text":"a","text":"b"}]}`,
	`{"type":"message","usage":{"input_tokens":1.5,"output_tokens":2}}`,
	`{"type":"message","usage":{"input_tokens":1e2,"output_tokens":2}}`,
	`{"type":"message","usage":{"input_tokens":-3,"output_tokens":99999999999999999999}}`,
	`{"type":"message","usage":{"input_tokens":-0,"output_tokens":null,"cache_creation_input_tokens":5,"cache_read_input_tokens":7}}`,
	`{"type":"message","usage":{"input_tokens":1,"cache_creation":{"ephemeral_5m_input_tokens":3,"ephemeral_1h_input_tokens":4},"output_tokens_details":{"thinking_tokens":9},"server_tool_use":{"web_search_requests":2},"service_tier":"priority","inference_geo":"us","speed":"fast"}}`,
	`{"type":"message","usage":{"cache_creation":null,"output_tokens_details":null,"server_tool_use":null,"service_tier":null}}`,
	`{"type":"message","usage":{"cache_creation":{"ephemeral_5m_input_tokens":null,"other":1}}}`,
	`{"type":"message","usage":{"cache_creation":[]}}`,
	`{"type":"message","usage":{"Input_Tokens":3}}`,
	`{"type":"message","usage":{"input_tokens":"3"}}`,
	`{"type":"message","usage":[]}`,
	`{"type":"message","usage":{"input_tokens":1},"usage":{"input_tokens":2}}`,
	`{"type":"message","error":{"type":"x","message":"y"},"usage":{"input_tokens":1}}`,
	`{"type":"message","error":null,"error":{"type":"x"},"usage":{"input_tokens":1}}`,
	`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
	`{"type":"completion","content":[]}`,
	`{"type":"message","modeſ":"k","content":[]}`,
	`{"type":"message","\u0069d":"escaped key","content":[]}`,
	`{"type":"message","extra":{"a":[1,{"b":null}]},"content":[]}`,
	`[]`, `null`, `"x"`, ``, `{`, `{"type":"message",}`, `nope`,
}

func TestReadResponseMatchesStd(t *testing.T) {
	bodies, err := goldens.ResponseBodies()
	if err != nil {
		t.Fatal(err)
	}
	fast := 0
	for _, b := range bodies {
		if checkReadResponse(t, b) {
			fast++
		}
	}
	if fast < 5 {
		t.Errorf("the fast reader read only %d of %d recorded and golden bodies", fast, len(bodies))
	}
	for _, b := range responseEdgeBodies {
		checkReadResponse(t, []byte(b))
	}
}

func FuzzReadResponseMatchesStd(f *testing.F) {
	bodies, err := goldens.ResponseBodies()
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range bodies {
		f.Add(b)
	}
	for _, b := range responseEdgeBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkReadResponse(t, body) })
}
