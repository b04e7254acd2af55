// Command openai is a minimal OpenAI SDK client of the Metis gateway: one
// non-streaming and one streaming Chat Completions call, printing the text
// and the usage of each.
//
// The OpenAI SDK appends /chat/completions to its base URL, so the base URL
// is the gateway root plus /v1; the gateway token goes where the SDK expects
// its API key.
//
//	METIS_URL=http://127.0.0.1:8422 METIS_KEY=gw_01J... go run ./examples/gateway/go/openai
//
// METIS_OPENAI_MODEL picks the model (default "gpt-5-mini"; any model the
// key allows works, an Anthropic alias such as "haiku" included).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "openai example:", err)
		os.Exit(1)
	}
}

func run() error {
	baseURL, key := os.Getenv("METIS_URL"), os.Getenv("METIS_KEY")
	if baseURL == "" || key == "" {
		return errors.New("set METIS_URL (gateway root, e.g. http://127.0.0.1:8422) and METIS_KEY (a gw_ token)")
	}
	model := os.Getenv("METIS_OPENAI_MODEL")
	if model == "" {
		model = "gpt-5-mini"
	}
	client := openai.NewClient(
		option.WithBaseURL(strings.TrimRight(baseURL, "/")+"/v1"),
		option.WithAPIKey(key),
		// Batch client: let the gateway own the retry policy.
		option.WithMaxRetries(0),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	params := openai.ChatCompletionNewParams{
		Model: model,
		Messages: []openai.ChatCompletionMessageParamUnion{
			openai.UserMessage("Say hello in one short sentence."),
		},
		// Room for a reasoning model's hidden reasoning as well as the
		// answer: with too little, the reply is empty (finish_reason
		// "length") and the budget was spent anyway.
		MaxCompletionTokens: openai.Int(2048),
	}

	resp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		return fmt.Errorf("non-streaming call: %w", err)
	}
	if len(resp.Choices) == 0 {
		return errors.New("non-streaming reply has no choices")
	}
	text := resp.Choices[0].Message.Content
	fmt.Printf("non-streaming: model=%s finish_reason=%s text=%q\n", resp.Model, resp.Choices[0].FinishReason, text)
	fmt.Printf("non-streaming usage: prompt_tokens=%d completion_tokens=%d total_tokens=%d\n",
		resp.Usage.PromptTokens, resp.Usage.CompletionTokens, resp.Usage.TotalTokens)
	if resp.Usage.TotalTokens == 0 {
		return errors.New("non-streaming reply has no usage")
	}
	if text == "" {
		fmt.Printf("non-streaming: no text (finish_reason %s): a reasoning model may spend all of max_completion_tokens on reasoning\n",
			resp.Choices[0].FinishReason)
	}

	// Ask for the usage chunk: without include_usage a stream reports none.
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var acc openai.ChatCompletionAccumulator
	fmt.Print("streaming: ")
	for stream.Next() {
		chunk := stream.Current()
		acc.AddChunk(chunk)
		for _, c := range chunk.Choices {
			fmt.Print(c.Delta.Content)
		}
	}
	fmt.Println()
	if err := stream.Err(); err != nil {
		return fmt.Errorf("streaming call: %w", err)
	}
	finish := ""
	if len(acc.Choices) > 0 {
		finish = string(acc.Choices[0].FinishReason)
	}
	fmt.Printf("streaming usage: prompt_tokens=%d completion_tokens=%d total_tokens=%d finish_reason=%s\n",
		acc.Usage.PromptTokens, acc.Usage.CompletionTokens, acc.Usage.TotalTokens, finish)
	if acc.Usage.TotalTokens == 0 || finish == "" {
		return errors.New("streamed reply has no usage or no finish_reason")
	}
	return nil
}
