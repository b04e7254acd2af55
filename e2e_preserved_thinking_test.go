package metis

// Anthropic's "preserved thinking" models (Fable and Mythos 5.1+, the 5.5
// generation) check each thinking block sent back against the
// conversation before it when Claude wrote it. Accounts created from
// 2026-08-31 fail a request whose block fails the check, unless it asks
// for such blocks to be dropped; older accounts let them through. The
// gateway puts Claude's thinking back into OpenAI-shape tool loops, for
// clients that never see it and cannot keep their history as those rules
// want: refused, it asks for the drop.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/shared"
	"github.com/tidwall/gjson"
)

// preservedThinker is an Anthropic provider with preserved thinking. A
// thinking block's signature is a hash of the conversation it followed
// (system, tools and the earlier messages, cache_control aside). A block
// sent back after a different conversation fails the request with the
// provider's 400, or is dropped when the request sets
// thinking.block_binding.prefix_mismatch_behavior "drop_block" with its
// beta. A request answering tools whose loop does not start with thinking
// fails as Anthropic's does (thinking cannot be turned off). Its answers:
// thinking and a get_weather call for the first two requests of a
// conversation, then text.
type preservedThinker struct {
	// omitted answers with the thinking text empty, as these models do at
	// their default thinking.display ("omitted"): the signature alone.
	omitted bool
	// oldAccount is an account created before 2026-08-31: a request that
	// does not set thinking.block_binding.prefix_mismatch_behavior gets a
	// block failing the check through to the model (counted in allowed).
	oldAccount bool
	// unchecked is a model without preserved thinking: blocks are not
	// checked against their conversation.
	unchecked bool
	mu        sync.Mutex
	bodies    []string
	betas     []string
	dropped   int
	allowed   int
	refusals  []string
}

func (p *preservedThinker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.bodies = append(p.bodies, string(raw))
	p.betas = append(p.betas, r.Header.Get("Anthropic-Beta"))
	var req map[string]any
	if json.Unmarshal(raw, &req) != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	drop := gjson.GetBytes(raw, "thinking.block_binding.prefix_mismatch_behavior").Str == "drop_block" &&
		strings.Contains(r.Header.Get("Anthropic-Beta"), "thinking-binding-controls-2026-08-01")
	msgs, _ := req["messages"].([]any)
	droppedHere := false
	for i, m := range msgs {
		mm, _ := m.(map[string]any)
		content, _ := mm["content"].([]any)
		kept := content[:0:0]
		for j, b := range content {
			bm, _ := b.(map[string]any)
			if bm["type"] != "thinking" {
				kept = append(kept, b)
				continue
			}
			if p.unchecked || bm["signature"] == prefixSignature(req, i) {
				kept = append(kept, b)
				continue
			}
			if p.oldAccount && !gjson.GetBytes(raw, "thinking.block_binding.prefix_mismatch_behavior").Exists() {
				p.allowed++
				kept = append(kept, b)
				continue
			}
			if !drop {
				msg := fmt.Sprintf("messages.%d.content.%d: Invalid `signature` in `thinking` block. The block is bound to a different conversation.", i, j)
				p.refusals = append(p.refusals, msg)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprintf(w, `{"type":"error","error":{"type":"invalid_request_error","message":%q}}`, msg)
				return
			}
			p.dropped++
			droppedHere = true
		}
		mm["content"] = kept
	}
	if n := len(msgs); !droppedHere && n >= 2 && strings.Contains(gjson.GetBytes(raw, "messages.@reverse.0").Raw, `"tool_result"`) {
		// The loop's first assistant message: the earliest of the
		// assistant messages since the last user message without tool
		// results.
		first := -1
		for i := n - 1; i >= 0; i-- {
			c := gjson.GetBytes(raw, fmt.Sprintf("messages.%d", i))
			if c.Get("role").Str == "assistant" {
				first = i
			} else if !strings.Contains(c.Get("content").Raw, `"tool_result"`) {
				break
			}
		}
		if first >= 0 && gjson.GetBytes(raw, fmt.Sprintf("messages.%d.content.0.type", first)).Str != "thinking" {
			msg := fmt.Sprintf("messages.%d.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`.", first)
			p.refusals = append(p.refusals, msg)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"type":"error","error":{"type":"invalid_request_error","message":%q}}`, msg)
			return
		}
	}
	step := (len(msgs) - 1) / 2 // 0 for a conversation's first request
	sig := prefixSignature(req, len(msgs))
	thought := fmt.Sprintf("Step %d: the weather tool.", step)
	if p.omitted {
		thought = ""
	}
	content := fmt.Sprintf(`[{"type":"thinking","thinking":%q,"signature":%q},`+
		`{"type":"tool_use","id":"toolu_01Preserved%d","name":"get_weather","input":{"city":"Paris"}}]`, thought, sig, step)
	stop := "tool_use"
	if step >= 2 {
		content, stop = `[{"type":"text","text":"It is 18C in Paris."}]`, "end_turn"
	}
	if req["stream"] == true {
		p.stream(w, step, req["model"], content, stop)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":"msg_01Preserved%d","type":"message","role":"assistant","model":%q,"content":%s,`+
		`"stop_reason":%q,"stop_sequence":null,"usage":{"input_tokens":1000,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":50}}`,
		step, req["model"], content, stop)
}

// stream writes the answer as Anthropic's events: a thinking block's text
// in a thinking_delta (none when empty), then its signature_delta.
func (p *preservedThinker) stream(w http.ResponseWriter, step int, model any, content, stop string) {
	w.Header().Set("Content-Type", "text/event-stream")
	ev := func(typ, data string, args ...any) {
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, fmt.Sprintf(data, args...))
	}
	ev("message_start", `{"type":"message_start","message":{"id":"msg_01Preserved%d","type":"message","role":"assistant","model":%q,"content":[],`+
		`"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1000,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`, step, model)
	for i, b := range gjson.Parse(content).Array() {
		switch b.Get("type").Str {
		case "thinking":
			ev("content_block_start", `{"type":"content_block_start","index":%d,"content_block":{"type":"thinking","thinking":"","signature":""}}`, i)
			if text := b.Get("thinking").Str; text != "" {
				ev("content_block_delta", `{"type":"content_block_delta","index":%d,"delta":{"type":"thinking_delta","thinking":%q}}`, i, text)
			}
			ev("content_block_delta", `{"type":"content_block_delta","index":%d,"delta":{"type":"signature_delta","signature":%q}}`, i, b.Get("signature").Str)
		case "tool_use":
			ev("content_block_start", `{"type":"content_block_start","index":%d,"content_block":{"type":"tool_use","id":%q,"name":"get_weather","input":{}}}`, i, b.Get("id").Str)
			ev("content_block_delta", `{"type":"content_block_delta","index":%d,"delta":{"type":"input_json_delta","partial_json":%q}}`, i, b.Get("input").Raw)
		default:
			ev("content_block_start", `{"type":"content_block_start","index":%d,"content_block":{"type":"text","text":""}}`, i)
			ev("content_block_delta", `{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%q}}`, i, b.Get("text").Str)
		}
		ev("content_block_stop", `{"type":"content_block_stop","index":%d}`, i)
	}
	ev("message_delta", `{"type":"message_delta","delta":{"stop_reason":%q,"stop_sequence":null},"usage":{"output_tokens":50}}`, stop)
	ev("message_stop", `{"type":"message_stop"}`)
}

// gateway starts a gateway whose providers are p.
func (p *preservedThinker) gateway(t *testing.T) *testGateway {
	t.Helper()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return startGateway(t, gatewayConfig(tempDB(t), srv.URL, ""))
}

// chatStep sends one step of a Chat Completions tool loop with openai-go,
// streamed or not, and returns the message the SDK read; a failure ends
// the test with what the provider refused.
func (p *preservedThinker) chatStep(t *testing.T, c openai.Client, params openai.ChatCompletionNewParams, stream bool, step int) openai.ChatCompletionMessage {
	t.Helper()
	if !stream {
		r, err := c.Chat.Completions.New(context.Background(), params)
		if err != nil {
			t.Fatalf("step %d: %v (the provider refused: %q)", step+1, err, p.refusalsSoFar())
		}
		return r.Choices[0].Message
	}
	s := c.Chat.Completions.NewStreaming(context.Background(), params)
	acc := openai.ChatCompletionAccumulator{}
	for s.Next() {
		acc.AddChunk(s.Current())
	}
	if err := s.Err(); err != nil {
		t.Fatalf("step %d: %v (the provider refused: %q)", step+1, err, p.refusalsSoFar())
	}
	return acc.Choices[0].Message
}

// refusalsSoFar is a copy of the provider's refusals.
func (p *preservedThinker) refusalsSoFar() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.refusals)
}

// prefixSignature is the signature of a block written after the request's
// system, tools and its first n messages.
func prefixSignature(req map[string]any, n int) string {
	msgs, _ := req["messages"].([]any)
	prefix := map[string]any{"system": withoutCacheControl(req["system"]), "tools": withoutCacheControl(req["tools"]),
		"messages": withoutCacheControl(msgs[:n])}
	b, _ := json.Marshal(prefix) // map keys sorted: one text per conversation
	sum := sha256.Sum256(b)
	return "sig-" + hex.EncodeToString(sum[:12])
}

// withoutCacheControl is v with every cache_control member left out (a
// breakpoint moving is not a change of the conversation).
func withoutCacheControl(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if k != "cache_control" {
				out[k] = withoutCacheControl(e)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutCacheControl(e)
		}
		return out
	}
	return v
}

// A three-step Chat Completions tool loop (openai-go) on claude-opus-5-5,
// whose thinking cannot be turned off and whose thinking blocks are
// checked against the conversation before them. With a system prompt that
// stays the same, the thinking the gateway puts back passes the check at
// every step. With one that changes at each request (it holds the time,
// as many agents' do), the blocks fail it: an account that enforces the
// check refuses the second step, which the gateway sends again asking for
// such blocks to be dropped, and asks so at once from then on, so the loop
// goes on (the client used to get a 400 it could not get past); an older
// account, which lets such blocks through, is never asked, and its model
// keeps the thinking (review 20D). These models send the thinking's text
// empty by default: the signature alone goes back.
//
// claude-opus-5-5, $4 / $20 per MTok: each step 1,000 in and 50 out,
// 0.004 + 0.001 = 0.005.
func TestChatToolLoopOnPreservedThinkingModel(t *testing.T) {
	for _, tc := range []struct {
		name                                  string
		changing, omitted, stream, oldAccount bool
		// bound is, per provider request, whether it asked for drop_block
		// ("-" no, "d" yes); refused the requests the provider refused.
		bound             string
		refused, dropped  int
		allowed, attempts int // attempts of the second call
	}{
		{"system prompt unchanged", false, false, false, false, "---", 0, 0, 0, 1},
		{"system prompt changing", true, false, false, false, "--dd", 1, 3, 0, 2},
		{"system prompt changing, older account", true, false, false, true, "---", 0, 0, 3, 1},
		{"thinking text omitted", false, true, false, false, "---", 0, 0, 0, 1},
		{"thinking text omitted, streamed", false, true, true, false, "---", 0, 0, 0, 1},
		{"system prompt changing, streamed", true, false, true, false, "--dd", 1, 3, 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &preservedThinker{omitted: tc.omitted, oldAccount: tc.oldAccount}
			g := up.gateway(t)
			_, tok := e2eKey(g, "preserved")
			c := xOpenAI(g, tok)
			system := func(step int) string {
				if tc.changing {
					return fmt.Sprintf("You are a weather agent. Now: 2026-11-28T16:%02d:00Z.", 40+step)
				}
				return "You are a weather agent."
			}
			history := []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Weather in Paris?")}
			var answer string
			for step := 0; step < 3; step++ {
				params := openai.ChatCompletionNewParams{
					Model:           "anthropic:claude-opus-5-5",
					Messages:        append([]openai.ChatCompletionMessageParamUnion{openai.SystemMessage(system(step))}, history...),
					Tools:           []openai.ChatCompletionToolUnionParam{xWeatherFn},
					ReasoningEffort: shared.ReasoningEffortLow,
				}
				msg := up.chatStep(t, c, params, tc.stream, step)
				if len(msg.ToolCalls) == 0 {
					answer = msg.Content
					break
				}
				history = append(history, msg.ToParam(), openai.ToolMessage("18C", msg.ToolCalls[0].ID))
			}
			if answer != "It is 18C in Paris." {
				t.Fatalf("the loop ended with %q", answer)
			}
			up.mu.Lock()
			defer up.mu.Unlock()
			var bound strings.Builder
			for i, body := range up.bodies {
				switch mode := gjson.Get(body, "thinking.block_binding.prefix_mismatch_behavior").Str; mode {
				case "drop_block":
					bound.WriteByte('d')
				case "":
					bound.WriteByte('-')
				default:
					t.Errorf("request %d: prefix_mismatch_behavior %q", i+1, mode)
				}
				// Every request carrying thinking back goes with the beta
				// (it changes nothing the model gets; the answer reports
				// the blocks dropped or let through); the first carries none.
				if beta := strings.Contains(up.betas[i], "thinking-binding-controls-2026-08-01"); beta != (i > 0) {
					t.Errorf("request %d: anthropic-beta %q", i+1, up.betas[i])
				}
			}
			if bound.String() != tc.bound || len(up.refusals) != tc.refused || up.dropped != tc.dropped || up.allowed != tc.allowed {
				t.Errorf("requests %q (want %q), refused %d (want %d), blocks dropped %d (want %d), let through %d (want %d)",
					bound.String(), tc.bound, len(up.refusals), tc.refused, up.dropped, tc.dropped, up.allowed, tc.allowed)
			}
			for i, call := range e2eCalls(g, 3) {
				want := 1
				if i == 1 {
					want = tc.attempts
				}
				if cost := e2eCost(t, call); !e2eNear(cost, 0.005) || call["status"] != float64(200) || call["attempts"] != float64(want) {
					t.Errorf("call %d: %v, want 200 at $0.005 in %d attempts", i+1, call, want)
				}
			}
		})
	}
}

// A client that appends an instruction mid-loop (a developer message after
// a tool result) and keeps it where it put it: to a model that takes
// mid-conversation system messages it goes as one, where the client put it,
// so the conversation before it (the provider's cached prefix, the
// thinking blocks' prefix) is the same at every step and no thinking is
// dropped (review 20D: it was moved into the top-level system, which
// changed every block's prefix). An older model gets it in the top-level
// system, as before.
func TestSystemMessageAppendedMidLoopStaysInPlace(t *testing.T) {
	for _, tc := range []struct {
		name, model        string
		inPlace, preserved bool
	}{
		{"opus-5-5", "claude-opus-5-5", true, true},
		{"opus-5-5 streamed", "claude-opus-5-5", true, true},
		{"opus-4-8", "claude-opus-4-8", true, false},
		{"opus-4-7", "claude-opus-4-7", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &preservedThinker{unchecked: !tc.preserved}
			g := up.gateway(t)
			_, tok := e2eKey(g, "mid-system")
			c := xOpenAI(g, tok)
			history := []openai.ChatCompletionMessageParamUnion{
				openai.SystemMessage("You are a weather agent."),
				openai.UserMessage("Weather in Paris?"),
			}
			var answer string
			for step := 0; step < 3; step++ {
				params := openai.ChatCompletionNewParams{
					Model:           "anthropic:" + tc.model,
					Messages:        history,
					Tools:           []openai.ChatCompletionToolUnionParam{xWeatherFn},
					ReasoningEffort: shared.ReasoningEffortLow,
				}
				msg := up.chatStep(t, c, params, strings.HasSuffix(tc.name, "streamed"), step)
				if len(msg.ToolCalls) == 0 {
					answer = msg.Content
					break
				}
				history = append(history, msg.ToParam(), openai.ToolMessage("18C", msg.ToolCalls[0].ID))
				if step == 0 {
					history = append(history, openai.DeveloperMessage("The user reads Celsius only."))
				}
			}
			if answer != "It is 18C in Paris." {
				t.Fatalf("the loop ended with %q", answer)
			}
			up.mu.Lock()
			defer up.mu.Unlock()
			if len(up.bodies) != 3 {
				t.Fatalf("the provider got %d requests, want 3", len(up.bodies))
			}
			for i, body := range up.bodies[1:] {
				system := gjson.Get(body, "system").Raw
				placed := gjson.Get(body, `messages.#(role=="system").content.0.text`).Str
				if tc.inPlace && (system != gjson.Get(up.bodies[0], "system").Raw || placed != "The user reads Celsius only." ||
					gjson.Get(body, "messages.3.role").Str != "system") {
					t.Errorf("request %d: top-level system %s, the instruction in messages %q: want it as messages[3], the top level unchanged",
						i+2, system, placed)
				}
				if !tc.inPlace && (placed != "" || !strings.Contains(system, "The user reads Celsius only.")) {
					t.Errorf("request %d: top-level system %s, messages %s: an older model takes no system message in messages",
						i+2, system, gjson.Get(body, "messages").Raw)
				}
			}
			if len(up.refusals) != 0 || up.dropped != 0 {
				t.Errorf("the provider refused %q and dropped %d thinking blocks; want none", up.refusals, up.dropped)
			}
		})
	}
}

// A developer message a client adds between turns, right before the next
// user message (Codex CLI's permissions or instructions update): to a
// model that takes mid-conversation system messages it goes as one right
// after that user message, which Anthropic's placement rule allows, and
// the start of the prompt stays the same (confirmation 20L2: it was
// hoisted into the top-level system, so the provider's cache was
// rewritten and, on preserved-thinking models, every thinking block Codex
// sent back was dropped).
func TestDeveloperMessageBeforeAUserTurnKeepsThePrefix(t *testing.T) {
	up := &preservedThinker{}
	g := up.gateway(t)
	_, tok := e2eKey(g, "dev-before-user")
	c := xOpenAI(g, tok)
	history := []openai.ChatCompletionMessageParamUnion{
		openai.SystemMessage("You are a weather agent."),
		openai.UserMessage("Weather in Paris?"),
	}
	for step := 0; step < 3; step++ {
		msg := up.chatStep(t, c, openai.ChatCompletionNewParams{Model: "anthropic:claude-opus-5-5", Messages: history,
			Tools: []openai.ChatCompletionToolUnionParam{xWeatherFn}, ReasoningEffort: shared.ReasoningEffortLow}, false, step)
		history = append(history, msg.ToParam())
		if len(msg.ToolCalls) == 0 {
			break
		}
		history = append(history, openai.ToolMessage("18C", msg.ToolCalls[0].ID))
	}
	history = append(history, openai.DeveloperMessage("The user reads Celsius only."), openai.UserMessage("And in Lyon?"))
	up.chatStep(t, c, openai.ChatCompletionNewParams{Model: "anthropic:claude-opus-5-5", Messages: history,
		Tools: []openai.ChatCompletionToolUnionParam{xWeatherFn}, ReasoningEffort: shared.ReasoningEffortLow}, false, 3)
	up.mu.Lock()
	defer up.mu.Unlock()
	first, last := up.bodies[0], up.bodies[len(up.bodies)-1]
	if sys := gjson.Get(last, "system").Raw; sys != gjson.Get(first, "system").Raw || !strings.Contains(gjson.Get(last, "messages").Raw, "The user reads Celsius only.") {
		t.Errorf("the new turn went with top-level system %s (the conversation began with %s): the developer message was hoisted, "+
			"changing the prompt's start; want it in messages (a role \"system\" message right after the user turn)", sys, gjson.Get(first, "system").Raw)
	}
}
