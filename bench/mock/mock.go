// Package mock is the benchmark's upstream: a deterministic fake of the
// Anthropic Messages API (POST /v1/messages, /v1/messages/count_tokens) and
// the OpenAI Chat Completions API (POST /v1/chat/completions).
//
// Answers are built from the request alone (model, stream, max_tokens and
// the body size), carry provider-shaped usage and, when not streamed, a
// Content-Length. Streams are deadline-scheduled: content chunk k (from 0)
// is sent at arrival + TTFT + k×Interval, so a stream of N chunks lasts
// TTFT + (N−1)×Interval under any load (a late chunk is sent at once,
// without pushing the later ones back).
// The mock is built to cost as little CPU as possible, since it shares the
// machine with the gateway under test.
package mock

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tidwall/gjson"
)

// Profile is the timing of the mock's answers (perf-notes §9.2).
type Profile struct {
	// Name labels the profile in reports.
	Name string `json:"name"`
	// Delay is the wait before a non-streamed answer.
	Delay time.Duration `json:"delay"`
	// TTFT is the wait before a stream's first content chunk; the headers
	// and the stream's preamble (message_start, role chunk) go out at once.
	TTFT time.Duration `json:"ttft"`
	// Chunks is the number of content chunks of a stream, one output token
	// each. A request's max_tokens (or max_completion_tokens) below it
	// shortens the stream, so one mock serves short and long streams.
	Chunks int `json:"chunks"`
	// Interval separates consecutive content chunks.
	Interval time.Duration `json:"interval"`
	// Jitter adds a uniform ±Jitter to Delay and TTFT (never below zero).
	Jitter time.Duration `json:"jitter,omitempty"`
	// FailPct is the percentage (0–100) of requests answered with a
	// provider-shaped 429 rate-limit error.
	FailPct float64 `json:"fail_pct,omitempty"`
}

// The protocol's profiles (perf-notes §9.2).
var (
	// M0 answers at once: the CPU cost and throughput ceiling of a proxy.
	M0 = Profile{Name: "M0", Chunks: 16}
	// M20 answers after 20 ms: capacity under concurrency.
	M20 = Profile{Name: "M20", Delay: 20 * time.Millisecond, TTFT: 20 * time.Millisecond, Chunks: 16}
	// MStream streams 20 ms to the first token, then 64 chunks 20 ms apart
	// (about 1.3 s per stream).
	MStream = Profile{Name: "M-stream", TTFT: 20 * time.Millisecond, Chunks: 64, Interval: 20 * time.Millisecond}
)

// ProfileByName returns M0, M20 or MStream by name ("M0", "M20",
// "M-stream"; case as written).
func ProfileByName(name string) (Profile, error) {
	for _, p := range []Profile{M0, M20, MStream} {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("unknown mock profile %q (want M0, M20 or M-stream)", name)
}

// Handler serves the mock API with one profile. It is safe for concurrent use.
type Handler struct {
	p Profile
}

// NewHandler returns a Handler answering with profile p.
func NewHandler(p Profile) *Handler {
	if p.Chunks < 0 {
		p.Chunks = 0
	}
	return &Handler{p: p}
}

// Profile returns the handler's profile.
func (h *Handler) Profile() Profile { return h.p }

var bufPool = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, 8<<10)) }}

// Shapes of the two APIs.
const (
	shapeAnthropic = iota
	shapeOpenAI
)

// ServeHTTP answers one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	var shape int
	count := false
	switch r.URL.Path {
	case "/v1/messages":
		shape = shapeAnthropic
	case "/v1/messages/count_tokens":
		shape, count = shapeAnthropic, true
	case "/v1/chat/completions":
		shape = shapeOpenAI
	default:
		http.Error(w, "mock: unknown path "+r.URL.Path, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "mock: POST only", http.StatusMethodNotAllowed)
		return
	}
	in := bufPool.Get().(*bytes.Buffer)
	in.Reset()
	defer bufPool.Put(in)
	if _, err := in.ReadFrom(r.Body); err != nil {
		http.Error(w, "mock: reading body: "+err.Error(), http.StatusBadRequest)
		return
	}
	body := in.Bytes()
	f := gjson.GetManyBytes(body, "model", "stream", "max_tokens", "max_completion_tokens", "stream_options.include_usage")
	req := request{
		shape:        shape,
		model:        f[0].String(),
		stream:       f[1].Bool(),
		inputTokens:  int64(len(body)+3) / 4,
		includeUsage: f[4].Bool(),
		chunks:       h.p.Chunks,
	}
	if req.model == "" {
		req.model = "mock-model"
	}
	for _, mt := range []gjson.Result{f[2], f[3]} {
		if mt.Exists() && mt.Int() > 0 && int(mt.Int()) < req.chunks {
			req.chunks = int(mt.Int())
		}
	}
	out := bufPool.Get().(*bytes.Buffer)
	out.Reset()
	defer bufPool.Put(out)

	if h.p.FailPct > 0 && rand.Float64()*100 < h.p.FailPct {
		writeRateLimited(w, out, shape)
		return
	}
	switch {
	case count:
		out.WriteString(`{"input_tokens":`)
		out.WriteString(strconv.FormatInt(req.inputTokens, 10))
		out.WriteByte('}')
		writeJSON(w, out.Bytes())
	case req.stream:
		h.stream(w, r, out, &req, arrived)
	default:
		sleepUntil(arrived.Add(h.jittered(h.p.Delay)))
		if shape == shapeAnthropic {
			appendAnthropicMessage(out, &req)
		} else {
			appendOpenAICompletion(out, &req)
		}
		writeJSON(w, out.Bytes())
	}
}

// request is what the mock reads from a request body.
type request struct {
	shape        int
	model        string
	stream       bool
	includeUsage bool
	inputTokens  int64
	chunks       int
}

func (h *Handler) jittered(d time.Duration) time.Duration {
	if h.p.Jitter <= 0 {
		return d
	}
	d += time.Duration(rand.Int64N(int64(2*h.p.Jitter)+1)) - h.p.Jitter
	return max(d, 0)
}

// sleepUntil waits for a deadline; a past deadline returns at once.
func sleepUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}

func writeJSON(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	h["Request-Id"] = []string{"req_mock"}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

func writeRateLimited(w http.ResponseWriter, out *bytes.Buffer, shape int) {
	if shape == shapeAnthropic {
		out.WriteString(`{"type":"error","error":{"type":"rate_limit_error","message":"mock: rate limited"}}`)
	} else {
		out.WriteString(`{"error":{"message":"mock: rate limited","type":"requests","param":null,"code":"rate_limit_exceeded"}}`)
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(out.Len())}
	h["Retry-After"] = []string{"0"}
	w.WriteHeader(http.StatusTooManyRequests)
	_, _ = w.Write(out.Bytes())
}

// words are the streamed tokens, cycled.
var words = []string{"The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog. "}

// completionText is the text of every non-streamed answer (16 tokens).
const completionText = "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog."

const nonStreamOutputTokens = 16

func appendAnthropicMessage(b *bytes.Buffer, req *request) {
	b.WriteString(`{"id":"msg_mock0000000000000000000001","type":"message","role":"assistant","model":`)
	appendQuoted(b, req.model)
	b.WriteString(`,"content":[{"type":"text","text":"` + completionText + `"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":`)
	b.WriteString(strconv.FormatInt(req.inputTokens, 10))
	b.WriteString(`,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":`)
	b.WriteString(strconv.Itoa(nonStreamOutputTokens))
	b.WriteString(`,"service_tier":"standard"}}`)
}

func appendOpenAICompletion(b *bytes.Buffer, req *request) {
	b.WriteString(`{"id":"chatcmpl-mock000000000000000000001","object":"chat.completion","created":1767225600,"model":`)
	appendQuoted(b, req.model)
	b.WriteString(`,"choices":[{"index":0,"message":{"role":"assistant","content":"` + completionText + `","refusal":null},"finish_reason":"stop"}],"usage":{"prompt_tokens":`)
	b.WriteString(strconv.FormatInt(req.inputTokens, 10))
	b.WriteString(`,"completion_tokens":`)
	b.WriteString(strconv.Itoa(nonStreamOutputTokens))
	b.WriteString(`,"total_tokens":`)
	b.WriteString(strconv.FormatInt(req.inputTokens+nonStreamOutputTokens, 10))
	b.WriteString(`,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}},"system_fingerprint":"fp_mock"}`)
}

// appendQuoted writes s as a JSON string. Model names from requests are
// plain ASCII in practice; anything needing escapes goes through strconv.
func appendQuoted(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			b.Write(strconv.AppendQuoteToASCII(nil, s))
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}

// stream writes an SSE answer: the preamble at once, then the content
// chunks on their deadlines, then the closing events with usage.
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, b *bytes.Buffer, req *request, arrived time.Time) {
	hd := w.Header()
	hd["Content-Type"] = []string{"text/event-stream"}
	hd["Cache-Control"] = []string{"no-cache"}
	hd["Request-Id"] = []string{"req_mock"}
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if req.shape == shapeAnthropic {
		b.WriteString("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_mock0000000000000000000001\",\"type\":\"message\",\"role\":\"assistant\",\"model\":")
		appendQuoted(b, req.model)
		b.WriteString(`,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`)
		b.WriteString(strconv.FormatInt(req.inputTokens, 10))
		b.WriteString(`,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1,"service_tier":"standard"}}}` + "\n\n")
		b.WriteString("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n")
	} else {
		appendOpenAIChunkHead(b, req)
		b.WriteString(`"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null}]}` + "\n\n")
	}
	if !send(w, rc, b) {
		return
	}
	first := arrived.Add(h.jittered(h.p.TTFT))
	done := r.Context().Done()
	for k := 0; k < req.chunks; k++ {
		if d := time.Until(first.Add(time.Duration(k) * h.p.Interval)); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-done:
				t.Stop()
				return
			case <-t.C:
			}
		}
		word := words[k%len(words)]
		if req.shape == shapeAnthropic {
			b.WriteString("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"")
			b.WriteString(word)
			b.WriteString("\"}}\n\n")
		} else {
			appendOpenAIChunkHead(b, req)
			b.WriteString(`"choices":[{"index":0,"delta":{"content":"`)
			b.WriteString(word)
			b.WriteString(`"},"finish_reason":null}]}` + "\n\n")
		}
		if !send(w, rc, b) {
			return
		}
	}
	if req.shape == shapeAnthropic {
		b.WriteString("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
		b.WriteString("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":")
		b.WriteString(strconv.Itoa(req.chunks))
		b.WriteString("}}\n\n")
		b.WriteString("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
	} else {
		appendOpenAIChunkHead(b, req)
		b.WriteString(`"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n")
		if req.includeUsage {
			appendOpenAIChunkHead(b, req)
			b.WriteString(`"choices":[],"usage":{"prompt_tokens":`)
			b.WriteString(strconv.FormatInt(req.inputTokens, 10))
			b.WriteString(`,"completion_tokens":`)
			b.WriteString(strconv.Itoa(req.chunks))
			b.WriteString(`,"total_tokens":`)
			b.WriteString(strconv.FormatInt(req.inputTokens+int64(req.chunks), 10))
			b.WriteString("}}\n\n")
		}
		b.WriteString("data: [DONE]\n\n")
	}
	send(w, rc, b)
}

func appendOpenAIChunkHead(b *bytes.Buffer, req *request) {
	b.WriteString(`data: {"id":"chatcmpl-mock000000000000000000001","object":"chat.completion.chunk","created":1767225600,"model":`)
	appendQuoted(b, req.model)
	b.WriteString(`,"system_fingerprint":"fp_mock",`)
}

// send writes and flushes the buffered events and empties the buffer. It
// reports false when the client is gone.
func send(w io.Writer, rc *http.ResponseController, b *bytes.Buffer) bool {
	_, err := w.Write(b.Bytes())
	b.Reset()
	if err != nil {
		return false
	}
	return rc.Flush() == nil
}

// Server is a running mock on a loopback listener.
type Server struct {
	// URL is the base URL, e.g. http://127.0.0.1:41234 (no trailing slash).
	URL string
	srv *http.Server
	ln  net.Listener
}

// Listen starts a mock with profile p on addr (host:port; port 0 picks a
// free one) and serves it in the background.
func Listen(addr string, p Profile) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mock: listening on %s: %w", addr, err)
	}
	s := &Server{
		URL: "http://" + ln.Addr().String(),
		ln:  ln,
		srv: &http.Server{
			Handler:           NewHandler(p),
			ReadHeaderTimeout: time.Minute,
			IdleTimeout:       5 * time.Minute,
			MaxHeaderBytes:    1 << 20,
		},
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server and closes its connections.
func (s *Server) Close() error {
	if err := s.srv.Close(); err != nil {
		return fmt.Errorf("mock: closing %s: %w", s.URL, err)
	}
	return nil
}
