package metis

// Review 29r3 of 47af85c and 5a50f1d.

import (
	"io"
	"strings"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// 47af85c hides a key written inside {env.…} in api_key (review 29R2:
// "{env.gsk_…}: only upper-case words joined by '_' … are echoed now"),
// but a header line is the other place a credential is written (README's
// Azure form "header api-key {env.AZURE_OPENAI_API_KEY}", Helicone-Auth),
// and a header whose placeholder comes out empty is a config error that
// quotes the written text: a key pasted inside the braces is printed by
// `caddy run`/`caddy reload`/`caddy validate` and returned by the admin
// API's /load. The api_key path shows "(a placeholder, not shown)" for
// the same text.
func TestHeaderLineKeyInsideBracesNotEchoed(t *testing.T) {
	for _, c := range []struct{ header, secret string }{
		{"api-key", "3f9a0c1e5b7d4a2f8e6c0b1a9d7f5e3c"}, // Azure: 32 hex
		{"Helicone-Auth", "sk-helicone-abcdefg-hijklmn-opqrstu-vwxyz01"},
		{"x-goog-api-key", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"},
	} {
		_, err := newProvider(&ProviderConfig{Name: "azure", Type: "openai",
			BaseURL: "https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21",
			Headers: map[string]string{c.header: "{env." + c.secret + "}"}})
		if err == nil {
			t.Fatalf("header %s {env.<key>}: no error", c.header)
		}
		if strings.Contains(err.Error(), c.secret) {
			t.Errorf("header %s {env.<key>}: the config error quotes the key: %v", c.header, err)
		}
	}
}

// 47af85c: warnErrored warns of an error inside a 200 only when its type
// is in retryableStreamError/rateLimitedClass's allow-list, so every type
// not on it is taken as "the request's own". README: "an error inside a
// 200 (a stream's error event, …; not one of the request's own, such as
// invalid_request_error), is a WARN provider answered an error". vLLM's
// error for its own failure (EngineDeadError, an exception in the
// generator) is type "InternalServerError" (code 500): the same error
// answered with its 500 status is warned, but in a stream's error event
// it is now silent, recorded UPSTREAM_ERROR in the llm call line only.
func TestInStreamServerErrorOfOtherVendorsIsWarned(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "INFO", "")
	_, tok := e2eKey(g, "vllm-dead")
	up.Enqueue("/v1/chat/completions", fakeupstream.Reply{Events: []string{
		"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-5-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n",
		"data: {\"error\":{\"object\":\"error\",\"message\":\"EngineCore encountered an issue. See stack trace for the root cause.\",\"type\":\"InternalServerError\",\"param\":null,\"code\":500}}\n\n",
		"data: [DONE]\n\n",
	}})
	resp := g.post("/v1/chat/completions", tok, `{"model":"gpt-5-mini","stream":true,"messages":[{"role":"user","content":"x"}]}`)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	calls := waitLogLines(t, logPath, "llm call", 1)
	if len(calls) != 1 || calls[0]["error_class"] != "UPSTREAM_ERROR" {
		t.Fatalf("llm call lines %v: want one, UPSTREAM_ERROR", calls)
	}
	if warns := logLinesMsg(t, logPath, "provider answered an error"); len(warns) != 1 {
		t.Errorf("WARN lines %v: want one for the provider's InternalServerError (a server fault, not the request's)", warns)
	}
}
