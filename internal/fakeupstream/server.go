// Package fakeupstream is a scriptable fake Anthropic and OpenAI provider
// for tests. It listens on loopback, records every request it receives and
// answers with replies built from the real recordings in testdata/fixtures,
// replayed byte for byte, or with replies a test enqueues.
//
// One server speaks both shapes: point an Anthropic provider's base_url at
// Server.URL and an OpenAI provider's base_url at Server.URL+"/v1".
//
// Typical use in a gateway test:
//
//	up := fakeupstream.New(t)
//	up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0))
//	r := fakeupstream.AnthropicTextStream("", "hi")
//	r.Gap, r.DieAfter = 10*time.Millisecond, 3 // a slow stream that breaks
//	up.Enqueue("/v1/messages", r)
//	... call the gateway ...
//	got := up.RequestsTo("/v1/messages")[0]
//	if got.APIKey() != "sk-provider" { ... } // the provider key, never the gw_ token
//
// With nothing enqueued, DefaultReply answers every call a client makes.
// Replies are built from the fixtures (FromFixture) or synthesized in their
// exact format (AnthropicStream, AnthropicMessage, OpenAITextStream,
// OpenAICompletion, AnthropicError, OpenAIError). ClaudeCodeBashRoundTrip
// and ClaudeBinary drive the real Claude Code (see tools/CLAUDE_CODE.md).
package fakeupstream

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/vcr"
)

// Reply is one scripted response.
type Reply struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Header is sent as is. When it has no Content-Type, one is chosen:
	// text/event-stream for Events, application/json otherwise.
	Header http.Header
	// Body is a non-streamed body, or a whole SSE body written at once.
	Body string
	// Events are SSE events (each with its terminating blank line), written
	// and flushed one by one. When set, Body is ignored.
	Events []string
	// Gap is the pause before each event after the first.
	Gap time.Duration
	// DieAfter, if >0, closes the connection abruptly after this many
	// events (an SSE Body is split into events for it; a non-SSE Body is
	// cut after this many bytes), without ending the chunked body, as a
	// provider or network failure would.
	DieAfter int
	// StallAfter, if >0, stops writing after this many events and keeps the
	// connection open until the client goes away or the server closes; use
	// it for cancellation and idle-timeout tests.
	StallAfter int
	// Delay is the pause before the status line is sent.
	Delay time.Duration
	// Match, if set, restricts which request consumes this queued reply:
	// a request it rejects skips it (and gets the next matching queued
	// reply, or the default).
	Match func(*Recorded) bool `json:"-"`
	// EchoModel makes the reply name the model the request asked for, as
	// the providers' APIs do, in place of the model it was built with: each
	// "model":"…" member of its body or events is rewritten.
	EchoModel bool
}

// Recorded is one request the server received.
type Recorded struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     string
	// Time is when the request arrived.
	Time time.Time
}

// JSON decodes the body as a JSON object; it returns nil when the body is
// not one.
func (r *Recorded) JSON() map[string]any {
	var m map[string]any
	if err := json.Unmarshal([]byte(r.Body), &m); err != nil {
		return nil
	}
	return m
}

// APIKey returns the credential the request carried: x-api-key, else the
// bearer token of Authorization.
func (r *Recorded) APIKey() string {
	if k := r.Header.Get("X-Api-Key"); k != "" {
		return k
	}
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return a[7:]
	}
	return a
}

// Server is a running fake provider.
type Server struct {
	// URL is the base URL, like http://127.0.0.1:PORT (no trailing slash).
	URL string
	// OnRequest, if set before requests arrive, is called with each
	// recorded request before it is answered.
	OnRequest func(*Recorded)

	ts       *httptest.Server
	done     chan struct{}
	once     sync.Once
	canceled chan time.Time

	mu       sync.Mutex
	queues   map[string][]Reply
	requests []Recorded
}

// New starts a fake provider on 127.0.0.1 with a free port. If t is not
// nil, the server is closed when the test ends.
func New(t testing.TB) *Server {
	s := newServer()
	s.ts = httptest.NewServer(s)
	s.URL = s.ts.URL
	if t != nil {
		t.Cleanup(s.Close)
	}
	return s
}

// Listen starts a fake provider on addr (host:port; port 0 picks one).
func Listen(addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := newServer()
	s.ts = httptest.NewUnstartedServer(s)
	s.ts.Listener.Close()
	s.ts.Listener = l
	s.ts.Start()
	s.URL = s.ts.URL
	return s, nil
}

func newServer() *Server {
	return &Server{
		done:     make(chan struct{}),
		canceled: make(chan time.Time, 256),
		queues:   map[string][]Reply{},
	}
}

// Close stops the server, ending stalled or delayed replies first.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.done)
		s.ts.CloseClientConnections()
		s.ts.Close()
	})
}

// Enqueue scripts the next reply for path (the URL path without query,
// e.g. "/v1/messages" or "/v1/chat/completions"). Replies for a path are
// served first in, first out; when none is left, the default reply is
// served.
func (s *Server) Enqueue(path string, r ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queues[path] = append(s.queues[path], r...)
}

// Pending reports how many enqueued replies for path have not been served.
func (s *Server) Pending(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queues[path])
}

// Reset drops every queued reply and every recorded request.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queues = map[string][]Reply{}
	s.requests = nil
}

// Requests returns a copy of every request received so far, in order of
// arrival.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Recorded, len(s.requests))
	copy(out, s.requests)
	return out
}

// RequestsTo returns the requests received for path (query ignored).
func (s *Server) RequestsTo(path string) []Recorded {
	var out []Recorded
	for _, r := range s.Requests() {
		if r.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// Count reports how many requests were received for path (query ignored).
func (s *Server) Count(path string) int {
	return len(s.RequestsTo(path))
}

// WaitCanceled waits up to timeout for a reply in flight (delayed,
// streaming with a Gap, or stalled) to see its request cancelled by the
// client, and reports whether one did. Each cancellation is reported once.
func (s *Server) WaitCanceled(timeout time.Duration) bool {
	select {
	case <-s.canceled:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (s *Server) noteCanceled() {
	select {
	case s.canceled <- time.Now():
	default:
	}
}

// ServeHTTP records the request and answers with the next queued reply
// for its path, or the default.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rec := Recorded{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: string(body), Time: time.Now(),
	}
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		s.serveAdmin(w, r, body)
		return
	}
	if s.OnRequest != nil {
		s.OnRequest(&rec)
	}
	s.mu.Lock()
	s.requests = append(s.requests, rec)
	reply, ok := s.dequeue(&rec)
	s.mu.Unlock()
	if !ok {
		reply = defaultReply(&rec)
	}
	if reply.EchoModel {
		reply = echoModel(reply, &rec)
	}
	s.write(w, r, reply)
}

// modelMember matches a "model":"…" member of a JSON text.
var modelMember = regexp.MustCompile(`"model":"[^"\\]*"`)

// echoModel returns rp with its "model" members naming the model rec asked
// for (unchanged when the request names none).
func echoModel(rp Reply, rec *Recorded) Reply {
	m, _ := rec.JSON()["model"].(string)
	if m == "" {
		return rp
	}
	b, _ := json.Marshal(m)
	repl := `"model":` + strings.ReplaceAll(string(b), "$", "$$")
	rp.Body = modelMember.ReplaceAllString(rp.Body, repl)
	events := make([]string, len(rp.Events))
	for i, ev := range rp.Events {
		events[i] = modelMember.ReplaceAllString(ev, repl)
	}
	rp.Events = events
	return rp
}

// dequeue takes the first queued reply for the request's path that
// matches it. The caller holds s.mu.
func (s *Server) dequeue(rec *Recorded) (Reply, bool) {
	q := s.queues[rec.Path]
	for i, r := range q {
		if r.Match == nil || r.Match(rec) {
			s.queues[rec.Path] = append(q[:i:i], q[i+1:]...)
			return r, true
		}
	}
	return Reply{}, false
}

// sleep waits d, returning false when the request or the server ended first.
func (s *Server) sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		if r.Context().Err() != nil {
			s.noteCanceled()
			return false
		}
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		s.noteCanceled()
		return false
	case <-s.done:
		return false
	}
}

func (s *Server) write(w http.ResponseWriter, r *http.Request, rp Reply) {
	if !s.sleep(r, rp.Delay) {
		return
	}
	h := w.Header()
	for k, v := range rp.Header {
		h[k] = append([]string(nil), v...)
	}
	if h.Get("Content-Type") == "" {
		if len(rp.Events) > 0 || strings.HasPrefix(rp.Body, "event:") || strings.HasPrefix(rp.Body, "data:") {
			h.Set("Content-Type", "text/event-stream; charset=utf-8")
		} else {
			h.Set("Content-Type", "application/json")
		}
	}
	status := rp.Status
	if status == 0 {
		status = http.StatusOK
	}
	fl, _ := w.(http.Flusher)
	flush := func() {
		if fl != nil {
			fl.Flush()
		}
	}
	events := rp.Events
	if len(events) == 0 && (rp.StallAfter > 0 || rp.Gap > 0 || rp.DieAfter > 0) && strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
		events = vcr.SplitEvents(rp.Body)
	}
	if len(events) == 0 {
		if rp.DieAfter > 0 && rp.DieAfter < len(rp.Body) {
			w.WriteHeader(status)
			io.WriteString(w, rp.Body[:rp.DieAfter])
			flush()
			panic(http.ErrAbortHandler)
		}
		if h.Get("Content-Type") != "" && !strings.HasPrefix(h.Get("Content-Type"), "text/event-stream") {
			h.Set("Content-Length", strconv.Itoa(len(rp.Body)))
		}
		w.WriteHeader(status)
		io.WriteString(w, rp.Body)
		return
	}
	w.WriteHeader(status)
	flush()
	for i, ev := range events {
		if i > 0 && !s.sleep(r, rp.Gap) {
			return
		}
		if r.Context().Err() != nil {
			s.noteCanceled()
			return
		}
		if _, err := io.WriteString(w, ev); err != nil {
			s.noteCanceled()
			return
		}
		flush()
		n := i + 1
		if rp.DieAfter > 0 && n >= rp.DieAfter {
			panic(http.ErrAbortHandler)
		}
		if rp.StallAfter > 0 && n >= rp.StallAfter {
			select {
			case <-r.Context().Done():
				s.noteCanceled()
			case <-s.done:
			}
			return
		}
	}
}
