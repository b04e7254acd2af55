//go:build cgo

package metis

// Review 26V (coverage-guided): translations to OpenAI of an Anthropic
// request's thinking, search results and strict tools, and of an OpenAI
// client's least reasoning effort to Claude.

import (
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// Review 26V finding: adapters/anthropic/request.go DecodeRequestParsed
// reads thinking {"type":"disabled"} only when an earlier member
// (output_config.effort) had already made r.Thinking: the same request
// with its members in the other order reached an OpenAI reasoning model
// with a different reasoning_effort. Either order now sends the effort
// asked for (review 26R: not the model's default, which may be more).
func TestThinkingDisabledWhereverItSitsInTheBody(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-thinking-order")
	bodies := []string{
		`{"model":"nano","max_tokens":64,"output_config":{"effort":"high"},"thinking":{"type":"disabled"},"messages":[{"role":"user","content":"hi"}]}`,
		`{"model":"nano","max_tokens":64,"thinking":{"type":"disabled"},"output_config":{"effort":"high"},"messages":[{"role":"user","content":"hi"}]}`,
	}
	var got [2]any
	for i, b := range bodies {
		up.Reset()
		up.Enqueue("/v1/chat/completions", fakeupstream.OpenAICompletion("gpt-5-nano", "Hi", 10))
		resp := g.post("/v1/messages", tok, b, e2eAnthropicHdr...)
		if body := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		reqs := up.RequestsTo("/v1/chat/completions")
		if len(reqs) != 1 {
			t.Fatalf("request %d: upstream saw %d requests", i, len(reqs))
		}
		got[i] = reqs[0].JSON()["reasoning_effort"]
		t.Logf("members in order %d: upstream reasoning_effort = %#v", i, got[i])
	}
	if got[0] != "high" || got[1] != "high" {
		t.Errorf("thinking disabled + effort high: reasoning_effort %#v when output_config comes first, %#v when thinking comes first; "+
			"want the effort asked for, whatever the members' order", got[0], got[1])
	}
}

// Review 26V finding: an Anthropic search_result block, or a document of
// source type content, made of several text blocks reaches an OpenAI
// model with the blocks glued together ("…France.It has…"), and a
// search_result's source is dropped.

// adapters/anthropic/request.go decodeBlock and decodeMedia: a
// search_result's text blocks, and a content document's, reach an OpenAI
// model joined with nothing between them: "…capital.It has…".
func TestSearchResultPassagesStayApart(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-multiblock")
	cases := []struct{ name, block string }{
		{"search_result", `{"type":"search_result","source":"https://example.com/paris","title":"Paris facts",` +
			`"content":[{"type":"text","text":"Paris is the capital of France."},{"type":"text","text":"It has 2.1 million inhabitants."}]}`},
		{"document of content", `{"type":"document","title":"Paris facts","source":{"type":"content",` +
			`"content":[{"type":"text","text":"Paris is the capital of France."},{"type":"text","text":"It has 2.1 million inhabitants."}]}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := e2eIn(g, t)
			up.Reset()
			resp := g.post("/v1/messages", tok, `{"model":"nano","max_tokens":64,"messages":[{"role":"user","content":[`+tc.block+
				`,{"type":"text","text":"How many people live there?"}]}]}`, e2eAnthropicHdr...)
			if body := e2eRead(t, resp); resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			sent := up.RequestsTo("/v1/chat/completions")[0].Body
			t.Logf("sent upstream: %s", sent)
			if strings.Contains(sent, "France.It has") {
				t.Errorf("the two text blocks were glued into one sentence (\"France.It has\"): the model reads them as one run of text")
			}
			if !strings.Contains(sent, "It has 2.1 million inhabitants.") {
				t.Errorf("second block lost")
			}
		})
	}
}

// Review 26V finding: an Anthropic-shape tool with strict: true reaches an
// OpenAI model as a strict function whatever its schema, although OpenAI's
// strict mode refuses a schema with an optional property (every property
// must be in required). The same schema as output_config.format is sent
// strict only when it meets OpenAI's rules (anthropic.strictSchema).

func TestStrictToolGoesStrictOnlyWithAStrictSchema(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-strict")
	schema := `{"type":"object","properties":{"city":{"type":"string"},"units":{"type":"string"}},"required":["city"],"additionalProperties":false}`
	up.Enqueue("/v1/chat/completions", fakeupstream.OpenAICompletion("gpt-5-nano", "Hi", 10))
	resp := g.post("/v1/messages", tok, `{"model":"nano","max_tokens":64,"tools":[{"name":"get_weather","description":"Weather","strict":true,"input_schema":`+schema+`}],`+
		`"messages":[{"role":"user","content":"Weather in Paris?"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	sent := up.RequestsTo("/v1/chat/completions")[0]
	fn := e2ePath(sent.JSON(), "tools")
	t.Logf("tools sent upstream: %v", fn)
	tools, _ := fn.([]any)
	if len(tools) != 1 {
		t.Fatalf("tools sent: %v", fn)
	}
	if e2ePath(tools[0], "function", "strict") == true {
		t.Errorf("strict: true sent with a schema whose property \"units\" is optional: OpenAI's strict mode refuses it " +
			"(all properties must be required), so the call fails with OpenAI's 400 where Anthropic would have run it")
	}
}

// Review 26V probe: an OpenAI client's reasoning_effort on its way to a
// Claude model whose thinking cannot be turned off (Opus 4.7 on, the 5
// family): the least effort must not ask for more thinking than "low".

func TestLeastEffortOnAlwaysThinkingClaudeIsLow(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "r26v-effort")
	sent := map[string]map[string]any{}
	for _, model := range []string{"claude-opus-4-7", "claude-sonnet-5"} {
		for _, effort := range []string{"low", "minimal", "none"} {
			up.Reset()
			up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(model, 10, "end_turn", fakeupstream.TextBlock("hi")))
			resp := g.post("/v1/chat/completions", tok, `{"model":"`+model+`","reasoning_effort":"`+effort+`","messages":[{"role":"user","content":"hi"}]}`)
			if body := e2eRead(t, resp); resp.StatusCode != 200 {
				t.Fatalf("%s %s: %d %s", model, effort, resp.StatusCode, body)
			}
			m := up.RequestsTo("/v1/messages")[0].JSON()
			sent[model+"/"+effort] = m
			t.Logf("%s reasoning_effort %s → thinking %v output_config %v", model, effort, m["thinking"], m["output_config"])
		}
		for _, effort := range []string{"low", "minimal", "none"} {
			m := sent[model+"/"+effort]
			if e2ePath(m, "output_config", "effort") != "low" || e2ePath(m, "thinking", "type") != "adaptive" {
				t.Errorf("%s: reasoning_effort %s sent thinking %v, output_config %v; want adaptive thinking at effort low "+
					"(sent without, the model thinks at its default, high)", model, effort, m["thinking"], m["output_config"])
			}
		}
	}
}
