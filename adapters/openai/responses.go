package openai

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/metisgateway/metis/ir"
)

// ResponsesToChat rewrites a Responses API request as the Chat Completions
// request it stands for: instructions and input items become messages (a
// model turn's text and tool calls one assistant message, their outputs
// tool messages), flat tools and tool choices take Chat Completions'
// nesting, max_output_tokens becomes max_completion_tokens,
// reasoning.effort reasoning_effort, text.format response_format and
// text.verbosity verbosity; where the client also sent the Chat
// Completions member, the Responses one wins. Members Chat Completions has
// no place for are dropped (include, truncation, max_tool_calls, reasoning
// items and summaries; adapters/LOSSY.md #30); ones that name state the
// gateway cannot read (previous_response_id, a conversation, a stored
// prompt, item references) or tools it cannot run (hosted tools) are
// refused. Other members go as sent.
func ResponsesToChat(body []byte) ([]byte, error) {
	out, _, err := ResponsesToChatWith(body, ResponsesOptions{})
	return out, err
}

// ResponsesOptions say how ResponsesToChatWith reads what Chat Completions
// cannot say.
type ResponsesOptions struct {
	// Namespaces offers the functions (and custom tools) of a namespace
	// tool flat, each named namespace + NamespaceSep + name, and names
	// past calls of them (a call item's namespace member) the same way.
	// OpenAI would refuse such a request (its tool names cannot hold a
	// dot): it is for translation on to a Claude model, where the
	// encoder renames the tools and ResponsesAnswer.Namespaces splits the
	// names again.
	Namespaces bool
	// DropHosted drops hosted tools (web_search and the like: the
	// provider runs them, and the target provider has none), a
	// tool_choice forcing one (auto instead) and past hosted tool call
	// items, where they are otherwise refused.
	DropHosted bool
	// Resolve, when set, reads the item an item_reference names (one of
	// the gateway's own earlier answers), which then stands in its place;
	// a reference it does not know is refused, as every one is without it.
	Resolve func(id string) ([]byte, bool)
	// Target names what the request is translated for in refusals
	// ("cannot be translated for …"); empty is "Chat Completions".
	Target string
	// Thinking carries Claude's thinking blocks, read from reasoning
	// items whose encrypted_content the gateway wrote
	// (ClaudeThinkingPrefix), as the non-standard thinking_blocks member
	// of the assistant message they precede (LiteLLM's convention, which
	// DecodeRequest reads). Without it every reasoning item is dropped.
	Thinking bool
}

// target is what refusals name as the translation's target.
func (o ResponsesOptions) target() string {
	if o.Target == "" {
		return "Chat Completions"
	}
	return o.Target
}

// NamespaceSep joins a namespace and a tool name in a flat tool name
// (ResponsesOptions.Namespaces): OpenAI's tool names cannot hold it.
const NamespaceSep = "."

// ResponsesToChatWith is ResponsesToChat read by o. It also returns the
// names of the namespaces it offered flat.
func ResponsesToChatWith(body []byte, o ResponsesOptions) (out []byte, namespaces []string, err error) {
	root := gjson.ParseBytes(body)
	b := chatBuilder{o: o}
	if ins := root.Get("instructions"); ins.Exists() && ins.Type != gjson.Null {
		if ins.Type != gjson.String {
			return nil, nil, ir.Invalid("instructions", "instructions must be a string")
		}
		b.msgs = append(b.msgs, &chatMessage{role: "system", content: ins.Raw})
	}
	switch input := root.Get("input"); {
	case input.Type == gjson.String:
		b.msgs = append(b.msgs, &chatMessage{role: "user", content: input.Raw})
	case input.IsArray():
		for i, item := range input.Array() {
			if err := b.item(i, item); err != nil {
				return nil, nil, err
			}
		}
	default:
		return nil, nil, ir.Invalid("input", "input must be a string or an array of items")
	}
	b.settle()
	b.flush()

	out = make([]byte, 0, len(body)+256)
	out = append(out, '{')
	seen := map[string]bool{}
	add := func(key string, raw []byte) {
		if seen[key] {
			return
		}
		seen[key] = true
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = appendJSONString(out, key)
		out = append(out, ':')
		out = append(out, raw...)
	}
	// Two passes: the members converted first, so that a Chat Completions
	// member the client also sent (max_completion_tokens beside
	// max_output_tokens) gives way rather than go twice.
	cv := memberConverter{o: o, add: add}
	for _, t := range root.Get("tools").Array() {
		cv.hasTools = cv.hasTools || !o.dropped(t.Get("type").Str)
	}
	for pass := range 2 {
		root.ForEach(func(k, v gjson.Result) bool {
			conv := converted[k.Str]
			if conv != (pass == 0) {
				return true
			}
			err = cv.member(k.Str, v)
			return err == nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	msgs, err := b.json()
	if err != nil {
		return nil, nil, err
	}
	add("messages", msgs)
	return append(out, '}'), cv.namespaces, nil
}

// dropped reports whether a tool of type typ is dropped (a hosted tool,
// with DropHosted).
func (o ResponsesOptions) dropped(typ string) bool {
	return o.DropHosted && hostedTool(typ)
}

// hostedTool reports whether typ is one of the tools OpenAI runs itself:
// web search, file search, the code interpreter, image generation, remote
// MCP servers. Tools the client runs (apply_patch, local_shell, shell,
// computer use) are not: dropping one would leave the model without it.
func hostedTool(typ string) bool {
	switch typ {
	case "file_search", "code_interpreter", "image_generation", "mcp":
		return true
	}
	return strings.HasPrefix(typ, "web_search")
}

// converted are the Responses members memberConverter.member does not
// pass on as they are.
var converted = map[string]bool{
	"input": true, "instructions": true, "max_output_tokens": true, "reasoning": true, "text": true,
	"tools": true, "tool_choice": true, "top_logprobs": true, "previous_response_id": true,
	"conversation": true, "prompt": true, "background": true, "include": true, "truncation": true,
	"max_tool_calls": true, "context_management": true, "access_programs": true, "image": true,
}

// memberConverter adds the Chat Completions form of top-level Responses
// members through add.
type memberConverter struct {
	o          ResponsesOptions
	add        func(string, []byte)
	hasTools   bool     // the request has tools that are not dropped
	namespaces []string // the namespace tools offered flat
}

// member adds the Chat Completions form of one top-level member.
func (cv *memberConverter) member(name string, v gjson.Result) error {
	add, hasTools := cv.add, cv.hasTools
	switch name {
	case "input", "instructions":
	case "max_output_tokens":
		add("max_completion_tokens", []byte(v.Raw))
	case "reasoning":
		if e := v.Get("effort"); e.Exists() && e.Type != gjson.Null {
			add("reasoning_effort", []byte(e.Raw))
		}
	case "text":
		if f := v.Get("format"); f.Exists() && f.Type != gjson.Null {
			rf, err := responseFormat(f, cv.o)
			if err != nil {
				return err
			}
			if rf != nil {
				add("response_format", rf)
			}
		}
		if vb := v.Get("verbosity"); vb.Exists() && vb.Type != gjson.Null {
			add("verbosity", []byte(vb.Raw))
		}
	case "tools":
		if !hasTools {
			return nil // [] or null: Chat Completions wants tools left out
		}
		tools, namespaces, err := chatTools(v, cv.o)
		if err != nil {
			return err
		}
		cv.namespaces = namespaces
		add("tools", tools)
	case "tool_choice":
		if !hasTools {
			return nil // Chat Completions refuses a tool_choice without tools
		}
		tc, err := chatToolChoice(v, cv.o)
		if err != nil {
			return err
		}
		add("tool_choice", tc)
	case "top_logprobs":
		if v.Type != gjson.Null {
			add("logprobs", []byte("true"))
			add("top_logprobs", []byte(v.Raw))
		}
	case "previous_response_id", "conversation", "prompt":
		if v.Type != gjson.Null && v.Raw != `""` {
			return ir.Invalid(name, "%s refers to a conversation or prompt stored by OpenAI's Responses API, which the gateway cannot read when it translates the request for %s; send the whole conversation as input", name, cv.o.target())
		}
	case "background":
		if v.Type == gjson.True {
			return ir.Invalid("background", "background responses are a Responses API feature the gateway does not serve")
		}
	case "include", "truncation", "max_tool_calls", "context_management", "access_programs", "image":
		// Responses API members Chat Completions has no place for (and
		// would refuse).
	default:
		add(name, []byte(v.Raw))
	}
	return nil
}

// chatMessage is one Chat Completions message being built: content is a
// JSON value (a string or an array of parts), empty for none.
type chatMessage struct {
	role       string
	content    string
	parts      []json.RawMessage // content parts, when content is built from them
	toolCalls  []json.RawMessage
	toolCallID string
	thinking   []ThinkingBlock // Claude's thinking blocks (ResponsesOptions.Thinking)
}

// chatBuilder turns Responses input items into Chat Completions messages.
type chatBuilder struct {
	o    ResponsesOptions
	msgs []*chatMessage
	// held are the image and file parts of tool outputs: a Chat Completions
	// tool message holds text only, so they follow the run of tool
	// messages as a user message (flush).
	held []json.RawMessage
	// thinking are the blocks of reasoning items read since the last
	// message: they go with the model's turn that follows them.
	thinking []ThinkingBlock
	// deferred says thinking came after a call of the last assistant
	// message and before its text: it goes before the message's next
	// call, or, if none follows, at its head (settle).
	deferred bool
}

// flush adds the held parts of tool outputs as a user message.
func (b *chatBuilder) flush() {
	if len(b.held) > 0 {
		b.msgs = append(b.msgs, &chatMessage{role: "user", parts: b.held})
		b.held = nil
	}
}

// assistant is the assistant message a tool call joins: the last message
// when it is the assistant's, else a new one without content.
func (b *chatBuilder) assistant() *chatMessage {
	if n := len(b.msgs); n > 0 && b.msgs[n-1].role == "assistant" {
		return b.msgs[n-1]
	}
	m := &chatMessage{role: "assistant"}
	b.msgs = append(b.msgs, m)
	return m
}

// takeThinking gives m the thinking blocks read before it, which came
// right before its tool call before when that call follows others of the
// turn's parts ("": they lead the turn).
func (b *chatBuilder) takeThinking(m *chatMessage, before string) {
	for _, t := range b.thinking {
		t.Before = before
		m.thinking = append(m.thinking, t)
	}
	b.thinking, b.deferred = nil, false
}

// settle ends the model's turn: thinking deferred to a call that never
// came leads the last assistant message; other thinking no answer
// followed is dropped.
func (b *chatBuilder) settle() {
	if n := len(b.msgs); b.deferred && n > 0 && b.msgs[n-1].role == "assistant" {
		b.takeThinking(b.msgs[n-1], "")
	}
	b.thinking, b.deferred = nil, false
}

// item adds input item i to the messages.
func (b *chatBuilder) item(i int, item gjson.Result) error {
	typ := item.Get("type").Str
	if typ == "" && item.Get("role").Exists() {
		typ = "message"
	}
	param := fmt.Sprintf("input[%d]", i)
	if typ != "function_call_output" && typ != "custom_tool_call_output" {
		b.flush()
	}
	switch typ {
	case "message":
		role := item.Get("role").Str
		switch role {
		case "user", "assistant", "system", "developer":
		default:
			return ir.Invalid(param+".role", "unknown role %q", role)
		}
		m := &chatMessage{role: role}
		if err := m.setContent(param+".content", item.Get("content"), b.o.target()); err != nil {
			return err
		}
		if role != "assistant" {
			b.settle()
		}
		if n := len(b.msgs); role == "assistant" && n > 0 && b.msgs[n-1].role == "assistant" {
			// One turn of the model's: text before, between or after its
			// tool calls joins their message, which the tool messages
			// must follow at once.
			last := b.msgs[n-1]
			last.join(m)
			if len(last.toolCalls) > 0 && len(b.thinking) > 0 {
				b.deferred = true // written after a call: before the next
			} else {
				b.takeThinking(last, "")
			}
			return nil
		}
		if role == "assistant" {
			b.takeThinking(m, "")
		}
		b.msgs = append(b.msgs, m)
	case "function_call":
		return b.toolCall(param, "function", map[string]string{"name": b.o.toolName(item), "arguments": item.Get("arguments").Str}, item)
	case "custom_tool_call":
		return b.toolCall(param, "custom", map[string]string{"name": b.o.toolName(item), "input": item.Get("input").Str}, item)
	case "function_call_output", "custom_tool_call_output":
		b.settle()
		m := &chatMessage{role: "tool", toolCallID: item.Get("call_id").Str}
		if err := m.setContent(param+".output", item.Get("output"), b.o.target()); err != nil {
			return err
		}
		if m.parts != nil {
			text := m.parts[:0:0]
			for _, p := range m.parts {
				if gjson.GetBytes(p, "type").Str == "text" {
					text = append(text, p)
				} else {
					b.held = append(b.held, p)
				}
			}
			m.parts = text
			if len(text) == 0 {
				m.parts, m.content = nil, `""`
			}
		}
		b.msgs = append(b.msgs, m)
	case "reasoning":
		// The model's earlier reasoning: OpenAI's is encrypted for the
		// Responses API alone, and Chat Completions has no place for it;
		// Claude's, which the gateway wrote, goes with the turn it led to.
		if b.o.Thinking {
			if blocks, ok := decodeThinking(item.Get("encrypted_content").Str); ok {
				b.thinking = append(b.thinking, blocks...)
			}
		}
	case "web_search_call", "file_search_call", "image_generation_call", "code_interpreter_call",
		"mcp_list_tools", "mcp_call", "mcp_approval_request", "mcp_approval_response":
		if !b.o.DropHosted {
			return ir.Invalid(param+".type", "input item type %q is a hosted tool's, which Chat Completions has not", typ)
		}
		// What the provider's hosted tool did in an earlier turn: the
		// model's text after it says what it found.
	case "item_reference":
		id := item.Get("id").Str
		if b.o.Resolve == nil {
			return ir.Invalid(param, "item references name items stored by OpenAI's Responses API, which the gateway cannot read; send the items themselves")
		}
		if raw, ok := b.o.Resolve(id); ok {
			if r := gjson.ParseBytes(raw); r.Get("type").Str != "item_reference" {
				return b.item(i, r)
			}
		}
		return ir.Invalid(param, "item reference %q names no item the gateway keeps: it keeps the items of the answers it translated for a while, "+
			"not across restarts, and none asked with store false; send the item itself, or set store to false (the Vercel AI SDK: providerOptions.openai.store)", id)
	default:
		return ir.Invalid(param+".type", "input item type %q cannot be translated for %s", typ, b.o.target())
	}
	return nil
}

// toolName is the tool name v (a call item, a tool_choice) names:
// namespace.name for a namespaced tool's when o.Namespaces says so.
func (o ResponsesOptions) toolName(v gjson.Result) string {
	name := v.Get("name").Str
	if ns := v.Get("namespace").Str; ns != "" && o.Namespaces {
		return ns + NamespaceSep + name
	}
	return name
}

// toolCall adds a call of type typ (function or custom, whose members
// body holds) to the assistant message it belongs to.
func (b *chatBuilder) toolCall(param, typ string, body map[string]string, item gjson.Result) error {
	call, err := json.Marshal(map[string]any{"id": item.Get("call_id").Str, "type": typ, typ: body})
	if err != nil {
		return fmt.Errorf("%s: %w", param, err)
	}
	a := b.assistant()
	before := ""
	if len(a.toolCalls) > 0 || a.content != "" || a.parts != nil {
		before = item.Get("call_id").Str // thinking between the model's tool calls
	}
	a.toolCalls = append(a.toolCalls, call)
	b.takeThinking(a, before)
	return nil
}

// join adds o's content to m's, as text parts after m's own.
func (m *chatMessage) join(o *chatMessage) {
	if o.content == "" && o.parts == nil {
		return
	}
	if m.content == "" && m.parts == nil {
		m.content, m.parts = o.content, o.parts
		return
	}
	m.parts = append(m.asParts(), o.asParts()...)
	m.content = ""
}

// asParts is m's content as parts.
func (m *chatMessage) asParts() []json.RawMessage {
	if m.content == "" {
		return m.parts
	}
	return []json.RawMessage{json.RawMessage(`{"type":"text","text":` + m.content + `}`)}
}

// setContent sets m's content from a Responses content or output: a
// string, or an array of parts.
func (m *chatMessage) setContent(param string, c gjson.Result, target string) error {
	switch {
	case c.Type == gjson.String:
		m.content = c.Raw
	case c.IsArray():
		for j, p := range c.Array() {
			part, err := chatPart(fmt.Sprintf("%s[%d]", param, j), p, target)
			if err != nil {
				return err
			}
			m.parts = append(m.parts, part)
		}
	default:
		return ir.Invalid(param, "must be a string or an array of parts")
	}
	return nil
}

// chatPart is a Responses content part as a Chat Completions one.
func chatPart(param string, p gjson.Result, target string) (json.RawMessage, error) {
	var v map[string]any
	switch typ := p.Get("type").Str; typ {
	case "input_text", "output_text", "text":
		v = map[string]any{"type": "text", "text": p.Get("text").Str}
	case "refusal":
		v = map[string]any{"type": "refusal", "refusal": p.Get("refusal").Str}
	case "input_image":
		url := p.Get("image_url").Str
		if url == "" {
			return nil, ir.Invalid(param, "an input_image needs an image_url (a file_id is stored by OpenAI and cannot be read)")
		}
		img := map[string]string{"url": url}
		if d := p.Get("detail").Str; d != "" {
			img["detail"] = d
		}
		v = map[string]any{"type": "image_url", "image_url": img}
	case "input_file":
		if p.Get("file_url").Exists() {
			return nil, ir.Invalid(param, "an input_file by file_url cannot be translated for %s; send file_data", target)
		}
		f := map[string]string{}
		for _, k := range []string{"file_data", "file_id", "filename"} {
			if s := p.Get(k).Str; s != "" {
				f[k] = s
			}
		}
		v = map[string]any{"type": "file", "file": f}
	default:
		return nil, ir.Invalid(param+".type", "content part type %q cannot be translated for %s", typ, target)
	}
	if bp := p.Get("prompt_cache_breakpoint"); bp.Exists() && bp.Type != gjson.Null {
		// The same member, of the same meaning, on Chat Completions' parts.
		v["prompt_cache_breakpoint"] = json.RawMessage(bp.Raw)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", param, err)
	}
	return raw, nil
}

// json writes the messages as a Chat Completions messages array.
func (b *chatBuilder) json() ([]byte, error) {
	out := []byte{'['}
	for i, m := range b.msgs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"role":`...)
		out = appendJSONString(out, m.role)
		switch {
		case m.content != "":
			out = append(out, `,"content":`...)
			out = append(out, m.content...)
		case m.parts != nil:
			parts, err := json.Marshal(m.parts)
			if err != nil {
				return nil, err
			}
			out = append(out, `,"content":`...)
			out = append(out, parts...)
		case m.role != "assistant":
			out = append(out, `,"content":""`...)
		default:
			out = append(out, `,"content":null`...)
		}
		if m.toolCalls != nil {
			calls, err := json.Marshal(m.toolCalls)
			if err != nil {
				return nil, err
			}
			out = append(out, `,"tool_calls":`...)
			out = append(out, calls...)
		}
		if m.role == "tool" {
			out = append(out, `,"tool_call_id":`...)
			out = appendJSONString(out, m.toolCallID)
		}
		if len(m.thinking) > 0 {
			blocks, err := json.Marshal(m.thinking)
			if err != nil {
				return nil, err
			}
			out = append(out, `,"thinking_blocks":`...)
			out = append(out, blocks...)
		}
		out = append(out, '}')
	}
	return append(out, ']'), nil
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always encodes
	return append(dst, b...)
}

// chatTools turns Responses tools (flat) into Chat Completions tools, and
// returns the namespaces it offered flat (ResponsesOptions).
func chatTools(tools gjson.Result, o ResponsesOptions) ([]byte, []string, error) {
	if !tools.IsArray() {
		return nil, nil, ir.Invalid("tools", "tools must be an array")
	}
	var out []any
	var namespaces []string
	for i, t := range tools.Array() {
		param := fmt.Sprintf("tools[%d]", i)
		typ := t.Get("type").Str
		switch {
		case typ == "namespace" && o.Namespaces:
			ns := t.Get("name").Str
			if ns == "" {
				return nil, nil, ir.Invalid(param+".name", "a namespace tool needs a name")
			}
			for j, inner := range t.Get("tools").Array() {
				tool, err := chatTool(fmt.Sprintf("%s.tools[%d]", param, j), inner, ns+NamespaceSep, o)
				if err != nil {
					return nil, nil, err
				}
				out = append(out, tool)
			}
			namespaces = append(namespaces, ns)
		case o.dropped(typ):
		default:
			tool, err := chatTool(param, t, "", o)
			if err != nil {
				return nil, nil, err
			}
			out = append(out, tool)
		}
	}
	b, err := json.Marshal(out)
	return b, namespaces, err
}

// chatTool turns one flat function or custom tool into a Chat Completions
// one, its name after prefix.
func chatTool(param string, t gjson.Result, prefix string, o ResponsesOptions) (any, error) {
	typ := t.Get("type").Str
	switch {
	case typ == "function" || typ == "custom":
	case hostedTool(typ):
		return nil, ir.Invalid(param+".type",
			"tool type %q is one of the Responses API's hosted tools, which cannot be translated for %s", typ, o.target())
	case typ == "namespace":
		return nil, ir.Invalid(param+".type", "namespace tools cannot be translated for %s; send their functions as function tools", o.target())
	default:
		return nil, ir.Invalid(param+".type",
			"tool type %q cannot be translated for %s: declare a tool the client runs (apply_patch, a shell) as a function tool", typ, o.target())
	}
	if t.Get("name").Type != gjson.String {
		return nil, ir.Invalid(param+".name", "a %s tool needs a name", typ)
	}
	name, _ := json.Marshal(prefix + t.Get("name").Str)
	if typ == "function" {
		f := map[string]json.RawMessage{"name": name}
		for _, k := range []string{"description", "parameters", "strict"} {
			if v := t.Get(k); v.Exists() && v.Type != gjson.Null {
				f[k] = json.RawMessage(v.Raw)
			}
		}
		return map[string]any{"type": "function", "function": f}, nil
	}
	c := map[string]any{"name": json.RawMessage(name)}
	if v := t.Get("description"); v.Exists() && v.Type != gjson.Null {
		c["description"] = json.RawMessage(v.Raw)
	}
	if f := t.Get("format"); f.Exists() && f.Type != gjson.Null {
		switch f.Get("type").Str {
		case "grammar":
			c["format"] = map[string]any{"type": "grammar", "grammar": map[string]string{
				"definition": f.Get("definition").Str, "syntax": f.Get("syntax").Str}}
		case "text":
			c["format"] = map[string]string{"type": "text"}
		default:
			return nil, ir.Invalid(param+".format", "custom tool format %q cannot be translated for %s", f.Get("type").Str, o.target())
		}
	}
	return map[string]any{"type": "custom", "custom": c}, nil
}

// chatToolChoice turns a Responses tool_choice into a Chat Completions one.
func chatToolChoice(tc gjson.Result, o ResponsesOptions) ([]byte, error) {
	if tc.Type == gjson.String || tc.Type == gjson.Null {
		return []byte(tc.Raw), nil
	}
	name := o.toolName(tc)
	var v any
	switch typ := tc.Get("type").Str; typ {
	case "function":
		v = map[string]any{"type": "function", "function": map[string]string{"name": name}}
	case "custom":
		v = map[string]any{"type": "custom", "custom": map[string]string{"name": name}}
	case "allowed_tools":
		var tools []any
		for _, t := range tc.Get("tools").Array() {
			name := o.toolName(t)
			switch t.Get("type").Str {
			case "function":
				tools = append(tools, map[string]any{"type": "function", "function": map[string]string{"name": name}})
			case "custom":
				tools = append(tools, map[string]any{"type": "custom", "custom": map[string]string{"name": name}})
			default:
				if o.dropped(t.Get("type").Str) {
					continue
				}
				return nil, ir.Invalid("tool_choice.tools", "allowed tool type %q cannot be translated for %s", t.Get("type").Str, o.target())
			}
		}
		v = map[string]any{"type": "allowed_tools", "allowed_tools": map[string]any{"mode": tc.Get("mode").Str, "tools": tools}}
	default:
		if o.dropped(typ) {
			return []byte(`"auto"`), nil // a hosted tool, dropped with it
		}
		return nil, ir.Invalid("tool_choice.type", "tool_choice type %q cannot be translated for %s", typ, o.target())
	}
	return json.Marshal(v)
}

// responseFormat turns a Responses text.format into a Chat Completions
// response_format (nil for plain text, the default).
func responseFormat(f gjson.Result, o ResponsesOptions) ([]byte, error) {
	switch typ := f.Get("type").Str; typ {
	case "text":
		return nil, nil
	case "json_object":
		return []byte(`{"type":"json_object"}`), nil
	case "json_schema":
		js := map[string]json.RawMessage{}
		for _, k := range []string{"name", "schema", "strict", "description"} {
			if v := f.Get(k); v.Exists() && v.Type != gjson.Null {
				js[k] = json.RawMessage(v.Raw)
			}
		}
		return json.Marshal(map[string]any{"type": "json_schema", "json_schema": js})
	default:
		return nil, ir.Invalid("text.format.type", "text format %q cannot be translated for %s", typ, o.target())
	}
}

// ItemsForOpenAI readies, for an OpenAI model, a Responses API request
// body whose conversation went through a Claude model: each
// item_reference that resolve knows (an item of an answer the gateway
// translated) becomes the item itself, as OpenAI can read it (a message
// as an assistant message of its text, a tool call without the gateway's
// item id), and reasoning items holding Claude's thinking
// (ClaudeThinkingPrefix), resolved or sent, are left out: OpenAI reads
// only its own encrypted content. Other references stay, for OpenAI to
// resolve. The body is returned unchanged when nothing changed.
func ItemsForOpenAI(body []byte, resolve func(id string) ([]byte, bool)) ([]byte, error) {
	input := gjson.GetBytes(body, "input")
	if !input.IsArray() {
		return body, nil
	}
	var items []json.RawMessage
	changed := false
	for _, it := range input.Array() {
		switch it.Get("type").Str {
		case "item_reference":
		case "reasoning":
			if strings.HasPrefix(it.Get("encrypted_content").Str, ClaudeThinkingPrefix) {
				changed = true
				continue
			}
			fallthrough
		default:
			items = append(items, json.RawMessage(it.Raw))
			continue
		}
		raw, ok := resolve(it.Get("id").Str)
		if !ok {
			items = append(items, json.RawMessage(it.Raw))
			continue
		}
		changed = true
		if in := inputItem(gjson.ParseBytes(raw)); in != nil {
			items = append(items, in)
		}
	}
	if !changed {
		return body, nil
	}
	arr, err := json.Marshal(items)
	if err != nil {
		return nil, fmt.Errorf("readying items for OpenAI: %w", err)
	}
	out, err := sjson.SetRawBytes(body, "input", arr)
	if err != nil {
		return nil, fmt.Errorf("readying items for OpenAI: %w", err)
	}
	return out, nil
}

// inputItem is a kept output item as an input item OpenAI reads (nil for
// one it cannot: reasoning).
func inputItem(it gjson.Result) json.RawMessage {
	var v map[string]any
	switch it.Get("type").Str {
	case "message":
		var text strings.Builder
		for _, p := range it.Get("content").Array() {
			text.WriteString(p.Get("text").Str)
		}
		v = map[string]any{"type": "message", "role": "assistant", "content": text.String()}
	case "function_call":
		v = map[string]any{"type": "function_call", "call_id": it.Get("call_id").Str, "name": it.Get("name").Str, "arguments": it.Get("arguments").Str}
		if ns := it.Get("namespace").Str; ns != "" {
			v["namespace"] = ns
		}
	case "custom_tool_call":
		v = map[string]any{"type": "custom_tool_call", "call_id": it.Get("call_id").Str, "name": it.Get("name").Str, "input": it.Get("input").Str}
	default:
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	return b
}
