package metis

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// A retry-after longer than a Duration holds (centuries, or +Inf) is a
// wait past any max_retry_wait: converted as it stood, it wrapped to a
// negative wait and the gateway retried at once (audit 12B).
func TestRetryAfterBeyondADuration(t *testing.T) {
	for _, h := range []http.Header{
		{"Retry-After": {"99999999999"}},
		{"Retry-After": {"+Inf"}},
		{"Retry-After-Ms": {"10000000000000"}},
	} {
		wait, ok := retryAfter(h)
		if !ok || wait < 24*time.Hour {
			t.Errorf("%v: wait %v (%v), want one longer than any max_retry_wait", h, wait, ok)
		}
	}
	if wait, ok := retryAfter(http.Header{"Retry-After-Ms": {"1500"}}); !ok || wait != 1500*time.Millisecond {
		t.Errorf("retry-after-ms 1500: %v %v", wait, ok)
	}
}

// A timeout connecting to the provider, or to the proxy the environment
// names, is a connection failure (retried, recorded unreachable); one
// waiting for the answer is not.
func TestConnectFailed(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, c := range []struct {
		err  error
		want bool
	}{
		{dial, true},
		{&net.OpError{Op: "proxyconnect", Net: "tcp", Err: dial}, true},
		{errors.New("net/http: TLS handshake timeout"), true},
		{errors.New("net/http: timeout awaiting response headers"), false},
		{&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}, false},
	} {
		if got := connectFailed(c.err); got != c.want {
			t.Errorf("connectFailed(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestDecodeBodyDeflate: "deflate" is read in zlib's format, as RFC 9110
// says, and as the bare deflate stream some servers send under the name;
// the header goes, and the length with it.
func TestDecodeBodyDeflate(t *testing.T) {
	const want = `{"usage":{"input_tokens":3}}`
	var zb, fb bytes.Buffer
	zw := zlib.NewWriter(&zb)
	_, _ = io.WriteString(zw, want)
	_ = zw.Close()
	fw, _ := flate.NewWriter(&fb, flate.DefaultCompression)
	_, _ = io.WriteString(fw, want)
	_ = fw.Close()
	for name, enc := range map[string][]byte{"zlib": zb.Bytes(), "raw": fb.Bytes()} {
		resp := &http.Response{Header: http.Header{"Content-Encoding": {"deflate"}, "Content-Length": {"99"}},
			Body: io.NopCloser(bytes.NewReader(enc)), ContentLength: 99}
		decodeBody(resp)
		got, err := io.ReadAll(resp.Body)
		if err != nil || string(got) != want {
			t.Errorf("%s: read %q, %v; want %q", name, got, err, want)
		}
		if resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Content-Length") != "" || resp.ContentLength != -1 {
			t.Errorf("%s: headers %v, ContentLength %d after decoding", name, resp.Header, resp.ContentLength)
		}
	}
}

// TestDecodeBodyDeflateOneByte: a deflate body of one byte is cut, not an
// empty answer (review 13R2).
func TestDecodeBodyDeflateOneByte(t *testing.T) {
	resp := &http.Response{Header: http.Header{"Content-Encoding": {"deflate"}}, Body: io.NopCloser(bytes.NewReader([]byte{0x78}))}
	decodeBody(resp)
	if _, err := io.ReadAll(resp.Body); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reading a one-byte deflate body: %v, want io.ErrUnexpectedEOF", err)
	}
}

// Every authenticating proxy's identity header is held back, whatever its
// branch in identityHeader, and the clients' own headers go on.
func TestIdentityHeaders(t *testing.T) {
	for _, h := range []string{
		"X-Auth-Request-Email", "X-Auth-Request-Access-Token", "X-Authentik-Groups", "X-Amzn-Oidc-Identity",
		"X-Goog-Authenticated-User-Email", "X-Goog-Iap-Jwt-Assertion", "X-Ms-Client-Principal-Name",
		"X-Ms-Token-Aad-Access-Token", "X-Pomerium-Jwt-Assertion", "X-Remote-User", "X-Webauth-User",
		"Cf-Access-Authenticated-User-Email", "Remote-Groups", "Tailscale-User-Login",
	} {
		if !identityHeader(http.CanonicalHeaderKey(h)) {
			t.Errorf("%s would reach the provider", h)
		}
	}
	for _, h := range []string{
		"X-Stainless-Lang", "X-App", "X-Claude-Code-Session-Id", "Anthropic-Beta", "Anthropic-Version",
		"User-Agent", "Content-Type", "Accept", "Cf", "X-", "R", "Traceparent",
	} {
		if identityHeader(http.CanonicalHeaderKey(h)) {
			t.Errorf("a client's %s would be held back", h)
		}
	}
}
