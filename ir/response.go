package ir

// StopReason is why the model stopped, in neutral spelling.
type StopReason string

// Stop reasons. The Anthropic and OpenAI vocabularies both map onto these;
// StopUnknown is kept for a value neither side defines.
const (
	StopEndTurn       StopReason = "end_turn"
	StopMaxTokens     StopReason = "max_tokens"
	StopSequence      StopReason = "stop_sequence"
	StopToolUse       StopReason = "tool_use"
	StopRefusal       StopReason = "refusal"
	StopPauseTurn     StopReason = "pause_turn"
	StopContextWindow StopReason = "model_context_window_exceeded"
	StopUnknown       StopReason = ""
)

// Response is a provider-neutral, complete (non-streamed) model answer.
type Response struct {
	ID    string
	Model string
	// Created is the Unix time the provider gave, 0 if none.
	Created      int64
	Content      []Part
	StopReason   StopReason
	StopSequence string
	Usage        Usage
	// HasUsage is false when the provider reported no usage at all.
	HasUsage bool
}
