package metis

import (
	"io"
	"testing"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// Anthropic reports an overloaded or rate-limited API after the 200 as a
// stream of one `error` event (overloaded_error); the gateway retries it
// as it does a 529, and once the retries are spent relays it and records
// UPSTREAM_ERROR. README (session 29): "A provider that answers a 429 or
// a 5xx once the retries are spent is a WARN `provider answered an
// error`"; review 28L's reason was the operator filtering on WARN who saw
// an overloaded provider only in INFO lines. The same overload, told in
// the stream rather than the status, still gets no WARN (review 29r).
func TestStreamedOverloadAfterRetriesIsWarned(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "INFO", "")
	_, tok := e2eKey(g, "overloaded-stream")
	for range 3 { // max_retries 2
		up.Enqueue("/v1/messages", anthropicStreamError("overloaded_error", "Overloaded"))
	}
	resp := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":8,"stream":true,"messages":[{"role":"user","content":"x"}]}`, e2eAnthropicHdr...)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := up.Count("/v1/messages"); n != 3 {
		t.Fatalf("upstream saw %d requests, want 3", n)
	}
	lines := waitLogLines(t, logPath, "llm call", 1)
	if len(lines) != 1 || lines[0]["error_class"] != "UPSTREAM_ERROR" {
		t.Fatalf("llm call lines %v, want one UPSTREAM_ERROR", lines)
	}
	if w := logLinesMsg(t, logPath, "provider answered an error"); len(w) != 1 {
		t.Errorf("%d WARN \"provider answered an error\" lines for a stream that was overloaded_error on all 3 attempts, want 1", len(w))
	}
}
