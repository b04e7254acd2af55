package openai

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3/responses"
	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/sse"
	"github.com/metisgateway/metis/ir"
)

// For a Claude model (ResponsesOptions both set): a namespace tool's
// functions are offered flat as namespace.name, a past call of one is
// named the same way, hosted tools and their past calls are dropped, and a
// tool_choice forcing a hosted tool becomes auto. Without the options the
// same body is refused, as Chat Completions has no namespaces.
func TestResponsesToChatForClaude(t *testing.T) {
	body := []byte(`{"model":"m","input":[
		{"role":"user","content":"Find ACME."},
		{"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"acme"}},
		{"type":"function_call","call_id":"call_1","name":"lookup","namespace":"crm","arguments":"{\"q\":\"ACME\"}"},
		{"type":"function_call_output","call_id":"call_1","output":"found"}],
		"tools":[{"type":"namespace","name":"crm","description":"Customer records.","tools":[
			{"type":"function","name":"lookup","parameters":{"type":"object"}},
			{"type":"custom","name":"note","description":"Write a note."}]},
			{"type":"web_search"},{"type":"function","name":"plain","parameters":{"type":"object"}}],
		"tool_choice":{"type":"web_search"}}`)
	out, namespaces, err := ResponsesToChatWith(body, ResponsesOptions{Namespaces: true, DropHosted: true})
	if err != nil {
		t.Fatal(err)
	}
	got := gjson.ParseBytes(out)
	wantPaths(t, got, map[string]string{
		"tools.#":                               "3",
		"tools.0.function.name":                 "crm.lookup",
		"tools.1.type":                          "custom",
		"tools.1.custom.name":                   "crm.note",
		"tools.2.function.name":                 "plain",
		"tool_choice":                           "auto",
		"messages.#":                            "3",
		"messages.1.tool_calls.0.function.name": "crm.lookup",
		"messages.1.tool_calls.0.id":            "call_1",
		"messages.2.role":                       "tool",
		"messages.2.content":                    "found",
	})
	if len(namespaces) != 1 || namespaces[0] != "crm" {
		t.Errorf("namespaces %v", namespaces)
	}
	if _, err := ResponsesToChat(body); err == nil || !strings.Contains(err.Error(), "hosted") {
		t.Errorf("without options: %v", err)
	}
	if _, err := ResponsesToChat([]byte(`{"model":"m","input":"hi","tools":[{"type":"namespace","name":"crm","tools":[]}]}`)); err == nil ||
		!strings.Contains(err.Error(), "namespace tools cannot be translated for Chat Completions") {
		t.Errorf("a namespace without options: %v", err)
	}
	// Only hosted tools: none is left, nor its tool_choice.
	out, _, err = ResponsesToChatWith([]byte(`{"model":"m","input":"hi","tools":[{"type":"web_search"}],"tool_choice":"required"}`),
		ResponsesOptions{Namespaces: true, DropHosted: true})
	if err != nil || gjson.GetBytes(out, "tools").Exists() || gjson.GetBytes(out, "tool_choice").Exists() {
		t.Errorf("hosted tools only: %s, %v", out, err)
	}
}

// A complete answer: thinking as a reasoning item with its text for
// summary, each run of text a message (text after a call is a message of
// its own), calls under the client's names (a namespaced one split, a
// custom one with its text), usage in the Responses API's convention
// (input_tokens includes the cache), and a token-limited answer
// incomplete. openai-go reads it.
func TestEncodeResponsesResponse(t *testing.T) {
	names := &ir.ToolNames{}
	up := names.Upstream("crm" + NamespaceSep + "lookup")
	names.MarkCustom("apply_patch")
	r := &ir.Response{ID: "msg_01abc", Model: "claude-haiku-4-5-20251001", StopReason: ir.StopMaxTokens, HasUsage: true,
		Usage: ir.Usage{InputTokens: 100, CacheReadInputTokens: 1000, CacheCreationInputTokens: 50, OutputTokens: 70},
		Content: []ir.Part{
			{Type: ir.PartThinking, Text: "The user wants ACME."},
			{Type: ir.PartText, Text: "Looking "}, {Type: ir.PartText, Text: "it up."},
			{Type: ir.PartToolCall, ToolCallID: "toolu_1", ToolName: up, Arguments: json.RawMessage(`{ "q": "ACME" }`)},
			{Type: ir.PartToolCall, ToolCallID: "toolu_2", ToolName: "apply_patch", Arguments: json.RawMessage(`{"input":"*** Begin Patch"}`)},
			{Type: ir.PartText, Text: "Done."},
		}}
	out, err := EncodeResponsesResponse(r, ResponsesAnswer{Model: "haiku", Names: names, Namespaces: []string{"crm"}})
	if err != nil {
		t.Fatal(err)
	}
	var resp responses.Response
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.ID != "resp_01abc" || resp.Model != "haiku" || resp.Status != "incomplete" || resp.IncompleteDetails.Reason != "max_output_tokens" ||
		len(resp.Output) != 5 || resp.OutputText() != "Looking it up.Done." {
		t.Fatalf("read %s", out)
	}
	if rs := resp.Output[0].AsReasoning(); rs.Type != "reasoning" || rs.Summary[0].Text != "The user wants ACME." {
		t.Errorf("reasoning %s", resp.Output[0].RawJSON())
	}
	if fc := resp.Output[2].AsFunctionCall(); fc.Name != "lookup" || fc.Namespace != "crm" || fc.Arguments != `{"q":"ACME"}` || fc.CallID != "toolu_1" {
		t.Errorf("function call %s", resp.Output[2].RawJSON())
	}
	if cc := resp.Output[3].AsCustomToolCall(); resp.Output[3].Type != "custom_tool_call" || cc.Name != "apply_patch" || cc.Input != "*** Begin Patch" || cc.CallID != "toolu_2" {
		t.Errorf("custom call %s", resp.Output[3].RawJSON())
	}
	ids := map[string]bool{}
	for _, it := range resp.Output {
		ids[it.ID] = true
	}
	if len(ids) != 5 {
		t.Errorf("item ids repeat: %s", out)
	}
	u := resp.Usage
	if u.InputTokens != 1150 || u.InputTokensDetails.CachedTokens != 1000 || u.OutputTokens != 70 || u.TotalTokens != 1220 {
		t.Errorf("usage %s", u.RawJSON())
	}
}

// streamEvents runs neutral events through a ResponsesStreamEncoder and
// returns the SSE bytes.
func streamEvents(enc *ResponsesStreamEncoder, evs []ir.StreamEvent, finish bool) []byte {
	var out []byte
	for i := range evs {
		out = enc.Encode(out, &evs[i])
	}
	if finish {
		out = enc.Finish(out)
	}
	return out
}

// readEvents parses an SSE stream into its events' names and data,
// checking that each event's name is its data's type and that the
// sequence numbers run 0, 1, 2…
func readEvents(t *testing.T, b []byte) (names []string, data []string) {
	t.Helper()
	r := sse.NewReader(bytes.NewReader(b))
	for {
		ev, err := r.Next()
		if err != nil {
			break
		}
		if ev.Comment {
			continue
		}
		d := string(ev.Data)
		if gjson.Get(d, "type").Str != ev.Name {
			t.Errorf("event %q carries type %q", ev.Name, gjson.Get(d, "type").Str)
		}
		if n := gjson.Get(d, "sequence_number").Int(); n != int64(len(names)) {
			t.Errorf("event %d has sequence_number %d", len(names), n)
		}
		names, data = append(names, ev.Name), append(data, d)
	}
	return names, data
}

// A stream: every event parses as openai-go's event union and feeds its
// ResponseAccumulator, which checks the protocol (items added before their
// deltas, ids matching) and reassembles the same response the final event
// carries: reasoning summary text, message text, a function call's
// arguments (a call without arguments gets "{}"), a custom call's text
// read out of its JSON arguments as they stream. Redacted thinking is a
// reasoning item without a summary. Claude's blocks are kept out of the
// items unless the client asked for encrypted content.
func TestResponsesStreamEncoder(t *testing.T) {
	names := &ir.ToolNames{}
	names.MarkCustom("apply_patch")
	evs := []ir.StreamEvent{
		{Type: ir.EventMessageStart, ID: "msg_01x", Model: "claude-haiku-4-5", HasUsage: true, InputCounted: true, Usage: ir.Usage{InputTokens: 10}},
		{Type: ir.EventBlockStart, Index: 0, Block: ir.Part{Type: ir.PartThinking}},
		{Type: ir.EventBlockDelta, Index: 0, Delta: ir.DeltaThinking, Text: "Hmm, "},
		{Type: ir.EventBlockDelta, Index: 0, Delta: ir.DeltaThinking, Text: "a patch."},
		{Type: ir.EventBlockDelta, Index: 0, Delta: ir.DeltaSignature, Text: "sig"},
		{Type: ir.EventBlockStop, Index: 0},
		{Type: ir.EventBlockStart, Index: 1, Block: ir.Part{Type: ir.PartRedactedThinking, Data: "xyz"}},
		{Type: ir.EventBlockStop, Index: 1},
		{Type: ir.EventBlockStart, Index: 2, Block: ir.Part{Type: ir.PartText}},
		{Type: ir.EventBlockDelta, Index: 2, Delta: ir.DeltaText, Text: "Sure"},
		{Type: ir.EventBlockDelta, Index: 2, Delta: ir.DeltaText, Text: " — é."},
		{Type: ir.EventBlockStop, Index: 2},
		{Type: ir.EventBlockStart, Index: 3, Block: ir.Part{Type: ir.PartToolCall, ToolCallID: "toolu_a", ToolName: "now"}},
		{Type: ir.EventBlockStop, Index: 3},
		{Type: ir.EventBlockStart, Index: 4, Block: ir.Part{Type: ir.PartToolCall, ToolCallID: "toolu_b", ToolName: "apply_patch"}},
		{Type: ir.EventBlockDelta, Index: 4, Delta: ir.DeltaArguments, Text: `{"inp`},
		{Type: ir.EventBlockDelta, Index: 4, Delta: ir.DeltaArguments, Text: `ut": "line 1\nline`},
		{Type: ir.EventBlockDelta, Index: 4, Delta: ir.DeltaArguments, Text: ` 2 \u00e9"}`},
		{Type: ir.EventBlockStop, Index: 4},
		{Type: ir.EventMessageDelta, StopReason: ir.StopToolUse, HasUsage: true, InputCounted: true, OutputCounted: true, Usage: ir.Usage{InputTokens: 10, OutputTokens: 42}},
		{Type: ir.EventMessageStop},
	}
	enc := &ResponsesStreamEncoder{ResponsesAnswer: ResponsesAnswer{Model: "haiku", Names: names}}
	out := streamEvents(enc, evs, true)
	types, data := readEvents(t, out)
	var acc responses.ResponseAccumulator
	for i, d := range data {
		var ev responses.ResponseStreamEventUnion
		if err := json.Unmarshal([]byte(d), &ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		var sev responses.ResponsesServerEventUnion
		if err := json.Unmarshal([]byte(d), &sev); err != nil {
			t.Fatal(err)
		}
		if err := acc.AddEvent(sev); err != nil {
			t.Fatalf("event %d %s: %v", i, d, err)
		}
	}
	r, err := acc.ReconstructedResponse()
	if err != nil {
		t.Fatal(err)
	}
	// Each event about an item names the item its output_index added.
	added := map[int64]string{}
	for _, d := range data {
		ev := gjson.Parse(d)
		idx := ev.Get("output_index").Int()
		switch {
		case ev.Get("type").Str == "response.output_item.added":
			added[idx] = ev.Get("item.id").Str
		case ev.Get("item_id").Exists() && ev.Get("item_id").Str != added[idx]:
			t.Errorf("%s names item %s, output %d is %s", ev.Get("type").Str, ev.Get("item_id").Str, idx, added[idx])
		case ev.Get("item.id").Exists() && ev.Get("item.id").Str != added[idx]:
			t.Errorf("%s carries item %s, output %d is %s", ev.Get("type").Str, ev.Get("item.id").Str, idx, added[idx])
		}
	}
	if types[0] != "response.created" || types[1] != "response.in_progress" || types[len(types)-1] != "response.completed" || !enc.Done() {
		t.Errorf("events %v", types)
	}
	if len(r.Output) != 5 || r.Output[0].Type != "reasoning" || r.Output[0].AsReasoning().Summary[0].Text != "Hmm, a patch." ||
		r.Output[1].Type != "reasoning" || len(r.Output[1].AsReasoning().Summary) != 0 ||
		r.OutputText() != "Sure — é." || r.Output[3].AsFunctionCall().Arguments != "{}" || r.Output[3].AsFunctionCall().Name != "now" ||
		r.Output[4].AsCustomToolCall().Input != "line 1\nline 2 é" || r.Usage.OutputTokens != 42 || r.Status != "completed" {
		t.Errorf("reassembled %s", r.RawJSON())
	}
	if strings.Contains(string(out), "encrypted_content") {
		t.Errorf("encrypted content not asked for, but sent: %s", out)
	}
	snap := acc.Snapshot()
	if snap.Output[4].Input != "line 1\nline 2 é" || snap.Output[2].Text[0] != "Sure — é." {
		t.Errorf("deltas %+v", snap.Output)
	}
	// After the end nothing more is written.
	if more := enc.Encode(nil, &ir.StreamEvent{Type: ir.EventPing}); more != nil {
		t.Errorf("after the end: %q", more)
	}
}

// A stream cut before the model said why it stopped ends with the
// Responses API's error event, numbered after the last event; one the
// token limit cut ends with response.incomplete.
func TestResponsesStreamEncoderEndings(t *testing.T) {
	start := []ir.StreamEvent{
		{Type: ir.EventMessageStart, ID: "msg_1", Model: "m"},
		{Type: ir.EventBlockStart, Index: 0, Block: ir.Part{Type: ir.PartText}},
		{Type: ir.EventBlockDelta, Index: 0, Delta: ir.DeltaText, Text: "Hel"},
	}
	enc := &ResponsesStreamEncoder{}
	types, data := readEvents(t, streamEvents(enc, start, true))
	last := gjson.Parse(data[len(data)-1])
	if types[len(types)-1] != "error" || last.Get("code").Str != "server_error" || !strings.Contains(last.Get("message").Str, "ended before") {
		t.Errorf("cut stream ends %v: %s", types, last.Raw)
	}
	enc = &ResponsesStreamEncoder{}
	out := streamEvents(enc, start, false)
	out = enc.Error(out, &ir.Error{Status: 529, Kind: ir.ErrOverloaded, Message: "Overloaded"})
	types, data = readEvents(t, out)
	if types[len(types)-1] != "error" || gjson.Get(data[len(data)-1], "message").Str != "Overloaded" {
		t.Errorf("error event %v %s", types, data[len(data)-1])
	}
	enc = &ResponsesStreamEncoder{}
	capped := append(start, ir.StreamEvent{Type: ir.EventMessageDelta, StopReason: ir.StopMaxTokens})
	types, data = readEvents(t, streamEvents(enc, capped, true)) // no message_stop: the stop reason was known
	last = gjson.Parse(data[len(data)-1])
	if types[len(types)-1] != "response.incomplete" || last.Get("response.incomplete_details.reason").Str != "max_output_tokens" ||
		last.Get("response.output.0.content.0.text").Str != "Hel" {
		t.Errorf("token-limited stream ends %v: %s", types, last.Raw)
	}
}

// A conversation moved from a Claude model to an OpenAI one: the
// references to items only the gateway holds become the items themselves,
// in a form OpenAI reads (no gateway ids; reasoning left out); other
// references and items stay as sent; a body without a known reference is
// returned as it came.
func TestItemsForOpenAI(t *testing.T) {
	kept := map[string]string{
		"msg_1_0": `{"id":"msg_1_0","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"Hello "},{"type":"output_text","annotations":[],"logprobs":[],"text":"Ada."}]}`,
		"rs_1_1":  `{"id":"rs_1_1","type":"reasoning","summary":[{"type":"summary_text","text":"hm"}]}`,
		"fc_1_2":  `{"id":"fc_1_2","type":"function_call","status":"completed","call_id":"toolu_9","name":"lookup","namespace":"crm","arguments":"{}"}`,
	}
	resolve := func(id string) ([]byte, bool) { v, ok := kept[id]; return []byte(v), ok }
	body := []byte(`{"model":"gpt-5","input":[{"role":"user","content":"hi"},{"type":"item_reference","id":"rs_1_1"},` +
		`{"type":"item_reference","id":"msg_1_0"},{"type":"item_reference","id":"fc_1_2"},{"type":"item_reference","id":"msg_openai"}],"store":true}`)
	out, err := ItemsForOpenAI(body, resolve)
	if err != nil {
		t.Fatal(err)
	}
	got := gjson.ParseBytes(out)
	wantPaths(t, got, map[string]string{
		"input.#":           "4",
		"input.0.content":   "hi",
		"input.1.role":      "assistant",
		"input.1.content":   "Hello Ada.",
		"input.2.type":      "function_call",
		"input.2.call_id":   "toolu_9",
		"input.2.namespace": "crm",
		"input.3.id":        "msg_openai",
		"store":             "true",
	})
	if got.Get("input.1.id").Exists() || got.Get("input.2.id").Exists() {
		t.Errorf("gateway ids went to OpenAI: %s", out)
	}
	var p responses.ResponseNewParams
	if err := json.Unmarshal(out, &p); err != nil {
		t.Errorf("openai-go does not read %s: %v", out, err)
	}
	unchanged := []byte(`{"model":"gpt-5","input":[{"type":"item_reference","id":"msg_openai"}]}`)
	if out, err := ItemsForOpenAI(unchanged, resolve); err != nil || string(out) != string(unchanged) {
		t.Errorf("no known reference: %s %v", out, err)
	}
}
