package metis

// Review 25R of session 25's diff: end-to-end findings.

import (
	"bytes"
	"compress/flate"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// The scrub of mid-stream errors (9812434) runs only once the usage
// tracker has flagged an error, and the OpenAI tracker flags only
// {"error":{...}}. The gateway's own OpenAI error reader (parseErrorDetail)
// also takes {"error":"text"} (TGI, llama.cpp-style servers) and vLLM's
// {"object":"error","message":…}; the OpenAI→Anthropic translator turns
// them into an `event: error` — and the provider key a proxy echoed in
// them reached the client, relayed and translated.
func TestReviewStreamedErrorOtherShapesScrubbed(t *testing.T) {
	g, _ := oddUpstream(t, "", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-5-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n")
		echo := "invalid key Bearer " + testOpenAIKey
		if r.Header.Get("X-Shape") == "vllm" {
			fmt.Fprintf(w, "data: {\"object\":\"error\",\"message\":%q,\"type\":\"BadRequestError\",\"code\":401}\n\n", echo)
			return
		}
		fmt.Fprintf(w, "data: {\"error\":%q}\n\n", echo)
	})
	_, tok := e2eKey(g, "stream-echo-shapes")
	for _, c := range []struct{ name, path, body, shape string }{
		{"string error relayed", "/v1/chat/completions", `{"model":"gpt-5-mini","stream":true,"messages":[{"role":"user","content":"Hi."}]}`, "string"},
		{"string error translated", "/v1/messages", `{"model":"gpt-5-mini","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`, "string"},
		{"vllm error relayed", "/v1/chat/completions", `{"model":"gpt-5-mini","stream":true,"messages":[{"role":"user","content":"Hi."}]}`, "vllm"},
		{"vllm error translated", "/v1/messages", `{"model":"gpt-5-mini","max_tokens":16,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`, "vllm"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp := g.post(c.path, tok, c.body, "Anthropic-Version", "2023-06-01", "X-Shape", c.shape)
			body := e2eRead(t, resp)
			if strings.Contains(body, testOpenAIKey) {
				t.Errorf("the client got the provider key in the stream:\n%s", body)
			}
		})
	}
	// Read as the provider's error, not as a cut stream.
	for _, call := range e2eCalls(g, 4) {
		if call["error_class"] != errUpstream {
			t.Errorf("call with a streamed error recorded as %v, want %s", call["error_class"], errUpstream)
		}
	}
}

// A body sent with Content-Encoding: deflate as a bare deflate stream (what
// .NET's DeflateStream, PHP's gzdeflate and many hand-rolled clients write
// under that name) got a 400 "not valid deflate (zlib: invalid header)".
// The gateway reads both forms in provider answers (README: "gzip, x-gzip
// or deflate (zlib's or bare) are decoded"; openDeflate in forward.go);
// its request decoder should use the same openDeflate.
func TestReviewBareDeflateRequestBody(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "bare-deflate")
	body := `{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hi."}]}`
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.DefaultCompression)
	_, _ = w.Write([]byte(body))
	_ = w.Close()
	up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0))
	req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", &buf)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "deflate")
	req.Header.Set("X-Api-Key", tok)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got := e2eRead(t, resp)
	if resp.StatusCode != 200 {
		t.Fatalf("bare deflate body: %d %s; want it read as the gateway reads a bare-deflate answer", resp.StatusCode, got)
	}
	if sent := up.RequestsTo("/v1/messages"); len(sent) != 1 || sent[0].Body != body {
		t.Errorf("the provider got %v, want the decoded body", sent)
	}
}

// 70129aa: "404 and 405 messages name the path with the prefix the site
// stripped" (README: "Its 404s and 405s name paths with the prefix the
// client sent"). The 404's notes for unserved APIs still name bare
// /v1/... paths — under handle_path /llm/* "use /v1/chat/completions"
// sends the developer to the team's web site, as the commit's own test
// says of "did you mean".
func TestReviewPrefixedSite404NotesNameThePrefix(t *testing.T) {
	up := fakeupstream.New(t)
	db := tempDB(t)
	g := e2eStartCustom(t, func(gw, an int) string {
		return string(caddyfile.Format([]byte(fmt.Sprintf(`{
	admin off
	persist_config off
	grace_period 1s
	log {
		level ERROR
	}
	metis {
		%s
	}
}
http://127.0.0.1:%d {
	handle_path /llm/* {
		metis_gateway
	}
	respond "the team's web site" 200
}
http://127.0.0.1:%d {
	metis_analytics
}
`, gatewayConfig(db, up.URL, ""), gw, an))))
	})
	_, tok := e2eKey(g, "prefixed-notes")
	for _, c := range []struct{ sent, want, unwanted string }{
		{"/llm/v1/completions", "use /llm/v1/chat/completions", "use /v1/chat/completions"},
		{"/llm/v1/responses/resp_123/cancel", "serves POST /llm/v1/responses", "serves POST /v1/responses"},
	} {
		t.Run(strings.ReplaceAll(c.sent, "/", "_"), func(t *testing.T) {
			resp := g.post(c.sent, tok, `{"model":"nano","prompt":"hi"}`)
			body := e2eRead(t, resp)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("status %d, want 404: %s", resp.StatusCode, body)
			}
			msg, _ := e2ePath(e2eJSON(t, body), "error", "message").(string)
			if strings.Contains(msg, c.unwanted) || !strings.Contains(msg, c.want) {
				t.Errorf("404 message %q; want %q (the path under the site's prefix)", msg, c.want)
			}
		})
	}
}
