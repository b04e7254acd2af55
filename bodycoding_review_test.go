package metis

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"
)

// trickle yields its head, then blocks until release is closed, as a
// client sending the rest of its body a byte a minute does.
type trickle struct {
	head    *bytes.Reader
	reached chan struct{}
	release chan struct{}
}

func (t *trickle) Read(p []byte) (int, error) {
	if t.head.Len() > 0 {
		return t.head.Read(p)
	}
	select {
	case <-t.reached:
	default:
		close(t.reached)
	}
	<-t.release
	return 0, errors.New("connection reset by peer")
}

// Review 25R: a zstd body's memory follows the bytes that arrived, as a
// plain body's does (readAnnounced, audit 12C / 16A: a client that trickles
// its body holds 64 KiB, not max_body). A zstd frame may declare a window
// of up to max_body (32 MiB), and klauspost's decoder allocates the whole
// window at the frame's first block: 16 bytes sent held 32 MiB while the
// client trickled the rest. RFC 9659 bounds the zstd content coding's
// window at 8 MB; reading the sent bytes before decoding them would make
// memory follow arrival.
func TestReviewZstdTrickleHoldsLittle(t *testing.T) {
	g := &Gateway{MaxBodySize: defaultMaxBody, logger: zap.NewNop()}
	// Frame header: magic, descriptor 0 (no FCS, not single segment), window
	// descriptor exponent 15 (2^25 = 32 MiB); then a raw block, not last,
	// of one byte.
	head := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 15 << 3, 0x08, 0x00, 0x00, '{'}
	tr := &trickle{head: bytes.NewReader(head), reached: make(chan struct{}), release: make(chan struct{})}
	r := httptest.NewRequest(http.MethodPost, "/v1/messages", io.NopCloser(tr))
	r.ContentLength = -1
	r.Header.Set("Content-Encoding", "zstd")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf bytes.Buffer
		_ = g.readBody(httptest.NewRecorder(), r, &buf, "zstd")
	}()
	select {
	case <-tr.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("the decoder never asked for the rest of the body")
	}
	runtime.ReadMemStats(&after)
	close(tr.release)
	<-done
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Errorf("%d bytes of a zstd body, the rest still arriving, allocated %d bytes (%.1f MiB); a plain body holds 64 KiB", len(head), grew, float64(grew)/(1<<20))
	}
}

// caddy-security (greenpau/caddy-security, the Caddy-native auth portal,
// `inject headers with claims`) adds X-Token-Subject, X-Token-User-Name,
// X-Token-User-Email and X-Token-User-Roles; Vouch Proxy X-Vouch-User and
// X-Vouch-Idp-Claims-*. identityHeader holds back neither: behind the auth
// plugin most Caddy sites use, each developer's e-mail address and roles
// reach the provider on every same-shape call.
func TestReviewIdentityHeadersOfCaddySecurity(t *testing.T) {
	for _, h := range []string{"X-Token-Subject", "X-Token-User-Email", "X-Token-User-Name", "X-Token-User-Roles", "X-Vouch-User"} {
		if !identityHeader(http.CanonicalHeaderKey(h)) {
			t.Errorf("%s would reach the provider", h)
		}
	}
}

// A plain body sits in a buffer of its size (TestLargeBodyBufferFitsIt:
// n + 64 KiB), held for the whole call. A compressed one is read with no
// announced length, so readAnnounced doubles its buffer: 20 MiB decoded sat
// in a ~35 MiB buffer for the call's duration (and ~53 MiB at the last
// growth). Anthropic-shape agents resend whole conversations, so the bodies
// that get compressed are the big ones.
func TestReviewDecodedBodyBufferFitsIt(t *testing.T) {
	g := &Gateway{MaxBodySize: defaultMaxBody, logger: zap.NewNop()}
	const n = 20 << 20
	var z bytes.Buffer
	w := gzip.NewWriter(&z)
	_, _ = w.Write(bytes.Repeat([]byte("x"), n))
	_ = w.Close()
	r := httptest.NewRequest(http.MethodPost, "/v1/messages", &z)
	r.Header.Set("Content-Encoding", "gzip")
	var buf bytes.Buffer
	if aerr := g.readBody(httptest.NewRecorder(), r, &buf, "gzip"); aerr != nil {
		t.Fatal(aerr.msg)
	}
	if buf.Len() != n || buf.Cap() > n+64<<10 {
		t.Errorf("a body that decodes to %d bytes is held in a buffer of %d (%.1f MiB), want at most %d", buf.Len(), buf.Cap(), float64(buf.Cap())/(1<<20), n+64<<10)
	}
}
