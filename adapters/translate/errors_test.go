package translate

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/vcr"
	"github.com/metisgateway/metis/ir"
)

func TestErrorToOpenAI(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		want       string
	}{
		{"529 overloaded becomes 503 server_error", 529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CZquRQNtQiXTvkLNPnid4"}`,
			503, `{"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded_error"}}`},
		{"429 stays 429", 429, `{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}`,
			429, `{"error":{"message":"Number of request tokens has exceeded your per-minute rate limit","type":"rate_limit_error","param":null,"code":"rate_limit_error"}}`},
		{"400", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}`,
			400, `{"error":{"message":"max_tokens: Field required","type":"invalid_request_error","param":null,"code":"invalid_request_error"}}`},
		{"401", 401, `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`,
			401, `{"error":{"message":"invalid x-api-key","type":"authentication_error","param":null,"code":"authentication_error"}}`},
		{"403", 403, `{"type":"error","error":{"type":"permission_error","message":"no"}}`,
			403, `{"error":{"message":"no","type":"permission_error","param":null,"code":"permission_error"}}`},
		{"404", 404, `{"type":"error","error":{"type":"not_found_error","message":"model: claude-nope"}}`,
			404, `{"error":{"message":"model: claude-nope","type":"invalid_request_error","param":null,"code":"not_found_error"}}`},
		{"500 api_error", 500, `{"type":"error","error":{"type":"api_error","message":"Internal server error"}}`,
			500, `{"error":{"message":"Internal server error","type":"server_error","param":null,"code":"api_error"}}`},
		{"non-JSON body from a proxy", 502, `<html>bad gateway</html>`,
			502, `{"error":{"message":"<html>bad gateway</html>","type":"server_error","param":null,"code":"api_error"}}`},
		{"empty body", 504, ``,
			504, `{"error":{"message":"Gateway Timeout","type":"server_error","param":null,"code":"timeout_error"}}`},
		{"a prompt too long is OpenAI's context_length_exceeded, its > unescaped", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 215000 tokens > 200000 maximum"}}`,
			400, `{"error":{"message":"prompt is too long: 215000 tokens > 200000 maximum","type":"invalid_request_error","param":null,"code":"context_length_exceeded"}}`},
		{"input and max_tokens past the window (Claude before 4.5) is context_length_exceeded too", 400, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"input length and `max_tokens` exceed context limit: 170000 + 64000 > 200000, decrease input length or `max_tokens` and try again\"}}",
			400, "{\"error\":{\"message\":\"input length and `max_tokens` exceed context limit: 170000 + 64000 > 200000, decrease input length or `max_tokens` and try again\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"context_length_exceeded\"}}"},
		{"already OpenAI-shaped", 400, `{"error":{"message":"m","type":"invalid_request_error","param":"x","code":"c"}}`,
			400, `{"error":{"message":"m","type":"invalid_request_error","param":"x","code":"c"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := ErrorToOpenAI(c.status, []byte(c.body))
			if st != c.wantStatus {
				t.Errorf("status %d, want %d", st, c.wantStatus)
			}
			if strings.Contains(string(body), `\u00`) {
				t.Errorf("escaped: %s", body)
			}
			assertJSON(t, body, c.want)
		})
	}
}

func TestErrorToAnthropic(t *testing.T) {
	fx := vcr.MustLoad("openai_error_400_unsupported_max_tokens.vcr.yaml")[0]
	cases := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		want       string
	}{
		{"fixture 400 unsupported_parameter", fx.Status, fx.ResponseBody,
			400, `{"type":"error","error":{"type":"invalid_request_error","message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."}}`},
		{"503 becomes 529 overloaded_error", 503, `{"error":{"message":"The server is overloaded","type":"server_error","param":null,"code":null}}`,
			529, `{"type":"error","error":{"type":"overloaded_error","message":"The server is overloaded"}}`},
		{"429 rate limit stays 429", 429, `{"error":{"message":"Rate limit reached for gpt-4o","type":"tokens","param":null,"code":"rate_limit_exceeded"}}`,
			429, `{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached for gpt-4o"}}`},
		{"429 insufficient_quota is billing_error", 429, `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`,
			429, `{"type":"error","error":{"type":"billing_error","message":"You exceeded your current quota"}}`},
		{"401", 401, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`,
			401, `{"type":"error","error":{"type":"authentication_error","message":"Incorrect API key provided"}}`},
		{"404 model_not_found", 404, `{"error":{"message":"The model does not exist","type":"invalid_request_error","code":"model_not_found"}}`,
			404, `{"type":"error","error":{"type":"not_found_error","message":"The model does not exist"}}`},
		{"413", 413, `{"error":{"message":"too big"}}`, 413, `{"type":"error","error":{"type":"request_too_large","message":"too big"}}`},
		{"500", 500, `{"error":{"message":"boom","type":"server_error"}}`, 500, `{"type":"error","error":{"type":"api_error","message":"boom"}}`},
		{"string error from a compatible server", 400, `{"error":"model 'llama9' not found"}`, 400, `{"type":"error","error":{"type":"invalid_request_error","message":"model 'llama9' not found"}}`},
		{"vLLM's error object, a context overflow said Anthropic's way", 400, `{"object":"error","message":"This model's maximum context length is 8192 tokens.","type":"BadRequestError","param":null,"code":400}`,
			400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: This model's maximum context length is 8192 tokens."}}`},
		{"context_length_exceeded said Anthropic's way", 400, `{"error":{"message":"Your input exceeds the context window of this model.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}`,
			400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: Your input exceeds the context window of this model."}}`},
		{"plain text", 502, `upstream connect error`, 502, `{"type":"error","error":{"type":"api_error","message":"upstream connect error"}}`},
		{"already Anthropic-shaped", 400, `{"type":"error","error":{"type":"invalid_request_error","message":"m"}}`, 400, `{"type":"error","error":{"type":"invalid_request_error","message":"m"}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body := ErrorToAnthropic(c.status, []byte(c.body))
			if st != c.wantStatus {
				t.Errorf("status %d, want %d", st, c.wantStatus)
			}
			assertJSON(t, body, c.want)
		})
	}
}

func TestRequestErrorRendering(t *testing.T) {
	_, _, err := OpenAIToAnthropicRequest([]byte(`{"model":"gpt-4o","n":2,"messages":[]}`), "claude-x", Options{})
	st, body := RequestErrorToOpenAI(err)
	if st != 400 {
		t.Errorf("status %d", st)
	}
	assertJSON(t, body, `{"error":{"message":"n=2 is not supported: Anthropic models return one choice","type":"invalid_request_error","param":"n","code":"invalid_request_error"}}`)
	_, _, err = AnthropicToOpenAIRequest([]byte(`{"model":"c","max_tokens":1,"messages":[],"stop_sequences":["1","2","3","4","5"]}`), "gpt-4o", Options{})
	st, body = RequestErrorToAnthropic(err)
	if st != 400 {
		t.Errorf("status %d", st)
	}
	assertJSON(t, body, `{"type":"error","error":{"type":"invalid_request_error","message":"5 stop sequences given; the target model accepts at most 4"}}`)
	st, body = RequestErrorToAnthropic(fmt.Errorf("wrapped: %w", errors.New("plain")))
	if st != 400 {
		t.Errorf("status %d", st)
	}
	assertJSON(t, body, `{"type":"error","error":{"type":"invalid_request_error","message":"wrapped: plain"}}`)
	var ie *ir.Error
	if !errors.As(err, &ie) {
		t.Error("request errors must unwrap to *ir.Error")
	}
}
