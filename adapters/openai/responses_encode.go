package openai

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/metisgateway/metis/ir"
)

// ResponsesAnswer says how a model's answer is written as a Responses API
// response for a client whose request was translated to another provider.
type ResponsesAnswer struct {
	// Model is the model name reported to the client; when empty, the
	// provider's.
	Model string
	// Created is the response's created_at (Unix seconds); 0 is now.
	Created int64
	// Names maps upstream tool names back to the client's; may be nil.
	Names *ir.ToolNames
	// Namespaces are the namespace tools whose functions were offered
	// flat as "namespace.name" (ResponsesOptions.Namespaces): a call of
	// one goes back with its name and namespace apart.
	Namespaces []string
	// Keep, when set, is given each output item (its id and JSON) of a
	// finished answer, for ResponsesOptions.Resolve to read back when the
	// client refers to it. Reasoning items are given with their
	// encrypted_content.
	Keep func(id string, item []byte)
	// EncryptedContent writes Claude's thinking blocks, signatures
	// included, as the encrypted_content of reasoning items
	// (ClaudeThinkingPrefix), for the client to send back: its request's
	// include named reasoning.encrypted_content.
	EncryptedContent bool
}

// keep hands the output items of a finished answer to Keep.
func (a *ResponsesAnswer) keep(items []*respItem) {
	if a.Keep == nil {
		return
	}
	for _, it := range items {
		if it.thinking != "" && it.EncryptedContent == "" {
			c := *it
			c.EncryptedContent = it.thinking
			it = &c
		}
		if b, err := json.Marshal(it); err == nil {
			a.Keep(it.ID, b)
		}
	}
}

// reasoningItem is the reasoning item standing for Claude's thinking
// block p, whose text, when the block is not redacted, is its summary.
func (a *ResponsesAnswer) reasoningItem(id string, p ir.Part) *respItem {
	it := &respItem{ID: id, Type: "reasoning", Summary: &[]respSummary{}}
	if p.Type == ir.PartThinking {
		*it.Summary = append(*it.Summary, respSummary{Type: "summary_text", Text: p.Text})
	}
	a.setThinking(it, p)
	return it
}

// setThinking records Claude's block p on reasoning item it, shown as its
// encrypted_content when the client asked for it.
func (a *ResponsesAnswer) setThinking(it *respItem, p ir.Part) {
	it.thinking = encodeThinking(p)
	if a.EncryptedContent {
		it.EncryptedContent = it.thinking
	}
}

// Responses API wire types, written for a client.
type (
	respObject struct {
		ID                 string          `json:"id"`
		Object             string          `json:"object"`
		CreatedAt          int64           `json:"created_at"`
		Status             string          `json:"status"`
		Background         bool            `json:"background"`
		Error              json.RawMessage `json:"error"`
		IncompleteDetails  *respIncomplete `json:"incomplete_details"`
		Instructions       json.RawMessage `json:"instructions"`
		MaxOutputTokens    json.RawMessage `json:"max_output_tokens"`
		Model              string          `json:"model"`
		Output             []*respItem     `json:"output"`
		ParallelToolCalls  bool            `json:"parallel_tool_calls"`
		PreviousResponseID json.RawMessage `json:"previous_response_id"`
		Reasoning          json.RawMessage `json:"reasoning"`
		Store              bool            `json:"store"`
		Temperature        json.RawMessage `json:"temperature"`
		Text               json.RawMessage `json:"text"`
		ToolChoice         string          `json:"tool_choice"`
		Tools              []struct{}      `json:"tools"`
		TopP               json.RawMessage `json:"top_p"`
		Truncation         string          `json:"truncation"`
		Usage              *respUsage      `json:"usage"`
		User               json.RawMessage `json:"user"`
		Metadata           struct{}        `json:"metadata"`
	}
	respIncomplete struct {
		Reason string `json:"reason"`
	}
	// respItem is one output item: a message (Content), the model's
	// reasoning (Summary), a function call (Arguments) or a custom tool's
	// call (Input).
	respItem struct {
		ID        string         `json:"id"`
		Type      string         `json:"type"`
		Status    string         `json:"status,omitempty"`
		Role      string         `json:"role,omitempty"`
		Content   *[]respText    `json:"content,omitempty"`
		Summary   *[]respSummary `json:"summary,omitempty"`
		CallID    string         `json:"call_id,omitempty"`
		Name      string         `json:"name,omitempty"`
		Namespace string         `json:"namespace,omitempty"`
		Arguments *string        `json:"arguments,omitempty"`
		Input     *string        `json:"input,omitempty"`
		// EncryptedContent is a reasoning item's Claude thinking block
		// (encodeThinking), when shown.
		EncryptedContent string `json:"encrypted_content,omitempty"`

		thinking string // the block, shown or not
	}
	respText struct {
		Type        string     `json:"type"`
		Annotations []struct{} `json:"annotations"`
		Logprobs    []struct{} `json:"logprobs"`
		Text        string     `json:"text"`
	}
	respSummary struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	respUsage struct {
		InputTokens         int64                `json:"input_tokens"`
		InputTokensDetails  outPromptDetails     `json:"input_tokens_details"`
		OutputTokens        int64                `json:"output_tokens"`
		OutputTokensDetails outCompletionDetails `json:"output_tokens_details"`
		TotalTokens         int64                `json:"total_tokens"`
	}
)

var (
	jsonNull      = json.RawMessage("null")
	textFormat    = json.RawMessage(`{"format":{"type":"text"}}`)
	noReasoning   = json.RawMessage(`{"effort":null,"summary":null}`)
	emptyTextPart = respText{Type: "output_text", Annotations: []struct{}{}, Logprobs: []struct{}{}}
)

// newRespObject is a response without output, in progress.
func newRespObject(id, model string, created int64) *respObject {
	if created == 0 {
		created = time.Now().Unix()
	}
	return &respObject{
		ID: responseID(id), Object: "response", CreatedAt: created, Status: "in_progress",
		Error: jsonNull, Instructions: jsonNull, MaxOutputTokens: jsonNull, Model: model,
		Output: []*respItem{}, ParallelToolCalls: true, PreviousResponseID: jsonNull, Reasoning: noReasoning,
		Temperature: jsonNull, Text: textFormat, ToolChoice: "auto", Tools: []struct{}{}, TopP: jsonNull,
		Truncation: "disabled", User: jsonNull,
	}
}

// responseID is a Responses API id for the provider's message id.
func responseID(id string) string {
	if id == "" {
		return fmt.Sprintf("resp_metis_%016x", rand.Uint64())
	}
	return "resp_" + strings.TrimPrefix(id, "msg_")
}

// itemID names output item n of response respID with prefix (msg, rs, fc,
// ctc, as OpenAI's do).
func itemID(prefix, respID string, n int) string {
	return prefix + "_" + strings.TrimPrefix(respID, "resp_") + "_" + strconv.Itoa(n)
}

// finish sets the response's final status from the stop reason and its
// usage: max_tokens (and a full context window) leave it incomplete for
// max_output_tokens, a refusal for content_filter.
func (o *respObject) finish(stop ir.StopReason, u ir.Usage) {
	o.Status = "completed"
	switch stop {
	case ir.StopMaxTokens, ir.StopContextWindow:
		o.Status, o.IncompleteDetails = "incomplete", &respIncomplete{Reason: "max_output_tokens"}
	case ir.StopRefusal:
		o.Status, o.IncompleteDetails = "incomplete", &respIncomplete{Reason: "content_filter"}
	}
	prompt := u.TotalInputTokens()
	o.Usage = &respUsage{
		InputTokens:         prompt,
		InputTokensDetails:  outPromptDetails{CachedTokens: u.CacheReadInputTokens, CacheWriteTokens: u.CacheCreationInputTokens},
		OutputTokens:        u.OutputTokens,
		OutputTokensDetails: outCompletionDetails{ReasoningTokens: u.ReasoningTokens},
		TotalTokens:         prompt + u.OutputTokens,
	}
}

// callItem is the output item of a tool call the upstream named name: a
// custom tool's call (with its text) when Names marks it custom, else a
// function call, its namespace apart when it was offered flat.
func (a *ResponsesAnswer) callItem(id, callID, name string) *respItem {
	it := &respItem{ID: id, Type: "function_call", Status: "in_progress", CallID: callID}
	custom := a.Names.IsCustom(name)
	it.Name = a.Names.Client(name)
	if custom {
		it.Type, it.ID, it.Input = "custom_tool_call", "ctc"+strings.TrimPrefix(id, "fc"), new(string)
	} else {
		it.Arguments = new(string)
	}
	for _, ns := range a.Namespaces {
		if rest, ok := strings.CutPrefix(it.Name, ns+NamespaceSep); ok {
			it.Namespace, it.Name = ns, rest
			break
		}
	}
	return it
}

// EncodeResponsesResponse writes r as a Responses API response: the
// model's thinking as a reasoning item with its text as the summary, each
// run of text as a message, each tool call as a function_call or
// custom_tool_call item, in the order the model wrote them; a response cut
// by its token limit is incomplete (max_output_tokens).
func EncodeResponsesResponse(r *ir.Response, a ResponsesAnswer) ([]byte, error) {
	model := a.Model
	if model == "" {
		model = r.Model
	}
	created := a.Created
	if r.Created != 0 {
		created = r.Created
	}
	o := newRespObject(r.ID, model, created)
	o.Store = a.Keep != nil // kept for the client's references
	var msg *respItem
	for i := range r.Content {
		p := &r.Content[i]
		n := len(o.Output)
		switch p.Type {
		case ir.PartText:
			if msg == nil {
				msg = &respItem{ID: itemID("msg", o.ID, n), Type: "message", Status: "completed", Role: "assistant", Content: &[]respText{}}
				o.Output = append(o.Output, msg)
			}
			t := emptyTextPart
			t.Text = p.Text
			*msg.Content = append(*msg.Content, t)
			continue
		case ir.PartThinking, ir.PartRedactedThinking:
			o.Output = append(o.Output, a.reasoningItem(itemID("rs", o.ID, n), *p))
		case ir.PartToolCall:
			it := a.callItem(itemID("fc", o.ID, n), p.ToolCallID, p.ToolName)
			it.Status = "completed"
			if it.Input != nil {
				*it.Input = CustomInput(p.Arguments)
			} else {
				args := p.Arguments
				if isJSONNull(args) {
					args = json.RawMessage("{}")
				}
				*it.Arguments = compactJSON(args)
			}
			o.Output = append(o.Output, it)
		}
		msg = nil // text after another item is a message of its own
	}
	o.finish(r.StopReason, r.Usage)
	a.keep(o.Output)
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encoding Responses API response: %w", err)
	}
	return b, nil
}

// ResponsesStreamEncoder writes neutral events as a Responses API event
// stream for a client, numbered by sequence_number from 0:
// response.created and response.in_progress; per block an output item
// (response.output_item.added, its deltas and their .done events,
// response.output_item.done): text as a message's output_text, thinking
// as a reasoning item's summary text, a tool call as function call
// arguments or a custom tool's input; then response.completed, or
// response.incomplete when the token limit cut the answer, with the usage.
type ResponsesStreamEncoder struct {
	ResponsesAnswer
	// InputEstimate is the prompt's estimated tokens, told as the usage's
	// input_tokens when the provider did not count the input.
	InputEstimate int64

	seq     int64
	resp    *respObject
	started bool
	done    bool
	open    bool
	openIdx int       // the neutral index of the open block
	item    *respItem // the open block's item (nil: a block not shown)
	text    strings.Builder
	input   inputReader // a custom tool call's text, read out of its arguments
	block   ir.Part     // the open thinking block: its signature, or its data when redacted
	stop    ir.StopReason
	told    toldUsage
	sawStop bool
}

// Done reports whether the stream has been ended.
func (e *ResponsesStreamEncoder) Done() bool { return e.done }

// event appends one event of type typ: its fields are body's (a struct
// or nil), after type and sequence_number.
func (e *ResponsesStreamEncoder) event(dst []byte, typ string, body any) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, typ...)
	dst = append(dst, "\ndata: {\"type\":\""...)
	dst = append(dst, typ...)
	dst = append(dst, `","sequence_number":`...)
	dst = strconv.AppendInt(dst, e.seq, 10)
	e.seq++
	if body != nil {
		if b, _ := json.Marshal(body); len(b) > 2 {
			dst = append(dst, ',')
			dst = append(dst, b[1:len(b)-1]...)
		}
	}
	return append(dst, "}\n\n"...)
}

// Stream event bodies.
type (
	evResponse struct {
		Response *respObject `json:"response"`
	}
	evItem struct {
		OutputIndex int       `json:"output_index"`
		Item        *respItem `json:"item"`
	}
	evPart struct {
		ItemID       string   `json:"item_id"`
		OutputIndex  int      `json:"output_index"`
		ContentIndex int      `json:"content_index"`
		Part         respText `json:"part"`
	}
	evTextDelta struct {
		ItemID       string     `json:"item_id"`
		OutputIndex  int        `json:"output_index"`
		ContentIndex int        `json:"content_index"`
		Delta        string     `json:"delta"`
		Logprobs     []struct{} `json:"logprobs"`
	}
	evTextDone struct {
		ItemID       string     `json:"item_id"`
		OutputIndex  int        `json:"output_index"`
		ContentIndex int        `json:"content_index"`
		Text         string     `json:"text"`
		Logprobs     []struct{} `json:"logprobs"`
	}
	evSummaryPart struct {
		ItemID       string      `json:"item_id"`
		OutputIndex  int         `json:"output_index"`
		SummaryIndex int         `json:"summary_index"`
		Part         respSummary `json:"part"`
	}
	evSummaryDelta struct {
		ItemID       string `json:"item_id"`
		OutputIndex  int    `json:"output_index"`
		SummaryIndex int    `json:"summary_index"`
		Delta        string `json:"delta"`
	}
	evSummaryDone struct {
		ItemID       string `json:"item_id"`
		OutputIndex  int    `json:"output_index"`
		SummaryIndex int    `json:"summary_index"`
		Text         string `json:"text"`
	}
	evDelta struct {
		ItemID      string `json:"item_id"`
		OutputIndex int    `json:"output_index"`
		Delta       string `json:"delta"`
	}
	evArgsDone struct {
		ItemID      string `json:"item_id"`
		OutputIndex int    `json:"output_index"`
		Arguments   string `json:"arguments"`
	}
	evInputDone struct {
		ItemID      string `json:"item_id"`
		OutputIndex int    `json:"output_index"`
		Input       string `json:"input"`
	}
	evError struct {
		Code    string          `json:"code"`
		Message string          `json:"message"`
		Param   json.RawMessage `json:"param"`
	}
)

func (e *ResponsesStreamEncoder) start(dst []byte, id, model string) []byte {
	e.started = true
	if e.Model == "" {
		e.Model = model
	}
	e.resp = newRespObject(id, e.Model, e.Created)
	e.resp.Store = e.Keep != nil // kept for the client's references
	dst = e.event(dst, "response.created", evResponse{e.resp})
	return e.event(dst, "response.in_progress", evResponse{e.resp})
}

// Encode appends the client events for one neutral event to dst.
func (e *ResponsesStreamEncoder) Encode(dst []byte, ev *ir.StreamEvent) []byte {
	if e.done {
		return dst
	}
	e.told.note(ev)
	if !e.started && ev.Type != ir.EventError && ev.Type != ir.EventPing {
		dst = e.start(dst, ev.ID, ev.Model)
	}
	switch ev.Type {
	case ir.EventBlockStart:
		dst = e.closeItem(dst)
		dst = e.openItem(dst, ev)
	case ir.EventBlockDelta:
		if !e.open || e.openIdx != ev.Index || e.item == nil || ev.Text == "" {
			return dst
		}
		dst = e.delta(dst, ev)
	case ir.EventBlockStop:
		if e.open && e.openIdx == ev.Index {
			dst = e.closeItem(dst)
		}
	case ir.EventMessageDelta:
		if ev.StopReason != ir.StopUnknown {
			e.stop, e.sawStop = ev.StopReason, true
		}
	case ir.EventMessageStop:
		dst = e.end(dst)
	case ir.EventPing:
		dst = e.Ping(dst)
	case ir.EventError:
		dst = e.Error(dst, ev.Err)
	}
	return dst
}

// openItem opens the output item of a block: text, thinking or a tool
// call (redacted thinking is not shown).
func (e *ResponsesStreamEncoder) openItem(dst []byte, ev *ir.StreamEvent) []byte {
	e.open, e.openIdx, e.item = true, ev.Index, nil
	e.text.Reset()
	n := len(e.resp.Output)
	switch ev.Block.Type {
	case ir.PartText:
		e.item = &respItem{ID: itemID("msg", e.resp.ID, n), Type: "message", Status: "in_progress", Role: "assistant", Content: &[]respText{}}
	case ir.PartThinking, ir.PartRedactedThinking:
		e.item = &respItem{ID: itemID("rs", e.resp.ID, n), Type: "reasoning", Summary: &[]respSummary{}}
		e.block = ir.Part{Type: ev.Block.Type, Data: ev.Block.Data}
	case ir.PartToolCall:
		e.item = e.callItem(itemID("fc", e.resp.ID, n), ev.Block.ToolCallID, ev.Block.ToolName)
		e.input = inputReader{}
	default:
		return dst
	}
	e.resp.Output = append(e.resp.Output, e.item)
	dst = e.event(dst, "response.output_item.added", evItem{n, e.item})
	switch e.item.Type {
	case "message":
		dst = e.event(dst, "response.content_part.added", evPart{e.item.ID, n, 0, emptyTextPart})
	case "reasoning":
		if e.block.Type == ir.PartThinking {
			dst = e.event(dst, "response.reasoning_summary_part.added", evSummaryPart{e.item.ID, n, 0, respSummary{Type: "summary_text"}})
		}
	}
	return dst
}

// delta appends the events for text of the open item.
func (e *ResponsesStreamEncoder) delta(dst []byte, ev *ir.StreamEvent) []byte {
	n := len(e.resp.Output) - 1
	switch {
	case e.item.Type == "message" && ev.Delta == ir.DeltaText:
		e.text.WriteString(ev.Text)
		return e.event(dst, "response.output_text.delta", evTextDelta{e.item.ID, n, 0, ev.Text, []struct{}{}})
	case e.item.Type == "reasoning" && ev.Delta == ir.DeltaSignature:
		e.block.Signature += ev.Text
		return dst
	case e.item.Type == "reasoning" && ev.Delta == ir.DeltaThinking && e.block.Type == ir.PartThinking:
		e.text.WriteString(ev.Text)
		return e.event(dst, "response.reasoning_summary_text.delta", evSummaryDelta{e.item.ID, n, 0, ev.Text})
	case e.item.Type == "function_call" && ev.Delta == ir.DeltaArguments:
		e.text.WriteString(ev.Text)
		return e.event(dst, "response.function_call_arguments.delta", evDelta{e.item.ID, n, ev.Text})
	case e.item.Type == "custom_tool_call" && ev.Delta == ir.DeltaArguments:
		return e.customInput(dst, e.input.feed(ev.Text))
	}
	return dst
}

// customInput appends a piece of the open custom tool call's text.
func (e *ResponsesStreamEncoder) customInput(dst []byte, s string) []byte {
	if s == "" {
		return dst
	}
	e.text.WriteString(s)
	return e.event(dst, "response.custom_tool_call_input.delta", evDelta{e.item.ID, len(e.resp.Output) - 1, s})
}

// closeItem completes the open item: its .done events and
// response.output_item.done with the item whole.
func (e *ResponsesStreamEncoder) closeItem(dst []byte) []byte {
	if !e.open {
		return dst
	}
	e.open = false
	it := e.item
	if it == nil {
		return dst
	}
	n := len(e.resp.Output) - 1
	switch it.Type {
	case "message":
		t := emptyTextPart
		t.Text = e.text.String()
		*it.Content = append(*it.Content, t)
		dst = e.event(dst, "response.output_text.done", evTextDone{it.ID, n, 0, t.Text, []struct{}{}})
		dst = e.event(dst, "response.content_part.done", evPart{it.ID, n, 0, t})
	case "reasoning":
		e.block.Text = e.text.String()
		e.setThinking(it, e.block)
		if e.block.Type != ir.PartThinking {
			break // redacted: no summary
		}
		s := respSummary{Type: "summary_text", Text: e.block.Text}
		*it.Summary = append(*it.Summary, s)
		dst = e.event(dst, "response.reasoning_summary_text.done", evSummaryDone{it.ID, n, 0, s.Text})
		dst = e.event(dst, "response.reasoning_summary_part.done", evSummaryPart{it.ID, n, 0, s})
	case "function_call":
		args := e.text.String()
		if args == "" {
			// A call without parameters streams no argument text; OpenAI
			// sends "{}", which clients parse as JSON.
			args = "{}"
			dst = e.event(dst, "response.function_call_arguments.delta", evDelta{it.ID, n, args})
		}
		*it.Arguments = args
		dst = e.event(dst, "response.function_call_arguments.done", evArgsDone{it.ID, n, args})
	case "custom_tool_call":
		dst = e.customInput(dst, e.input.end())
		*it.Input = e.text.String()
		dst = e.event(dst, "response.custom_tool_call_input.done", evInputDone{it.ID, n, *it.Input})
	}
	if it.Status != "" {
		it.Status = "completed"
	}
	return e.event(dst, "response.output_item.done", evItem{n, it})
}

func (e *ResponsesStreamEncoder) end(dst []byte) []byte {
	if !e.started {
		dst = e.start(dst, "", "")
	}
	dst = e.closeItem(dst)
	e.resp.finish(e.stop, e.told.usage(e.InputEstimate))
	e.keep(e.resp.Output)
	typ := "response.completed"
	if e.resp.Status == "incomplete" {
		typ = "response.incomplete"
	}
	e.done = true
	return e.event(dst, typ, evResponse{e.resp})
}

// Finish is called when the upstream stream ended without message_stop:
// with a known stop reason the response completes; otherwise the stream
// was cut and the client gets an error event.
func (e *ResponsesStreamEncoder) Finish(dst []byte) []byte {
	if e.done {
		return dst
	}
	if e.sawStop {
		return e.end(dst)
	}
	return e.Error(dst, &ir.Error{Status: 502, Kind: ir.ErrAPI, Message: "upstream stream ended before the response was complete"})
}

// Error writes the Responses API's error event and ends the stream.
func (e *ResponsesStreamEncoder) Error(dst []byte, err *ir.Error) []byte {
	if e.done {
		return dst
	}
	e.done = true
	code := ErrorType(err.Kind)
	if err.Code != "" {
		code = err.Code
	}
	dst = AppendResponsesError(dst, e.seq, code, err.Message)
	e.seq++
	return dst
}

// AppendResponsesError appends the Responses API's error event, the one
// OpenAI documents for a stream that fails, numbered seq.
func AppendResponsesError(dst []byte, seq int64, code, message string) []byte {
	e := ResponsesStreamEncoder{seq: seq}
	return e.event(dst, "error", evError{Code: code, Message: message, Param: jsonNull})
}

// Ping writes a keep-alive SSE comment, which OpenAI clients ignore.
func (e *ResponsesStreamEncoder) Ping(dst []byte) []byte {
	if e.done {
		return dst
	}
	return append(dst, ": ping\n\n"...)
}
