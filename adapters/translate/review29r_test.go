package translate

import (
	"strings"
	"testing"
)

// An OpenAI-compatible server in NestJS (and Express/Fastify defaults)
// answers {"statusCode":400,"message":"…","error":"Bad Request"}. errtext's
// new order reads "message" before "error" (the reason, not the status
// text), but openai.DecodeError never gets there: parseErrorDetail takes
// a string "error" as the message first, so an Anthropic client reads
// only "Bad Request" (review 29r). The same body from an Anthropic-type
// provider to an OpenAI client gives the reason: the two directions
// disagree.
func TestErrorToAnthropicReadsTheMessageNotTheStatusText(t *testing.T) {
	body := []byte(`{"statusCode":400,"message":"max_tokens must not be greater than 4096","error":"Bad Request"}`)
	_, out := ErrorToAnthropic(400, body)
	if !strings.Contains(string(out), "max_tokens must not be greater than 4096") {
		t.Errorf("Anthropic client told %s", out)
	}
	_, out = ErrorToOpenAI(400, body)
	if !strings.Contains(string(out), "max_tokens must not be greater than 4096") {
		t.Errorf("OpenAI client told %s", out)
	}
}
