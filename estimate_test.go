package metis

import (
	"strings"
	"testing"
)

func TestEstimatePromptTokens(t *testing.T) {
	png := "iVBORw0KGgo" + strings.Repeat("QUJD+/9=", 100_000) // 800 KB of base64
	pdf := "JVBERi0xLjcK" + strings.Repeat("QUJD", 50_000)
	words := strings.Repeat("plain words, not base64 ", 100) // 2,400 bytes of text
	short := strings.Repeat("QUJD", 100)                     // 400 bytes: counted as text
	for _, c := range []struct {
		name, body, payload string
		fixed               int64
	}{
		{"text only", `{"messages":[{"role":"user","content":"` + words + `"}]}`, "", 0},
		{"anthropic image", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"` + png + `"}}]}]}`, png, 1000},
		{"anthropic pdf", `{"messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"` + pdf + `"}}]}]}`, pdf, 2000},
		{"openai data url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,` + png + `"}}]}]}`, "data:image/png;base64," + png, 1000},
		{"openai pdf file", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"data:application/pdf;base64,` + pdf + `"}}]}]}`, "data:application/pdf;base64," + pdf, 2000},
		{"escaped slashes", `{"data":"` + strings.ReplaceAll(png, "/", `\/`) + `"}`, strings.ReplaceAll(png, "/", `\/`), 1000},
		{"short base64 is text", `{"data":"` + short + `"}`, "", 0},
		{"long text with a data: prefix", `{"url":"data:text/plain,` + words + `"}`, "", 0},
		// Base64 a tool read from a binary file is text to the provider.
		{"base64 in a tool result", `{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"` + png + `"}]}]}`, "", 0},
		{"base64 as message text", `{"messages":[{"role":"user","content":"` + png + `"}]}`, "", 0},
		{"base64 array element", `{"data":["` + png + `"]}`, "", 0},
		// An image by URL is fetched and billed as an image (review 23R2).
		{"openai image by url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"detail":"low", "url":"https://example.com/cat.png"}}]}]}`, "https://example.com/cat.png", 1000},
		{"responses image by url", `{"input":[{"role":"user","content":[{"type":"input_image","image_url":"https://example.com/cat.png"}]}]}`, "https://example.com/cat.png", 1000},
		{"anthropic image by url", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}},{"type":"text","text":"what is this?"}]}]}`, "https://example.com/cat.png", 1000},
		{"anthropic document by url", `{"messages":[{"role":"user","content":[{"type":"document","title":"a \"}{[\\\" title","cache_control":{"type":"ephemeral"},"source":{"url":"https://example.com/a.pdf","type":"url"}}]}]}`, "https://example.com/a.pdf", 2000},
		{"a url source that is not fetched is text", `{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","url":"https://example.com/cat.png"}}]}]}`, "", 0},
		{"a link in text is text", `{"messages":[{"role":"user","content":"see https://example.com/cat.png"}]}`, "", 0},
		{"a url member elsewhere is text", `{"tools":[{"type":"function","function":{"name":"f","url":"https://example.com/api"}}]}`, "", 0},
	} {
		want := int64(len(c.body)-len(c.payload)+3)/4 + c.fixed
		if got := estimatePromptTokens([]byte(c.body)); got != want {
			t.Errorf("%s: %d tokens, want %d", c.name, got, want)
		}
	}
}

// A text/* data URL is read as text: its decoded bytes count, not its
// base64.
func TestEstimatePromptTokensTextDataURL(t *testing.T) {
	b64 := strings.Repeat("QUJD", 1000) // 4,000 bytes of base64: 3,000 decoded
	body := `{"file":{"file_data":"data:text/plain;base64,` + b64 + `"}}`
	want := int64(len(body)-len(b64)+3000+3) / 4
	if got := estimatePromptTokens([]byte(body)); got != want {
		t.Errorf("%d tokens, want %d", got, want)
	}
}

// A stream sent as one JSON array counts the bytes its chunks or events
// wrote, in each format, as the same stream read as SSE does (review
// 29U): never the JSON around them.
func TestEstimateAnswerTokensOfAStreamSentAsAnArray(t *testing.T) {
	for _, c := range []struct {
		name   string
		format streamFormat
		body   string
		want   int64
	}{
		{"chat chunks", formatChat, `[{"choices":[{"delta":{"role":"assistant"}}]},{"choices":[{"delta":{"content":"Hello, world"}}]},` +
			`{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{\"a\":1}"}}]}}]},{"choices":[{"delta":{},"finish_reason":"stop"}]}]`, 5},
		{"messages events", formatMessages, `[{"type":"message_start","message":{"model":"m","content":[]}},` +
			`{"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"abcd"}},` +
			`{"type":"content_block_delta","delta":{"type":"text_delta","text":"Hello, world"}},{"type":"message_stop"}]`, 4},
		{"responses events", formatResponses, `[{"type":"response.created","response":{"output":[]}},` +
			`{"type":"response.output_text.delta","delta":"Hello, world"}]`, 3},
		{"not JSON", formatChat, `Hello, world`, 3},
		{"an answer", formatChat, `{"choices":[{"message":{"content":"Hello, world"}}]}`, 3},
	} {
		if got := estimateAnswerTokens(c.format, []byte(c.body)); got != c.want {
			t.Errorf("%s: %d tokens, want %d", c.name, got, c.want)
		}
	}
}
