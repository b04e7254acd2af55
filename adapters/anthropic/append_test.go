package anthropic

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/metisgateway/metis/adapters/internal/goldens"
	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/ir"
)

// checkAppendMatchesMarshal builds the Anthropic wire request for every
// neutral request decodable from body (as an OpenAI or an Anthropic body)
// and requires the hand-written appender to write exactly the bytes
// json.Marshal writes (or fail alike).
func checkAppendMatchesMarshal(t *testing.T, body []byte) {
	t.Helper()
	var reqs []*ir.Request
	if r, err := openai.DecodeRequest(body); err == nil {
		reqs = append(reqs, r)
	}
	if r, err := DecodeRequest(body); err == nil {
		reqs = append(reqs, r)
	}
	for _, r := range reqs {
		for _, o := range []RequestOptions{{}, {SupportsSampling: func(string) bool { return true }}} {
			out, err := buildRequest(r, o)
			if err != nil {
				continue
			}
			goldens.CheckMarshal(t, body, out, marshalRequest)
		}
	}
}

func TestAppendRequestMatchesMarshal(t *testing.T) {
	bodies := goldens.MarshalBodies(t)
	if _, err := openai.DecodeRequest(goldens.EscapingBody); err != nil {
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
		{Model: "m", Messages: []outMessage{{Role: "user", Content: []any{outToolUse{Type: "tool_use", Input: json.RawMessage(`{"a":`)}}}}},
		{Model: "m", Messages: []outMessage{{Role: "user", Content: []any{outToolUse{Type: "tool_use", Input: json.RawMessage(``)}}}}},
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
