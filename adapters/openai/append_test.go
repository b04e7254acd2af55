package openai

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/metisgateway/metis/adapters/anthropic"
	"github.com/metisgateway/metis/adapters/internal/goldens"
	"github.com/metisgateway/metis/ir"
)

// checkAppendMatchesMarshal builds the OpenAI wire request for every
// neutral request decodable from body (as an Anthropic or an OpenAI body)
// and requires the hand-written appender to write exactly the bytes
// json.Marshal writes (or fail alike).
func checkAppendMatchesMarshal(t *testing.T, body []byte) {
	t.Helper()
	var reqs []*ir.Request
	if r, err := anthropic.DecodeRequest(body); err == nil {
		reqs = append(reqs, r)
	}
	if r, err := DecodeRequest(body); err == nil {
		reqs = append(reqs, r)
	}
	for _, r := range reqs {
		for _, o := range []RequestOptions{{}, {SupportsReasoning: func(string) bool { return true }}} {
			out, err := buildRequest(r, o)
			if err != nil {
				continue
			}
			want, werr := json.Marshal(out)
			got, gerr := marshalRequest(out)
			if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
				t.Fatalf("errors differ: json.Marshal %v, appender %v\nbody: %s", werr, gerr, body)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("appender output differs from json.Marshal\nbody: %s\n got: %s\nwant: %s", body, got, want)
			}
		}
	}
}

func TestAppendRequestMatchesMarshal(t *testing.T) {
	bodies, err := goldens.RequestBodies()
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) < 40 {
		t.Fatalf("only %d golden bodies found", len(bodies))
	}
	bodies = append(bodies, []byte(`{"model":"m\u2028<&>\u00e9\ud83d\ude00","messages":[{"role":"user","content":"a\u0001\b\f\n\r\t\"\\ \u2029 `+"\xff\xfe\xe2\x80"+`"}],"temperature":1e-7,"top_p":1e-9,
		"tools":[{"type":"function","function":{"name":"f","parameters":{ "a" : [ 1 , "<\u2028>" , {"b":"\\"} ] }}}]}`))
	if _, err := DecodeRequest(bodies[len(bodies)-1]); err != nil {
		t.Fatalf("the escaping body does not decode: %v", err)
	}
	for _, b := range bodies {
		checkAppendMatchesMarshal(t, b)
	}
}

func TestAppendRequestErrorsMatchMarshal(t *testing.T) {
	f := math.Inf(1)
	for _, out := range []*outRequest{
		{Model: "m", Messages: []outMessage{}, Temperature: &f},
		{Model: "m", Tools: []outTool{{Type: "function", Function: outFunction{Name: "f", Parameters: json.RawMessage(`{"a":`)}}}},
		{Model: "m", ResponseFormat: &outRespFormat{Type: "json_schema", JSONSchema: &outJSONSchema{Name: "n", Schema: json.RawMessage(`[1,]`)}}},
	} {
		_, werr := json.Marshal(out)
		_, gerr := marshalRequest(out)
		if werr == nil || gerr == nil || werr.Error() != gerr.Error() {
			t.Errorf("errors differ: json.Marshal %v, appender %v", werr, gerr)
		}
	}
}

func FuzzAppendRequestMatchesMarshal(f *testing.F) {
	bodies, err := goldens.RequestBodies()
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range bodies {
		f.Add(b)
	}
	f.Fuzz(checkAppendMatchesMarshal)
}
