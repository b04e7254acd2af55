package metis

// End-to-end: request bodies a client compresses (Content-Encoding on the
// request). Anthropic's API takes them (Claude Code can compress its
// bodies for api.anthropic.com); through the gateway such a body was
// refused with 415 (audit 25C).

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

func compress(t *testing.T, coding string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "bare deflate":
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "zstd":
		w, _ = zstd.NewWriter(&buf)
	}
	if _, err := w.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A compressed body is decoded, checked and priced as the same body
// uncompressed; the provider gets it decoded, without the
// Content-Encoding, byte for byte as the client wrote it.
func TestCompressedRequestBodiesAreDecoded(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "compressing")
	for _, c := range []struct {
		coding, path, body, fixture string
	}{
		{"gzip", "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hi, héllo."}]}`, fakeupstream.FixtureAnthropicNonStream},
		{"zstd", "/v1/messages", `{"model":"claude-haiku-4-5", "max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Hi."}]}`, fakeupstream.FixtureAnthropicStream},
		{"deflate", "/v1/chat/completions", `{"model":"gpt-5-mini","messages":[{"role":"user","content":"Hi."}]}`, fakeupstream.FixtureOpenAINonStream},
		// What .NET's DeflateStream and PHP's gzdeflate write as deflate:
		// read as in the provider's answers (review 25R: it got a 400).
		{"bare deflate", "/v1/messages", `{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"Hi."}]}`, fakeupstream.FixtureAnthropicNonStream},
	} {
		t.Run(c.coding, func(t *testing.T) {
			before := len(up.RequestsTo(c.path))
			up.Enqueue(c.path, fakeupstream.FromFixture(c.fixture, 0))
			req, _ := http.NewRequest(http.MethodPost, g.URL+c.path, bytes.NewReader(compress(t, c.coding, []byte(c.body))))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", strings.TrimPrefix(c.coding, "bare "))
			req.Header.Set("X-Api-Key", tok)
			req.Header.Set("Anthropic-Version", "2023-06-01")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := e2eRead(t, resp)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := up.RequestsTo(c.path)
			if len(got) != before+1 {
				t.Fatalf("the provider got %d requests, want 1", len(got)-before)
			}
			sent := got[len(got)-1]
			if sent.Body != c.body {
				t.Errorf("the provider got %q, want the client's body decoded: %q", sent.Body, c.body)
			}
			if ce := sent.Header.Get("Content-Encoding"); ce != "" {
				t.Errorf("the provider got Content-Encoding %q with a decoded body", ce)
			}
		})
	}
	calls := e2eCalls(g, 4)
	for _, call := range calls {
		if call["status"] != float64(200) || call["priced"] != true || call["cost_usd"] == nil {
			t.Errorf("call %v: want a priced success", call)
		}
	}
}

// A compressed body is held to max_body twice: as sent, and as decoded. A
// few kilobytes of gzip that decode to over the limit (a compression bomb)
// are refused with 413 in the caller's shape; bytes that do not decode get
// a 400 that names the coding; a coding the gateway does not read, a 415.
// None reaches the provider, and each is recorded as request.rejected.
func TestCompressedRequestBodiesRefused(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "bomb")
	bomb := compress(t, "gzip", []byte(`{"model":"gpt-5-mini","messages":[{"role":"user","content":"`+strings.Repeat("0", 33<<20)+`"}]}`))
	if len(bomb) > 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed", len(bomb))
	}
	for _, c := range []struct {
		name, coding string
		body         []byte
		status       int
		want         string
	}{
		{"bomb", "gzip", bomb, 413, "decompresses to over the gateway's limit"},
		{"corrupt gzip", "gzip", []byte("\x1f\x8b\x08\x00 not gzip at all"), 400, "not valid gzip"},
		{"not zstd", "zstd", []byte(`{"model":"gpt-5-mini"}`), 400, "not valid zstd"},
		{"brotli", "br", []byte{0x0b, 0x02, 0x80}, 415, `Content-Encoding \"br\" is not supported`},
		{"two codings", "gzip, gzip", compress(t, "gzip", compress(t, "gzip", []byte(`{}`))), 415, "is not supported"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/chat/completions", bytes.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Content-Encoding", c.coding)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := e2eRead(t, resp)
			if resp.StatusCode != c.status || !strings.Contains(body, c.want) {
				t.Errorf("%d %s; want %d saying %q", resp.StatusCode, body, c.status, c.want)
			}
			if _, ok := e2ePath(e2eJSON(t, body), "error", "message").(string); !ok {
				t.Errorf("not an OpenAI error: %s", body)
			}
		})
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d refused requests reached the provider", n)
	}
	if n := len(g.events(store.TypeRequestRejected)); n != 5 {
		t.Errorf("%d request.rejected events, want 5", n)
	}
}
