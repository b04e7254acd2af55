// Command responses is a minimal client of the Metis gateway's Responses
// API (POST /v1/responses, what Codex CLI and the OpenAI Agents SDK use):
// one non-streaming and one streaming call, printing the text and the
// usage of each. The gateway forwards it to OpenAI models as sent and
// translates it for Claude models.
//
// As for Chat Completions, the base URL is the gateway root plus /v1 and
// the gateway token goes where the SDK expects its API key.
//
//	METIS_URL=http://127.0.0.1:8422 METIS_KEY=gw_01J... go run ./examples/gateway/go/responses
//
// METIS_RESPONSES_MODEL picks the model (default "gpt-5-mini"; "haiku",
// an alias of the example Caddyfile, reaches Claude).
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
	"github.com/openai/openai-go/v3/responses"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "responses example:", err)
		os.Exit(1)
	}
}

func run() error {
	baseURL, key := os.Getenv("METIS_URL"), os.Getenv("METIS_KEY")
	if baseURL == "" || key == "" {
		return errors.New("set METIS_URL (gateway root, e.g. http://127.0.0.1:8422) and METIS_KEY (a gw_ token)")
	}
	model := os.Getenv("METIS_RESPONSES_MODEL")
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
	params := responses.ResponseNewParams{
		Model: model,
		Input: responses.ResponseNewParamsInputUnion{OfString: openai.String("Say hello in one short sentence.")},
		// Room for a reasoning model's hidden reasoning as well as the answer.
		MaxOutputTokens: openai.Int(2048),
	}

	resp, err := client.Responses.New(ctx, params)
	if err != nil {
		return fmt.Errorf("non-streaming call: %w", err)
	}
	fmt.Printf("non-streaming: model=%s status=%s text=%q\n", resp.Model, resp.Status, resp.OutputText())
	fmt.Printf("non-streaming usage: input_tokens=%d (cached %d) output_tokens=%d (reasoning %d)\n",
		resp.Usage.InputTokens, resp.Usage.InputTokensDetails.CachedTokens,
		resp.Usage.OutputTokens, resp.Usage.OutputTokensDetails.ReasoningTokens)
	if resp.Usage.TotalTokens == 0 {
		return errors.New("non-streaming reply has no usage")
	}

	// A Responses stream ends with response.completed (or .incomplete, or
	// .failed), which holds the usage: nothing to ask for.
	stream := client.Responses.NewStreaming(ctx, params)
	var done responses.Response
	fmt.Print("streaming: ")
	for stream.Next() {
		switch ev := stream.Current(); ev.Type {
		case "response.output_text.delta":
			fmt.Print(ev.Delta)
		case "response.completed", "response.incomplete":
			done = ev.Response
		}
	}
	fmt.Println()
	if err := stream.Err(); err != nil {
		return fmt.Errorf("streaming call: %w", err)
	}
	fmt.Printf("streaming usage: input_tokens=%d output_tokens=%d status=%s\n",
		done.Usage.InputTokens, done.Usage.OutputTokens, done.Status)
	if done.Usage.TotalTokens == 0 {
		return errors.New("streamed reply has no usage")
	}
	return nil
}
