package fakeupstream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/metisgateway/metis/internal/vcr"
)

// Fixture file names in testdata/fixtures.
const (
	FixtureAnthropicStream    = "anthropic_stream_text_then_tool_use.vcr.yaml"
	FixtureAnthropicNonStream = "anthropic_nonstream_tool_use_two_turns.vcr.yaml"
	FixtureOpenAIToolsStream  = "openai_stream_parallel_tool_calls_include_usage.sse"
	FixtureOpenAIStream       = "openai_stream_gpt5nano_usage_chunk.vcr.yaml"
	FixtureOpenAINonStream    = "openai_nonstream_tool_call_reasoning_usage.vcr.yaml"
	FixtureOpenAIError400     = "openai_error_400_unsupported_max_tokens.vcr.yaml"
)

// Model ids the recordings were made with; synthesized replies fall back
// to them when the request names no model.
const (
	AnthropicFixtureModel = "claude-3-7-sonnet-20250219"
	OpenAIFixtureModel    = "gpt-5-nano-2025-08-07"
)

// hopByHop are the response headers a replay must not copy: they describe
// the recorded connection, not the response.
var hopByHop = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	"Content-Length", "Content-Encoding",
}

// FromFixture builds a reply from interaction i of a recorded fixture:
// its status, its response headers less hop-by-hop ones, Content-Length
// and Content-Encoding, and its body, split into verbatim SSE events when
// the response is a stream. It panics when the fixture cannot be loaded or
// has no interaction i, which is a bug in the test.
func FromFixture(name string, i int) Reply {
	its := vcr.MustLoad(name)
	if i < 0 || i >= len(its) {
		panic(fmt.Sprintf("fakeupstream: fixture %s has %d interactions, not %d", name, len(its), i+1))
	}
	it := its[i]
	h := it.ResponseHeader.Clone()
	for _, k := range hopByHop {
		h.Del(k)
	}
	r := Reply{Status: it.Status, Header: h}
	if strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		r.Events = it.Events()
	} else {
		r.Body = it.ResponseBody
	}
	return r
}

// Block is one content block of a synthesized Anthropic reply: text, a
// tool_use when Name is set, thinking when Signature is set, redacted
// thinking when Data is.
type Block struct {
	// Text is the text of a text block, or the thinking of a thinking
	// block.
	Text string
	// ID, Name and Input (raw JSON object) make a tool_use block. An empty
	// ID gets a fresh toolu_ id; an empty Input means {}.
	ID, Name, Input string
	// Signature makes a thinking block: Anthropic's signature of Text.
	Signature string
	// Data makes a redacted_thinking block.
	Data string
}

// TextBlock is a text content block.
func TextBlock(text string) Block { return Block{Text: text} }

// ToolUseBlock is a tool_use content block with a fresh id; input is a raw
// JSON object.
func ToolUseBlock(name, input string) Block { return Block{Name: name, Input: input} }

// ThinkingBlock is a thinking content block: its text and signature.
func ThinkingBlock(thinking, signature string) Block {
	return Block{Text: thinking, Signature: signature}
}

// RedactedThinkingBlock is a redacted_thinking content block.
func RedactedThinkingBlock(data string) Block { return Block{Data: data} }

func (b Block) isTool() bool { return b.Name != "" }

// AnthropicStream synthesizes a streamed Messages reply in the recorded
// stream's exact format: message_start with usage, per block
// content_block_start / content_block_delta… / content_block_stop (text
// deltas, or input_json_delta fragments starting with ""), a ping inside
// the first block, message_delta with cumulative usage, message_stop, and
// the recording's padding before closing braces. stopReason is e.g.
// "end_turn" or "tool_use"; model "" means the recording's model.
func AnthropicStream(model string, inputTokens int, stopReason string, blocks ...Block) Reply {
	if model == "" {
		model = AnthropicFixtureModel
	}
	if inputTokens <= 0 {
		inputTokens = 1
	}
	var ev []string
	pad := 0
	add := func(name, data string) {
		// The live API pads some data lines with spaces before the final
		// brace; mimic it so consumers parse JSON instead of comparing bytes.
		pad = (pad + 5) % 9
		if pad%3 == 0 && strings.HasSuffix(data, "}") {
			data = data[:len(data)-1] + strings.Repeat(" ", pad+1) + "}"
		}
		ev = append(ev, "event: "+name+"\ndata: "+data+"\n\n")
	}
	add("message_start", fmt.Sprintf(`{"type":"message_start","message":{"model":%s,"id":%s,"type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}}`,
		jstr(model), jstr(NewID("msg_01")), inputTokens))
	out := 0
	pinged := false
	for i, b := range blocks {
		switch {
		case b.Data != "":
			out += 20
			add("content_block_start", fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"redacted_thinking","data":%s}}`, i, jstr(b.Data)))
		case b.Signature != "":
			// As recorded: the thinking in pieces, an empty piece, then
			// the signature.
			out += len(b.Text)/4 + 1
			add("content_block_start", fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"thinking","thinking":"","signature":""}}`, i))
			for _, piece := range append(words(b.Text), "") {
				add("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"thinking_delta","thinking":%s}}`, i, jstr(piece)))
			}
			add("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"signature_delta","signature":%s}}`, i, jstr(b.Signature)))
		case b.isTool():
			id := b.ID
			if id == "" {
				id = NewID("toolu_01")
			}
			input := b.Input
			if input == "" {
				input = "{}"
			}
			out += len(b.Name) + len(input)/3 + 10
			add("content_block_start", fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"tool_use","id":%s,"name":%s,"input":{}}}`, i, jstr(id), jstr(b.Name)))
			for _, frag := range append([]string{""}, chunk(input, 12)...) {
				add("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"input_json_delta","partial_json":%s}}`, i, jstr(frag)))
			}
		default:
			out += len(b.Text)/4 + 1
			add("content_block_start", fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"text","text":""}}`, i))
			for j, piece := range words(b.Text) {
				add("content_block_delta", fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":%s}}`, i, jstr(piece)))
				if j == 0 && !pinged {
					add("ping", `{"type": "ping"}`)
					pinged = true
				}
			}
		}
		add("content_block_stop", fmt.Sprintf(`{"type":"content_block_stop","index":%d}`, i))
	}
	add("message_delta", fmt.Sprintf(`{"type":"message_delta","delta":{"stop_reason":%s,"stop_sequence":null},"usage":{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":%d}}`, jstr(stopReason), inputTokens, out))
	add("message_stop", `{"type":"message_stop"}`)
	return Reply{Status: http.StatusOK, Header: synthHeader(FixtureAnthropicStream, "Request-Id", NewID("req_011CU")), Events: ev}
}

// AnthropicTextStream is AnthropicStream with one text block and
// stop_reason end_turn.
func AnthropicTextStream(model, text string) Reply {
	return AnthropicStream(model, 12, "end_turn", TextBlock(text))
}

// AnthropicMessage synthesizes a non-streamed Messages reply in the
// recorded non-streamed format (content, stop_reason, usage with the
// cache_creation split and service_tier). model "" means the recording's.
func AnthropicMessage(model string, inputTokens int, stopReason string, blocks ...Block) Reply {
	if model == "" {
		model = AnthropicFixtureModel
	}
	if inputTokens <= 0 {
		inputTokens = 1
	}
	var content []string
	out := 0
	for _, b := range blocks {
		switch {
		case b.Data != "":
			out += 20
			content = append(content, fmt.Sprintf(`{"type":"redacted_thinking","data":%s}`, jstr(b.Data)))
		case b.Signature != "":
			out += len(b.Text)/4 + 1
			content = append(content, fmt.Sprintf(`{"type":"thinking","thinking":%s,"signature":%s}`, jstr(b.Text), jstr(b.Signature)))
		case b.isTool():
			id := b.ID
			if id == "" {
				id = NewID("toolu_01")
			}
			input := b.Input
			if input == "" {
				input = "{}"
			}
			out += len(b.Name) + len(input)/3 + 10
			content = append(content, fmt.Sprintf(`{"type":"tool_use","id":%s,"name":%s,"input":%s}`, jstr(id), jstr(b.Name), input))
		default:
			out += len(b.Text)/4 + 1
			content = append(content, fmt.Sprintf(`{"type":"text","text":%s}`, jstr(b.Text)))
		}
	}
	body := fmt.Sprintf(`{"model":%s,"id":%s,"type":"message","role":"assistant","content":[%s],"stop_reason":%s,"stop_sequence":null,"usage":{"input_tokens":%d,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":%d,"service_tier":"standard"}}`,
		jstr(model), jstr(NewID("msg_01")), strings.Join(content, ","), jstr(stopReason), inputTokens, out)
	return Reply{Status: http.StatusOK, Header: synthHeader(FixtureAnthropicNonStream, "Request-Id", NewID("req_011CU")), Body: body}
}

// AnthropicError is an Anthropic error reply, e.g. (529,
// "overloaded_error", "Overloaded").
func AnthropicError(status int, typ, message string) Reply {
	rid := NewID("req_011CU")
	body := fmt.Sprintf(`{"type":"error","error":{"type":%s,"message":%s},"request_id":%s}`, jstr(typ), jstr(message), jstr(rid))
	return Reply{Status: status, Header: http.Header{"Content-Type": {"application/json"}, "Request-Id": {rid}}, Body: body}
}

// OpenAIError is an OpenAI error reply, e.g. (429, "requests",
// "rate_limit_exceeded", "Rate limit reached").
func OpenAIError(status int, typ, code, message string) Reply {
	body := fmt.Sprintf("{\n  \"error\": {\n    \"message\": %s,\n    \"type\": %s,\n    \"param\": null,\n    \"code\": %s\n  }\n}", jstr(message), jstr(typ), jstr(code))
	return Reply{Status: status, Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {NewID("req_")}}, Body: body}
}

// OpenAITextStream synthesizes a streamed chat completion answering text,
// in the recorded gpt-5-nano chunk format (service_tier, null
// system_fingerprint, obfuscation padding, finish_reason stop). With
// includeUsage every chunk carries "usage":null and a final chunk with
// "choices":[] holds the usage, as the API does for
// stream_options.include_usage; without it neither appears.
func OpenAITextStream(model, text string, promptTokens int, includeUsage bool) Reply {
	if model == "" {
		model = OpenAIFixtureModel
	}
	id := NewID("chatcmpl-")
	created := time.Now().Unix()
	head := fmt.Sprintf(`{"id":%s,"object":"chat.completion.chunk","created":%d,"model":%s,"service_tier":"default","system_fingerprint":null,`, jstr(id), created, jstr(model))
	usage := ""
	if includeUsage {
		usage = `"usage":null,`
	}
	var ev []string
	add := func(choices string) {
		ev = append(ev, "data: "+head+`"choices":[`+choices+`],`+usage+`"obfuscation":`+jstr(obfuscation())+"}\n\n")
	}
	add(`{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}`)
	for _, piece := range words(text) {
		add(fmt.Sprintf(`{"index":0,"delta":{"content":%s},"finish_reason":null}`, jstr(piece)))
	}
	add(`{"index":0,"delta":{},"finish_reason":"stop"}`)
	if includeUsage {
		completion := len(text)/4 + 1
		ev = append(ev, "data: "+head+`"choices":[],"usage":`+openAIUsage(promptTokens, completion)+`,"obfuscation":`+jstr(obfuscation())+"}\n\n")
	}
	ev = append(ev, "data: [DONE]\n\n")
	return Reply{Status: http.StatusOK, Header: synthHeader(FixtureOpenAIStream, "X-Request-Id", NewID("req_")), Events: ev}
}

// OpenAICompletion synthesizes a non-streamed chat completion answering
// text with finish_reason stop, in the API's indented JSON with the fields
// of the recorded completion.
func OpenAICompletion(model, text string, promptTokens int) Reply {
	if model == "" {
		model = OpenAIFixtureModel
	}
	type message struct {
		Role        string   `json:"role"`
		Content     string   `json:"content"`
		Refusal     *string  `json:"refusal"`
		Annotations []string `json:"annotations"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      message `json:"message"`
		FinishReason string  `json:"finish_reason"`
	}
	completion := len(text)/4 + 1
	v := struct {
		ID                string          `json:"id"`
		Object            string          `json:"object"`
		Created           int64           `json:"created"`
		Model             string          `json:"model"`
		Choices           []choice        `json:"choices"`
		Usage             json.RawMessage `json:"usage"`
		ServiceTier       string          `json:"service_tier"`
		SystemFingerprint *string         `json:"system_fingerprint"`
	}{
		ID: NewID("chatcmpl-"), Object: "chat.completion", Created: time.Now().Unix(), Model: model,
		Choices:     []choice{{Message: message{Role: "assistant", Content: text, Annotations: []string{}}, FinishReason: "stop"}},
		Usage:       json.RawMessage(openAIUsage(promptTokens, completion)),
		ServiceTier: "default",
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return Reply{Status: http.StatusOK, Header: synthHeader(FixtureOpenAINonStream, "X-Request-Id", NewID("req_")), Body: strings.TrimRight(buf.String(), "\n")}
}

func openAIUsage(prompt, completion int) string {
	if prompt <= 0 {
		prompt = 1
	}
	return fmt.Sprintf(`{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`,
		prompt, completion, prompt+completion)
}

// synthHeader copies a fixture's response headers (so header names and
// rate-limit values are real), drops the recorded Date and gives the
// reply its own request id.
func synthHeader(fixture, idHeader, id string) http.Header {
	h := FromFixture(fixture, 0).Header
	h.Del("Date")
	h.Set(idHeader, id)
	return h
}

const idAlphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

// NewID returns prefix followed by random characters, shaped like provider
// ids (msg_01…, toolu_01…, req_011CU…, chatcmpl-…).
func NewID(prefix string) string {
	n := 24
	if prefix == "req_" {
		return prefix + fmt.Sprintf("%016x%016x", rand.Uint64(), rand.Uint64())
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = idAlphabet[rand.IntN(len(idAlphabet))]
	}
	return prefix + string(b)
}

func obfuscation() string {
	b := make([]byte, 2+rand.IntN(12))
	for i := range b {
		b[i] = idAlphabet[rand.IntN(len(idAlphabet))]
	}
	return string(b)
}

// jstr encodes s as a JSON string without HTML escaping, as the providers do.
func jstr(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(buf.String(), "\n")
}

// words splits text into streaming pieces of one or two words, each piece
// keeping its leading space, so the pieces concatenate back to text.
func words(text string) []string {
	if text == "" {
		return []string{""}
	}
	var out []string
	start, n := 0, 0
	for i := 1; i < len(text); i++ {
		if text[i] == ' ' && text[i-1] != ' ' {
			n++
			if n == 2 {
				out = append(out, text[start:i])
				start, n = i, 0
			}
		}
	}
	return append(out, text[start:])
}

// chunk splits s into pieces of at most n bytes without cutting a UTF-8
// sequence.
func chunk(s string, n int) []string {
	var out []string
	for len(s) > n {
		cut := n
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		if cut == 0 {
			cut = n
		}
		out = append(out, s[:cut])
		s = s[cut:]
	}
	if s != "" {
		out = append(out, s)
	}
	return out
}
