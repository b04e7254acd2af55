// Command anthropic is a minimal Anthropic SDK client of the Metis gateway:
// one non-streaming and one streaming Messages call, printing the text and
// the usage of each.
//
// The Anthropic SDK adds /v1/messages itself, so the base URL is the gateway
// root; the gateway token goes where the SDK expects its API key.
//
//	METIS_URL=http://127.0.0.1:8422 METIS_KEY=gw_01J... go run ./examples/gateway/go/anthropic
//
// METIS_ANTHROPIC_MODEL picks the model (default "haiku", a gateway alias).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "anthropic example:", err)
		os.Exit(1)
	}
}

func run() error {
	baseURL, key := os.Getenv("METIS_URL"), os.Getenv("METIS_KEY")
	if baseURL == "" || key == "" {
		return errors.New("set METIS_URL (gateway root, e.g. http://127.0.0.1:8422) and METIS_KEY (a gw_ token)")
	}
	model := os.Getenv("METIS_ANTHROPIC_MODEL")
	if model == "" {
		model = "haiku"
	}
	client := anthropic.NewClient(
		option.WithBaseURL(strings.TrimRight(baseURL, "/")),
		option.WithAPIKey(key),
		// Batch client: let the gateway own the retry policy.
		option.WithMaxRetries(0),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	params := anthropic.MessageNewParams{
		Model:     anthropic.Model(model),
		MaxTokens: 64,
		Messages: []anthropic.MessageParam{
			anthropic.NewUserMessage(anthropic.NewTextBlock("Say hello in one short sentence.")),
		},
	}

	msg, err := client.Messages.New(ctx, params)
	if err != nil {
		return fmt.Errorf("non-streaming call: %w", err)
	}
	text := textOf(msg)
	fmt.Printf("non-streaming: model=%s stop_reason=%s text=%q\n", msg.Model, msg.StopReason, text)
	fmt.Printf("non-streaming usage: input_tokens=%d output_tokens=%d cache_read=%d cache_creation=%d\n",
		msg.Usage.InputTokens, msg.Usage.OutputTokens, msg.Usage.CacheReadInputTokens, msg.Usage.CacheCreationInputTokens)
	if text == "" || msg.Usage.OutputTokens == 0 {
		return errors.New("non-streaming reply has no text or no usage")
	}

	stream := client.Messages.NewStreaming(ctx, params)
	var acc anthropic.Message
	fmt.Print("streaming: ")
	for stream.Next() {
		ev := stream.Current()
		if err := acc.Accumulate(ev); err != nil {
			return fmt.Errorf("streaming call: %w", err)
		}
		if ev.Type == "content_block_delta" && ev.Delta.Type == "text_delta" {
			fmt.Print(ev.Delta.Text)
		}
	}
	fmt.Println()
	if err := stream.Err(); err != nil {
		return fmt.Errorf("streaming call: %w", err)
	}
	fmt.Printf("streaming usage: input_tokens=%d output_tokens=%d stop_reason=%s\n",
		acc.Usage.InputTokens, acc.Usage.OutputTokens, acc.StopReason)
	if textOf(&acc) == "" || acc.Usage.OutputTokens == 0 || acc.StopReason == "" {
		return errors.New("streamed reply has no text, no usage or no stop_reason")
	}
	return nil
}

func textOf(m *anthropic.Message) string {
	var b strings.Builder
	for _, block := range m.Content {
		if block.Type == "text" {
			b.WriteString(block.Text)
		}
	}
	return b.String()
}
