// Package translate is the gateway's entry point for cross-shape traffic:
// an Anthropic-shape client talking to an OpenAI(-compatible) model, or an
// OpenAI-shape client talking to a Claude model. Requests, complete
// responses, streams and errors go through the provider-neutral model in
// package ir, using the adapters in adapters/anthropic and adapters/openai.
//
// Same-shape traffic never comes here: the gateway forwards it byte for
// byte. The lossy spots of the translation are listed in adapters/LOSSY.md.
package translate

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/anthropic"
	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/ir"
)

// Options tune request translation for the target model.
type Options struct {
	// DefaultMaxTokens is the target model's output limit: Anthropic's
	// required max_tokens when an OpenAI client set no limit, and, both
	// ways, the most a client's limit is sent as (Claude Code asks 32,000
	// of a model it does not know; gpt-4o refuses more than 16,384); nil or
	// a result ≤ 0 falls back to 4096 for the first and caps nothing.
	DefaultMaxTokens func(model string) int
	// SupportsSampling says whether a Claude model accepts temperature,
	// top_p and top_k; nil guesses from the model id
	// (anthropic.GuessSupportsSampling).
	SupportsSampling func(model string) bool
	// SupportsReasoning says whether an OpenAI model takes reasoning_effort
	// (and rejects non-default temperature/top_p); nil guesses from the
	// model id (openai.GuessReasoningModel).
	SupportsReasoning func(model string) bool
	// MaxTokens, NoStreamUsage and SystemFirst shape a request to an
	// OpenAI-compatible server that is not OpenAI's (see
	// openai.RequestOptions).
	MaxTokens, NoStreamUsage, SystemFirst bool
	// AutoCache asks for Anthropic's automatic prompt caching on a request
	// translated to Anthropic (see anthropic.RequestOptions).
	AutoCache bool
	// ResolveItem reads the item a Responses API request's item_reference
	// names (openai.ResponsesOptions.Resolve); nil refuses them all.
	ResolveItem func(id string) ([]byte, bool)
	// ThinkingFor, for a request translated to Anthropic, reads the
	// thinking kept (State.KeepThinking) for the answer that made tool
	// call callID: it goes back where Claude wrote it, into each answer of
	// the tool loop the request continues that came without it.
	ThinkingFor func(callID string) ([]byte, bool)
}

// State carries the per-request facts the response side needs. It is
// returned by the request translators and is not safe for concurrent use
// by two streams at once (one request, one State).
type State struct {
	// ClientStream is true when the client asked for a stream.
	ClientStream bool
	// IncludeUsage is true when an OpenAI client asked for
	// stream_options.include_usage (Anthropic clients always get usage).
	IncludeUsage bool
	// RequestedModel is the model name the client sent; responses report it.
	// The gateway may overwrite it.
	RequestedModel string
	// UpstreamModel is the model the upstream request names.
	UpstreamModel string
	// ToolNames maps tool names changed for the upstream back to the
	// client's own names.
	ToolNames *ir.ToolNames
	// Betas are the anthropic-beta values a request translated to
	// Anthropic needs (anthropic.EncodeRequestBetas).
	Betas []string
	// InputEstimate is a rough input token count, reported in an Anthropic
	// stream's message_start until the OpenAI upstream gives real usage.
	InputEstimate int64
	// Created is the Unix time reported in OpenAI chunks and responses.
	Created int64
	// Responses is true when the client sent a Responses API request
	// (ResponsesToAnthropicRequest): the answer goes back as one.
	Responses bool
	// Namespaces are the Responses request's namespace tools, offered
	// flat (openai.ResponsesAnswer.Namespaces).
	Namespaces []string
	// KeepItem, when set, is given the output items of a Responses API
	// answer once it is finished (openai.ResponsesAnswer.Keep).
	KeepItem func(id string, item []byte)
	// EncryptedContent is true when the Responses request's include named
	// reasoning.encrypted_content: Claude's thinking goes back in it
	// (openai.ResponsesAnswer.EncryptedContent).
	EncryptedContent bool
	// KeepThinking, when set, is given the signed thinking of a finished
	// Anthropic answer that called tools (a JSON array of
	// openai.ThinkingBlock), once under each call's id, for
	// Options.ThinkingFor to read back.
	KeepThinking func(callID string, blocks []byte)
}

// AnthropicToOpenAIRequest translates an Anthropic Messages request body
// into a Chat Completions body for upstreamModel.
func AnthropicToOpenAIRequest(body []byte, upstreamModel string, o Options) ([]byte, *State, error) {
	req, err := anthropic.DecodeRequest(body)
	if err != nil {
		return nil, nil, fmt.Errorf("translating Anthropic request to OpenAI: %w", err)
	}
	return anthropicToOpenAIReq(req, upstreamModel, o)
}

// AnthropicToOpenAIRequestParsed is AnthropicToOpenAIRequest for a body
// the caller has already checked with gjson.Valid and parsed with
// gjson.Parse (the gateway's request check): it is not validated or copied
// a second time. root.Raw must not change until the call returns.
func AnthropicToOpenAIRequestParsed(root gjson.Result, upstreamModel string, o Options) ([]byte, *State, error) {
	req, err := anthropic.DecodeRequestParsed(root)
	if err != nil {
		return nil, nil, fmt.Errorf("translating Anthropic request to OpenAI: %w", err)
	}
	return anthropicToOpenAIReq(req, upstreamModel, o)
}

func anthropicToOpenAIReq(req *ir.Request, upstreamModel string, o Options) ([]byte, *State, error) {
	st := &State{
		ClientStream: req.Stream, IncludeUsage: true, RequestedModel: strings.Clone(req.Model), // not the body's memory
		UpstreamModel: upstreamModel, ToolNames: &ir.ToolNames{}, Created: time.Now().Unix(),
		InputEstimate: req.EstimateInputTokens(),
	}
	req.Model = upstreamModel
	out, err := openai.EncodeRequest(req, openai.RequestOptions{SupportsReasoning: o.SupportsReasoning, Names: st.ToolNames,
		MaxTokens: o.MaxTokens, OutputLimit: o.DefaultMaxTokens, NoStreamUsage: o.NoStreamUsage, SystemFirst: o.SystemFirst})
	if err != nil {
		return nil, nil, fmt.Errorf("translating Anthropic request to OpenAI: %w", err)
	}
	return out, st, nil
}

// OpenAIToAnthropicRequest translates a Chat Completions request body into
// an Anthropic Messages body for upstreamModel.
func OpenAIToAnthropicRequest(body []byte, upstreamModel string, o Options) ([]byte, *State, error) {
	req, err := openai.DecodeRequest(body)
	if err != nil {
		return nil, nil, fmt.Errorf("translating OpenAI request to Anthropic: %w", err)
	}
	return openAIToAnthropicReq(req, upstreamModel, o)
}

// ResponsesToAnthropicRequest translates a Responses API request body into
// an Anthropic Messages body for upstreamModel, through the Chat
// Completions request it stands for (openai.ResponsesToChatWith, with
// namespaced tools offered flat and hosted tools dropped: adapters/LOSSY.md
// #31). The State answers the client in the Responses API's shape.
func ResponsesToAnthropicRequest(body []byte, upstreamModel string, o Options) ([]byte, *State, error) {
	chat, namespaces, err := openai.ResponsesToChatWith(body, openai.ResponsesOptions{Namespaces: true, DropHosted: true,
		Resolve: o.ResolveItem, Target: "a Claude model", Thinking: true})
	if err != nil {
		return nil, nil, fmt.Errorf("translating Responses API request to Anthropic: %w", err)
	}
	req, err := openai.DecodeRequest(chat)
	if err != nil {
		return nil, nil, fmt.Errorf("translating Responses API request to Anthropic (read as Chat Completions): %w", err)
	}
	if s := gjson.GetBytes(body, "reasoning.summary"); req.Thinking != nil && s.Type == gjson.String && s.Str != "" && s.Str != "none" {
		// Reasoning summaries asked for (Codex asks "auto"): Claude's
		// thinking text, which the newest models omit unless asked.
		req.Thinking.Display = "summarized"
	}
	out, st, err := openAIToAnthropicReq(req, upstreamModel, o)
	if err != nil {
		return nil, nil, err
	}
	st.Responses, st.Namespaces = true, namespaces
	for _, v := range gjson.GetBytes(body, "include").Array() {
		st.EncryptedContent = st.EncryptedContent || v.Str == "reasoning.encrypted_content"
	}
	return out, st, nil
}

// OpenAIToAnthropicRequestParsed is OpenAIToAnthropicRequest for a body
// the caller has already checked with gjson.Valid and parsed with
// gjson.Parse (the gateway's request check): it is not validated or copied
// a second time. root.Raw must not change until the call returns.
func OpenAIToAnthropicRequestParsed(root gjson.Result, upstreamModel string, o Options) ([]byte, *State, error) {
	req, err := openai.DecodeRequestParsed(root)
	if err != nil {
		return nil, nil, fmt.Errorf("translating OpenAI request to Anthropic: %w", err)
	}
	return openAIToAnthropicReq(req, upstreamModel, o)
}

func openAIToAnthropicReq(req *ir.Request, upstreamModel string, o Options) ([]byte, *State, error) {
	st := &State{
		ClientStream: req.Stream, IncludeUsage: req.IncludeUsage, RequestedModel: strings.Clone(req.Model),
		UpstreamModel: upstreamModel, ToolNames: &ir.ToolNames{}, Created: time.Now().Unix(),
	}
	req.Model = upstreamModel
	restoreThinking(req, o.ThinkingFor)
	out, betas, err := anthropic.EncodeRequestBetas(req, anthropic.RequestOptions{
		DefaultMaxTokens: o.DefaultMaxTokens, SupportsSampling: o.SupportsSampling, Names: st.ToolNames,
		AutoCache: o.AutoCache,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("translating OpenAI request to Anthropic: %w", err)
	}
	st.Betas = betas
	return out, st, nil
}

// OpenAIResponseToAnthropic translates an OpenAI upstream's complete 2xx
// response body into an Anthropic Messages response for the client.
func (st *State) OpenAIResponseToAnthropic(body []byte) ([]byte, error) {
	out, _, err := st.openAIResponseToAnthropic(body)
	return out, err
}

// openAIResponseToAnthropic is OpenAIResponseToAnthropic, also returning
// the usage the client is told: the provider's, or (Estimated) the
// translator's estimate when the provider reported none.
func (st *State) openAIResponseToAnthropic(body []byte) ([]byte, ir.Usage, error) {
	r, err := openai.DecodeResponse(body)
	if err != nil {
		return nil, ir.Usage{}, fmt.Errorf("translating OpenAI response to Anthropic: %w", err)
	}
	if !r.HasUsage {
		// The provider reported none (some compatible servers): the client
		// gets the estimate a translated stream gives, not zeros that
		// would tell an agent its context is empty.
		r.Usage = estimatedUsage(st.InputEstimate, r)
	}
	out, err := anthropic.EncodeResponse(r, st.RequestedModel, st.ToolNames)
	if err != nil {
		return nil, r.Usage, fmt.Errorf("translating OpenAI response to Anthropic: %w", err)
	}
	return out, r.Usage, nil
}

// OpenAIResponseToAnthropicWithUsage is OpenAIResponseToAnthropic that
// also reads the upstream's usage (openai.ResponseUsage). The usage is
// returned even when the translation fails. An answer without usage is
// priced on the estimate its client is told (Estimated, no Err).
func (st *State) OpenAIResponseToAnthropicWithUsage(body []byte) ([]byte, UpstreamUsage, error) {
	u, meta, uerr := openai.ResponseUsage(body)
	out, told, err := st.openAIResponseToAnthropic(body)
	if uerr != nil && err == nil && told.Estimated {
		u, uerr = told, nil
	}
	return out, UpstreamUsage{Usage: u, Model: meta.Model, Err: uerr}, err
}

// AnthropicResponseToOpenAI translates an Anthropic upstream's complete
// 2xx response body into a Chat Completions response for the client.
func (st *State) AnthropicResponseToOpenAI(body []byte) ([]byte, error) {
	r, err := anthropic.DecodeResponse(body)
	if err != nil {
		return nil, fmt.Errorf("translating Anthropic response to OpenAI: %w", err)
	}
	return st.encodeOpenAIResponse(r)
}

// estimatedUsage is the usage of an answer whose provider reported no
// counts, told to its client and recorded alike: input tokens as given,
// output a quarter of the text and arguments the model wrote (rounded up),
// the answer's service tier kept.
func estimatedUsage(input int64, r *ir.Response) ir.Usage {
	var chars int64
	for i := range r.Content {
		chars += int64(len(r.Content[i].Text) + len(r.Content[i].Arguments))
	}
	return ir.Usage{InputTokens: input, OutputTokens: ir.EstimateTokens(chars), ServiceTier: r.Usage.ServiceTier, Estimated: true}
}

// UpstreamUsage is what the gateway prices a complete upstream answer
// from: the usage in the provider's own convention and the model it
// reported, as anthropic.ResponseUsage or openai.ResponseUsage read them.
// Err is that reader's error (an error body, no usage object).
type UpstreamUsage struct {
	Usage ir.Usage
	Model string
	Err   error
}

// AnthropicResponseToOpenAIWithUsage is AnthropicResponseToOpenAI that
// also reads the upstream's usage (anthropic.ResponseUsage), in the same
// pass over body when it can. The usage is returned even when the
// translation fails. body must not be modified until it returns. An
// answer without usage counts (a compatible server's {}) tells its client,
// and returns (Estimated, no Err), the estimate: inputEstimate's prompt
// tokens (called only then) and a quarter of the answer's bytes.
func (st *State) AnthropicResponseToOpenAIWithUsage(body []byte, inputEstimate func() int64) ([]byte, UpstreamUsage, error) {
	rd := anthropic.ReadResponse(body)
	uu := UpstreamUsage{Usage: rd.Usage, Model: rd.Meta.Model, Err: rd.UsageErr}
	if rd.Err != nil {
		return nil, uu, fmt.Errorf("translating Anthropic response to OpenAI: %w", rd.Err)
	}
	if rd.UsageErr != nil {
		est := estimatedUsage(inputEstimate(), rd.Response)
		rd.Response.Usage, rd.Response.HasUsage = est, true
		uu.Usage, uu.Err = est, nil
	}
	out, err := st.encodeOpenAIResponse(rd.Response)
	return out, uu, err
}

// encodeOpenAIResponse writes a decoded Anthropic answer for the OpenAI
// client: a Chat Completions response, or a Responses API one.
func (st *State) encodeOpenAIResponse(r *ir.Response) ([]byte, error) {
	if r.Created == 0 {
		r.Created = st.Created
	}
	st.keepThinking(r.Content)
	if st.Responses {
		out, err := openai.EncodeResponsesResponse(r, st.responsesAnswer())
		if err != nil {
			return nil, fmt.Errorf("translating Anthropic response to the Responses API: %w", err)
		}
		return out, nil
	}
	out, err := openai.EncodeResponse(r, st.RequestedModel, st.ToolNames)
	if err != nil {
		return nil, fmt.Errorf("translating Anthropic response to OpenAI: %w", err)
	}
	return out, nil
}

// responsesAnswer is how a Responses API answer is written for the client.
func (st *State) responsesAnswer() openai.ResponsesAnswer {
	return openai.ResponsesAnswer{Model: st.RequestedModel, Created: st.Created, Names: st.ToolNames, Namespaces: st.Namespaces,
		Keep: st.KeepItem, EncryptedContent: st.EncryptedContent}
}

// ErrorToOpenAI translates an Anthropic upstream error (status and body)
// into the status and body an OpenAI client expects: {"error":{message,
// type, param, code}} with code = the Anthropic error type; 529 becomes 503
// (type server_error); other statuses, 429 included, are kept. A body that
// is already OpenAI-shaped is kept.
func ErrorToOpenAI(status int, body []byte) (int, []byte) {
	if openai.IsErrorBody(body) {
		return openai.ErrorStatus(&ir.Error{Status: status}), body
	}
	return openai.EncodeError(anthropic.DecodeError(status, body))
}

// ErrorToAnthropic translates an OpenAI upstream error (status and body)
// into the status and body an Anthropic client expects:
// {"type":"error","error":{type, message}}, the type chosen by status (503
// becomes 529 overloaded_error; insufficient_quota becomes billing_error
// with its 429 kept). A body that is already Anthropic-shaped is kept.
func ErrorToAnthropic(status int, body []byte) (int, []byte) {
	if anthropic.IsErrorBody(body) {
		return anthropic.ErrorStatus(&ir.Error{Status: status, Kind: ir.KindForStatus(status)}), body
	}
	return anthropic.EncodeError(openai.DecodeError(status, body))
}

// RequestErrorToOpenAI renders an error from a request translator for an
// OpenAI client (400 with the translator's message unless the error says
// otherwise).
func RequestErrorToOpenAI(err error) (int, []byte) {
	return openai.EncodeError(asIRError(err))
}

// RequestErrorToAnthropic renders an error from a request translator for
// an Anthropic client.
func RequestErrorToAnthropic(err error) (int, []byte) {
	return anthropic.EncodeError(asIRError(err))
}

func asIRError(err error) *ir.Error {
	var e *ir.Error
	if errors.As(err, &e) {
		return e
	}
	return &ir.Error{Status: 400, Kind: ir.ErrInvalidRequest, Message: err.Error()}
}
