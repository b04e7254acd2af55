package floor

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"

	"github.com/metisgateway/metis/bench/mock"
)

func TestForward(t *testing.T) {
	s, err := mock.Listen("127.0.0.1:0", mock.Profile{Name: "test", Chunks: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := &Forward{Upstream: s.URL + "/"}
	if err := f.Provision(caddy.Context{}); err != nil {
		t.Fatal(err)
	}
	defer f.Cleanup()

	for _, tc := range []struct {
		body, ctype, want string
	}{
		{`{"model":"m","max_tokens":4,"messages":[]}`, "application/json", `"output_tokens":16`},
		{`{"model":"m","max_tokens":4,"stream":true,"messages":[]}`, "text/event-stream", "event: message_stop"},
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/v1/messages?beta=true", strings.NewReader(tc.body))
		req.Header.Set("X-Api-Key", "k")
		if err := f.ServeHTTP(rec, req, nil); err != nil {
			t.Fatal(err)
		}
		if rec.Code != 200 || rec.Header().Get("Content-Type") != tc.ctype || !strings.Contains(rec.Body.String(), tc.want) {
			t.Fatalf("%s: %d %v %s", tc.ctype, rec.Code, rec.Header(), rec.Body.String())
		}
		if tc.ctype == "application/json" && rec.Header().Get("Content-Length") == "" {
			t.Errorf("no Content-Length on a plain answer")
		}
		if tc.ctype == "text/event-stream" && !rec.Flushed {
			t.Errorf("stream not flushed")
		}
	}
	if err := (&Forward{Upstream: "ftp://x"}).Provision(caddy.Context{}); err == nil {
		t.Error("ftp upstream accepted")
	}
}
