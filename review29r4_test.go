package metis

// Review 29r4 of f0c22f0, 692e134, f628a75 and 6196119.

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// f628a75: requestFault keeps out of the WARN only the error types that
// contain one of its words. A failed Responses answer (a 200, billed)
// carries its cause in error.code, which the gateway passes to
// warnErrored; OpenAI's ResponseError.code enumeration
// (openai-python src/openai/types/responses/response_error.py) has four
// codes that blame the request's image and contain none of the words:
// image_too_small, image_parse_error, empty_image_file and
// failed_to_download_image (the client's URL could not be fetched). Each
// is now a WARN "provider answered an error", where image_too_large,
// invalid_image and image_file_not_found from the same list are not:
// a developer sending a thumbnail pages the operator. README: "an error
// inside a 200 … not one that blames the request … is a WARN".
func TestResponsesImageFailureCodesAreTheRequests(t *testing.T) {
	for _, code := range []string{"image_too_small", "image_parse_error", "empty_image_file", "failed_to_download_image"} {
		if !requestFault(code) {
			t.Errorf("requestFault(%q) = false: a failed Responses answer with this code (the request's image) is warned as the provider's fault", code)
		}
	}
	// The same end to end for one of them.
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "INFO", "")
	_, tok := e2eKey(g, "tiny-image")
	failed := `{"id":"resp_r29r4","object":"response","created_at":1760000000,"status":"failed","model":"gpt-5-nano-2025-08-07",` +
		`"error":{"code":"image_too_small","message":"The image is too small: it must be at least 2 pixels on each side."},"output":[],` +
		`"usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":0},"output_tokens":0,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":100}}`
	up.Enqueue("/v1/responses", fakeupstream.Reply{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: failed})
	resp := g.post("/v1/responses", tok, `{"model":"nano","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo="}]}]}`)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || body != failed {
		t.Fatalf("client got %d %s; want the failed response as sent", resp.StatusCode, body)
	}
	if calls := waitLogLines(t, logPath, "llm call", 1); len(calls) != 1 {
		t.Fatalf("llm call lines %v: want one", calls)
	}
	if warns := logLinesMsg(t, logPath, "provider answered an error"); len(warns) != 0 {
		t.Errorf("WARN lines %v for a Responses answer failed on the request's own image (image_too_small): want none", warns)
	}
}

// 692e134: quotedPlaceholder returns emptiedPlaceholder's "" for a value
// of blanks (emptiedPlaceholder's "none written"), so a header line
// written as blanks, `header api-key " "` (a value that was pasted and
// lost), is now told as
//
//	provider "azure": header Api-Key  came out empty (an unset environment variable, a missing file?)
//
// with nothing where the value goes and a cause that is not it; before
// the commit it was quoted ("   "). It has no placeholder: "needs a
// value", as an empty one is told, would be better still.
func TestBlankHeaderValueIsToldAsBlank(t *testing.T) {
	_, err := newProvider(&ProviderConfig{Name: "azure", Type: "openai", BaseURL: "https://r.example/v1",
		Headers: map[string]string{"api-key": "   "}})
	if err == nil {
		t.Fatal("a header line of blanks: no error")
	}
	if msg := err.Error(); !strings.Contains(msg, `"   "`) && !strings.Contains(msg, "needs a value") {
		t.Errorf("a header line of blanks is told %q: nothing where the value goes (before 692e134 it was quoted; or say it needs a value)", msg)
	}
}

// f0c22f0 answers an unknown gw_ token that no successful check looked
// for with Retry-After: 1 in place of X-Should-Retry: false. That window
// is any time unknown tokens come faster than the miss budget (4, then
// 10 a second) or the check fails (README: analytics queries holding
// every read connection). Claude Code does not wait 1 s between its
// retries of a 401: Retry-After: 1 only floors its first back-offs, then
// they double (measured with 2.1.332: attempts at +1.2, +2.4, +4.8,
// +9.6, +18, +34, +70, +103 s), so a developer whose key is mistyped
// waits about three minutes for "invalid gateway key" — the hang review
// 29K removed — whenever the window is open. A fresh key's first retry
// comes 1.2 s later, after the poll, so a refusal that waits for the
// poll in the gateway (at most a second) would give both a final answer.
func TestE2EClaudeCodeMistypedKeyDuringAFlood(t *testing.T) {
	bin := e2eClaudeBinary(t)
	g, _ := e2eSetup(t, "")
	defer floodUnknownTokens(g)()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	start := time.Now()
	cmd := fakeupstream.ClaudeCommand(ctx, bin, g.URL, "gw_01JMISTYPEDMISTYPEDMISTYPE0000000000000000", t.TempDir(), "", "Say hi.")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("Claude Code with a mistyped key, while unknown tokens flood the gateway, was still retrying its 401 after %v (it prints nothing meanwhile)", time.Since(start).Round(time.Second))
	}
	t.Logf("gave up after %v: %s", time.Since(start).Round(time.Millisecond), out.String())
}
