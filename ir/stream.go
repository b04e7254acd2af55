package ir

// EventType is the kind of one neutral stream event.
type EventType uint8

// Stream event kinds. A well-formed stream is MessageStart, then blocks
// (BlockStart, BlockDelta*, BlockStop) that never overlap, then one or more
// MessageDelta, then MessageStop. Ping and Error may come at any point;
// Error ends the stream.
const (
	EventMessageStart EventType = iota + 1
	EventBlockStart
	EventBlockDelta
	EventBlockStop
	EventMessageDelta
	EventMessageStop
	EventPing
	EventError
)

// DeltaType is the kind of payload a BlockDelta carries.
type DeltaType uint8

// Delta kinds.
const (
	DeltaText DeltaType = iota + 1
	DeltaArguments
	DeltaThinking
	DeltaSignature
)

// StreamEvent is one neutral stream event. Fields used per Type:
//
//   - MessageStart: ID, Model, Usage (what the provider knows so far; HasUsage).
//   - BlockStart: Index, Block (Type; ToolCallID and ToolName for tool calls;
//     Data for redacted thinking).
//   - BlockDelta: Index, Delta, Text (text, JSON fragment, thinking or signature).
//   - BlockStop: Index.
//   - MessageDelta: StopReason/StopSequence when known, Usage when HasUsage
//     (cumulative totals, to be set, not added).
//   - MessageStart and MessageDelta from a decoder that tells them apart:
//     InputCounted and OutputCounted, which sides of Usage the provider has
//     counted so far (the rest are the gateway's to estimate).
//   - Error: Err.
//
// Index counts blocks from 0 in the order they start.
type StreamEvent struct {
	Type         EventType
	ID           string
	Model        string
	Index        int
	Block        Part
	Delta        DeltaType
	Text         string
	StopReason   StopReason
	StopSequence string
	Usage        Usage
	HasUsage     bool
	// InputCounted: the provider reported input_tokens. OutputCounted: it
	// reported the answer's output_tokens (Anthropic's message_start
	// count, 1 or so, is not the answer's).
	InputCounted, OutputCounted bool
	Err                         *Error
}
