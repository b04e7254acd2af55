package metis

// The items of translated Responses API answers, which clients refer back
// to by id (the Vercel AI SDK's default openai(model)): budgeted as sent,
// carried to an OpenAI model as themselves, not crowded out by answers
// asked with store false (found by confirmation 18L2).

import (
	"net/http"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// aiSDKBudgetedLoop is the AI SDK's default openai('haiku') (the Responses
// API, store left at its default, true) through a two-step tool loop with
// an explicit maxOutputTokens, as the README's "Budgets" advises.
const aiSDKBudgetedLoop = `
const { createRequire } = require('node:module');
const req = createRequire(process.env.TOOLS_PACKAGE);
const { generateText, tool, stepCountIs } = req('ai');
const { createOpenAI } = req('@ai-sdk/openai');
const { z } = req('zod');
const openai = createOpenAI({ baseURL: process.env.METIS_URL + '/v1', apiKey: process.env.METIS_KEY });
(async () => {
  const r = await generateText({
    model: openai('haiku'), maxRetries: 0, maxOutputTokens: 1000, prompt: 'Weather in Paris?', stopWhen: stepCountIs(3),
    tools: { get_weather: tool({ description: 'The weather in a city.', inputSchema: z.object({ city: z.string() }),
      execute: async ({ city }) => '18C in ' + city }) },
  });
  console.log(JSON.stringify({ text: r.text, steps: r.steps.length }));
})().catch((e) => { console.error(e.statusCode, e.message); process.exit(1); });
`

// A step that refers back to the gateway's own earlier answer (an
// item_reference, which the AI SDK's default openai(model) sends from its
// second step on) is reserved on what Claude is sent, the referenced items
// included, not as a stored conversation as long as Claude's whole context
// window.
//
// claude-haiku-4-5: $1 in, $1.25 / $2 cache write (5 min / 1 h), $5 out
// per MTok; key capped at $0.30 a day. Step 1's worst case: ~420 bytes /
// 2 + 600 tool tokens ≈ 810 tokens × $2/MTok + 1,000 out × $5/MTok ≈
// $0.0066: it goes through and costs 400 × $1 + 26 × $5 per MTok =
// $0.00053. Step 2's worst case, with the referenced text ("Let me
// check.") counted, is under a cent; as a whole window it would be
// 200,000 × $2/MTok + $0.005 = $0.405, more than the whole limit.
func TestResponseItemsBudgetedAsSent(t *testing.T) {
	g, up := e2eSetup(t, "")
	k, tok := e2eKey(g, "aisdk-capped")
	capKey(t, g, k, 0.30)
	up.Enqueue("/v1/messages",
		fakeupstream.AnthropicMessage(haikuModel, 400, "tool_use", fakeupstream.TextBlock("Let me check."), fakeupstream.ToolUseBlock("get_weather", `{"city":"Paris"}`)),
		fakeupstream.AnthropicMessage(haikuModel, 480, "end_turn", fakeupstream.TextBlock("It is 18C in Paris.")))
	tap := e2eNewTap(t, g.URL)
	out := runNodeScript(t, "@ai-sdk/openai", aiSDKBudgetedLoop, "METIS_URL="+tap.URL, "METIS_KEY="+tok)
	if gjson.GetBytes(out, "steps").Int() != 2 || len(g.refusals()) != 0 {
		t.Errorf("the AI SDK's tool loop on a key capped at $0.30: %s; refusals %v", out, g.refusals())
	}
	if client := tap.requests(); len(client) != 2 || !strings.Contains(client[1].Body, `"item_reference"`) {
		t.Errorf("the second step referred to no earlier item: %v", client)
	}
}

// A conversation the AI SDK carries from a Claude model to an OpenAI model
// (a model picker in a chat app) sends the gateway's own item ids as
// item_references: OpenAI knows none of them (404 "Item with id … not
// found"), so the gateway, which holds the items, sends them as
// themselves.
func TestResponseItemsToOpenAIModel(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "switcher")
	id := adaTurn(t, g, tok)
	body := `{"model":"nano","input":[{"role":"user","content":[{"type":"input_text","text":"My name is Ada."}]},` +
		`{"type":"item_reference","id":"` + id + `"},{"role":"user","content":[{"type":"input_text","text":"What is my name?"}]}]}`
	resp := g.post("/v1/responses", tok, body)
	b := e2eRead(t, resp)
	sent := up.RequestsTo("/v1/responses")
	if len(sent) != 1 {
		t.Fatalf("turn 2 on nano: %d %s; %d requests reached OpenAI", resp.StatusCode, b, len(sent))
	}
	in := gjson.Get(sent[0].Body, "input").Raw
	if strings.Contains(in, id) || !strings.Contains(in, fakeupstream.DefaultText) {
		t.Errorf("turn 2 reached OpenAI with input %s: item %s is one only the gateway holds (OpenAI answers 404 \"Item with id … not found\"); want the item itself (%q)",
			in, id, fakeupstream.DefaultText)
	}
}

// The items the gateway keeps for item_references are bounded by 32 MB
// across all keys; the answers of clients that send store: false (Codex
// CLI on every call) are not kept, as no client will refer to them, so
// they cannot crowd out another key's items.
func TestResponseItemsNotKeptForStoreFalse(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tokA := e2eKey(g, "aisdk")
	_, tokB := e2eKey(g, "codex")
	id := adaTurn(t, g, tokA)
	big := strings.Repeat("All work and no play. ", 1<<20/22) // about 1 MB of answer
	for i := 0; i < 34; i++ {
		up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage(haikuModel, 100, "end_turn", fakeupstream.TextBlock(big)))
		resp := g.post("/v1/responses", tokB, `{"model":"haiku","store":false,"input":"Write a long story.","max_output_tokens":60000}`)
		if b := e2eRead(t, resp); resp.StatusCode != http.StatusOK {
			t.Fatalf("key B's call %d: %d %.300s", i, resp.StatusCode, b)
		}
	}
	body := `{"model":"haiku","max_output_tokens":100,"input":[{"role":"user","content":[{"type":"input_text","text":"My name is Ada."}]},` +
		`{"type":"item_reference","id":"` + id + `"},{"role":"user","content":[{"type":"input_text","text":"What is my name?"}]}]}`
	resp := g.post("/v1/responses", tokA, body)
	if b := e2eRead(t, resp); resp.StatusCode != http.StatusOK {
		t.Errorf("key A's turn 2, seconds after its turn 1 and after key B's 34 store:false answers (~1 MB each): %d %.400s", resp.StatusCode, b)
	}
}

// adaTurn sends a first turn to Claude with the key's token and returns
// the id of the answer's message item.
func adaTurn(t *testing.T, g *testGateway, tok string) string {
	t.Helper()
	resp := g.post("/v1/responses", tok, `{"model":"haiku","input":"My name is Ada.","max_output_tokens":100}`)
	b := e2eRead(t, resp)
	id := gjson.Get(b, "output.0.id").Str
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("turn 1 on haiku: %d %s", resp.StatusCode, b)
	}
	return id
}
