package translate

import (
	"fmt"

	"github.com/metisgateway/metis/adapters/anthropic"
	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/ir"
)

// StreamTranslator turns one upstream SSE stream into the client's shape.
// Every method returns complete SSE bytes to write to the client as they
// are (possibly none, possibly several events); the slices are the
// caller's to keep. After the stream has ended (message_stop/[DONE] sent,
// or an error event) every method returns nothing.
type StreamTranslator interface {
	// Event takes one upstream SSE event: name is the event: field (empty
	// for OpenAI) and data its data payload (for OpenAI including the final
	// "[DONE]"). A malformed event returns an error and changes nothing;
	// the caller usually then writes Error(...) and stops.
	Event(name string, data []byte) ([]byte, error)
	// Finish is called when the upstream body ended. It writes whatever
	// was held back (the final message_delta and message_stop, or the
	// finish/usage chunks and [DONE]) when the upstream had said why it
	// stopped, and an error event when the stream was cut short.
	Finish() []byte
	// Error writes a mid-stream error event in the client's shape and ends
	// the stream. errType may be an Anthropic error type
	// (overloaded_error…) or an OpenAI one (server_error…).
	Error(errType, message string) []byte
	// Ping writes a keep-alive in the client's shape (Anthropic event:
	// ping; OpenAI an SSE comment).
	Ping() []byte
}

// NewOpenAIToAnthropicStream translates an OpenAI upstream's chunks into
// Anthropic events for the client.
func (st *State) NewOpenAIToAnthropicStream() StreamTranslator {
	return &openAIToAnthropic{enc: anthropic.StreamEncoder{
		Model: st.RequestedModel, Names: st.ToolNames, InputEstimate: st.InputEstimate,
	}}
}

// NewAnthropicToOpenAIStream translates an Anthropic upstream's events
// into Chat Completions chunks for the client, or Responses API events
// when the client sent a Responses API request.
func (st *State) NewAnthropicToOpenAIStream() StreamTranslator {
	t := &anthropicToOpenAI{st: st}
	if st.Responses {
		t.enc = &openai.ResponsesStreamEncoder{ResponsesAnswer: st.responsesAnswer(), InputEstimate: st.InputEstimate}
	} else {
		t.enc = &openai.StreamEncoder{Model: st.RequestedModel, Created: st.Created, IncludeUsage: st.IncludeUsage, Names: st.ToolNames,
			InputEstimate: st.InputEstimate}
	}
	if st.KeepThinking != nil {
		t.thinking = &thinkingCollector{}
	}
	return t
}

func errorFor(errType, message string) *ir.Error {
	k := anthropic.KindFromType(errType)
	if message == "" {
		message = "upstream error"
	}
	return &ir.Error{Status: 500, Kind: k, Message: message}
}

type openAIToAnthropic struct {
	dec openai.StreamDecoder
	enc anthropic.StreamEncoder
	evs []ir.StreamEvent
}

func (t *openAIToAnthropic) Event(_ string, data []byte) ([]byte, error) {
	if t.enc.Done() {
		return nil, nil
	}
	evs, err := t.dec.Decode(data, t.evs[:0])
	t.evs = evs
	if err != nil {
		return nil, fmt.Errorf("translating OpenAI stream to Anthropic: %w", err)
	}
	var out []byte
	for i := range evs {
		out = t.enc.Encode(out, &evs[i])
	}
	return out, nil
}

func (t *openAIToAnthropic) Finish() []byte { return t.enc.Finish(nil) }

func (t *openAIToAnthropic) Error(errType, message string) []byte {
	return t.enc.Error(nil, errorFor(errType, message))
}

func (t *openAIToAnthropic) Ping() []byte { return t.enc.Ping(nil) }

// openAIStreamEncoder writes neutral events in one of the OpenAI stream
// formats: Chat Completions chunks or Responses API events.
type openAIStreamEncoder interface {
	Done() bool
	Encode(dst []byte, ev *ir.StreamEvent) []byte
	Finish(dst []byte) []byte
	Error(dst []byte, err *ir.Error) []byte
	Ping(dst []byte) []byte
}

type anthropicToOpenAI struct {
	dec      anthropic.StreamDecoder
	enc      openAIStreamEncoder
	evs      []ir.StreamEvent
	st       *State
	thinking *thinkingCollector // nil unless the thinking is kept
}

func (t *anthropicToOpenAI) Event(name string, data []byte) ([]byte, error) {
	if t.enc.Done() {
		return nil, nil
	}
	evs, err := t.dec.Decode(name, data, t.evs[:0])
	t.evs = evs
	if err != nil {
		return nil, fmt.Errorf("translating Anthropic stream to OpenAI: %w", err)
	}
	var out []byte
	for i := range evs {
		out = t.enc.Encode(out, &evs[i])
		if t.thinking != nil {
			t.thinking.add(t.st, &evs[i])
		}
	}
	return out, nil
}

func (t *anthropicToOpenAI) Finish() []byte {
	if t.thinking != nil && !t.enc.Done() {
		// The upstream ended without message_stop, the answer whole (its
		// stop and usage came) or not: its thinking is kept all the same.
		t.thinking.add(t.st, &ir.StreamEvent{Type: ir.EventMessageStop})
	}
	return t.enc.Finish(nil)
}

func (t *anthropicToOpenAI) Error(errType, message string) []byte {
	return t.enc.Error(nil, errorFor(errType, message))
}

func (t *anthropicToOpenAI) Ping() []byte { return t.enc.Ping(nil) }
