package openai

import (
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
		for _, o := range []RequestOptions{{}, {SupportsReasoning: func(string) bool { return true }},
			{MaxTokens: true, NoStreamUsage: true, SystemFirst: true}} {
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
	if _, err := DecodeRequest(goldens.EscapingBody); err != nil {
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

// checkAppendResponseMatchesMarshal builds the OpenAI wire response for
// body read as an Anthropic response and requires the appender to write
// exactly what json.Marshal writes.
func checkAppendResponseMatchesMarshal(t *testing.T, body []byte) {
	t.Helper()
	r, err := anthropic.DecodeResponse(body)
	if err != nil {
		return
	}
	names := &ir.ToolNames{}
	for _, model := range []string{"", "gpt-4o\u2028<&>"} {
		goldens.CheckMarshal(t, body, buildResponse(r, model, names), marshalResponse)
	}
	// Every optional member at once.
	s, empty := "x<\u2029>", ""
	out := buildResponse(r, "m", names)
	out.Choices = append(out.Choices, outChoice{Index: 1, Logprobs: &struct{}{}, Message: outRespMessage{
		Role: "assistant", Content: &empty, Refusal: &s, ReasoningContent: s,
		ToolCalls: []outToolCall{{ID: "c", Type: "function", Function: &outCallFunction{Name: s, Arguments: `{"a":"\u003c"}`}},
			{ID: "d", Type: "custom", Custom: &outCallCustom{Name: s, Input: "*** Begin Patch\n<&>"}}},
	}})
	out.Usage = &outUsage{PromptTokens: -1, PromptTokensDetails: outPromptDetails{CacheWriteTokens: 3}}
	goldens.CheckMarshal(t, body, out, marshalResponse)
	out.Choices = nil
	goldens.CheckMarshal(t, body, out, marshalResponse)
}

func TestAppendResponseMatchesMarshal(t *testing.T) {
	bodies, err := goldens.ResponseBodies()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, b := range bodies {
		if _, err := anthropic.DecodeResponse(b); err == nil {
			n++
		}
		checkAppendResponseMatchesMarshal(t, b)
	}
	if n < 5 {
		t.Fatalf("only %d bodies decode as Anthropic responses", n)
	}
}

func FuzzAppendResponseMatchesMarshal(f *testing.F) {
	bodies, err := goldens.ResponseBodies()
	if err != nil {
		f.Fatal(err)
	}
	for _, b := range bodies {
		f.Add(b)
	}
	f.Fuzz(checkAppendResponseMatchesMarshal)
}
