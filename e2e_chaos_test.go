package metis

// Chaos invariants (review 27C): an upstream that misbehaves at random,
// with a fixed seed, under a mix of SDK and raw clients, same-shape and
// cross-shape, some of which hang up; then the trace, the analytics, the
// metrics and the goroutines are checked against what the clients saw and
// what the upstream received. CHAOS_SEED, CHAOS_N and CHAOS_CONC change
// the run; CHAOS_REPORT=file keeps its tallies.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"

	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// chaos upstream behaviours
const (
	cbNormal    = "normal"
	cbNormalGap = "normal-gap"
	cb429       = "429"
	cb5xx       = "5xx"
	cbHijack    = "hijack-before-headers"
	cbCutEarly  = "cut-before-first-event" // stream: headers then close; body: headers then close
	cbCutMid    = "cut-mid"                // stream: after some events; body: mid-body
	cbTruncJSON = "truncated-json-200"
	cbNoUsage   = "no-usage"
	cbErrEvent  = "error-event-mid-stream"
	cbErrFirst  = "error-event-first"
	cbSlow      = "slow-first-byte"
	cbStall     = "stall-mid-stream" // stream: some events, then 1.5s of silence, then the rest
)

var chaosWeights = []struct {
	b string
	w int
}{
	{cbNormal, 30}, {cbNormalGap, 10}, {cb429, 8}, {cb5xx, 10}, {cbHijack, 5},
	{cbCutEarly, 4}, {cbCutMid, 9}, {cbTruncJSON, 5}, {cbNoUsage, 8},
	{cbErrEvent, 6}, {cbErrFirst, 3}, {cbSlow, 3}, {cbStall, 3},
}

type chaosPlan struct {
	id        int
	client    string // anthropic-sdk, openai-sdk, raw
	shape     string // anthropic, openai (inbound)
	stream    bool
	cross     bool
	model     string
	cancel    string // "", timer, midstream
	cancelAt  time.Duration
	cancelEvN int
	reject    string // "", badkey, badjson
	up        [3]string
	upParam   [3]int // retry-after ms (-1: none, -2: retry-after 1s), status, cut point
	upStatus  [3]int
}

func chaosPick(r *rand.Rand) string {
	tot := 0
	for _, c := range chaosWeights {
		tot += c.w
	}
	n := r.IntN(tot)
	for _, c := range chaosWeights {
		if n < c.w {
			return c.b
		}
		n -= c.w
	}
	return cbNormal
}

func makeChaosPlan(seed uint64, id int) chaosPlan {
	r := rand.New(rand.NewPCG(seed, uint64(id)))
	p := chaosPlan{id: id}
	switch x := r.IntN(100); {
	case x < 35:
		p.client, p.shape = "anthropic-sdk", "anthropic"
	case x < 70:
		p.client, p.shape = "openai-sdk", "openai"
	default:
		p.client = "raw"
		p.shape = []string{"anthropic", "openai"}[r.IntN(2)]
	}
	p.stream = r.IntN(2) == 0
	p.cross = r.IntN(100) < 35
	if (p.shape == "anthropic") != p.cross {
		p.model = "sonnet"
	} else {
		p.model = "nano"
	}
	if p.client == "raw" {
		switch x := r.IntN(100); {
		case x < 6:
			p.reject = []string{"badkey", "badjson"}[r.IntN(2)]
		case x < 50:
		case x < 75:
			p.cancel, p.cancelAt = "timer", time.Duration(r.IntN(700))*time.Millisecond
		default:
			if p.stream {
				p.cancel, p.cancelEvN = "midstream", 1+r.IntN(4)
			} else {
				p.cancel, p.cancelAt = "timer", time.Duration(r.IntN(700))*time.Millisecond
			}
		}
	}
	for k := range 3 {
		p.up[k] = chaosPick(r)
		switch p.up[k] {
		case cb429:
			p.upStatus[k] = 429
			if r.IntN(100) < 8 {
				p.upParam[k] = -2
			} else {
				p.upParam[k] = 20 + r.IntN(130)
			}
		case cb5xx:
			p.upStatus[k] = []int{500, 502, 503, 529}[r.IntN(4)]
			if r.IntN(100) < 20 {
				p.upParam[k] = -1
			} else {
				p.upParam[k] = 20 + r.IntN(130)
			}
		case cbCutMid, cbErrEvent, cbStall:
			p.upParam[k] = 1 + r.IntN(4)
		case cbSlow:
			p.upParam[k] = 800 + r.IntN(700)
		case cbNormalGap:
			p.upParam[k] = 1 + r.IntN(8)
		}
	}
	return p
}

type chaosAttempt struct {
	t          time.Time
	behaviour  string
	retryAfter time.Duration // -1 none
	wroteData  bool          // a non-error event or body byte went to the gateway
	waitFrom   time.Time     // a deliberate wait (slow, stall) began
	waitTo     time.Time     // it ended
	ctxDone    time.Time     // the upstream saw its request cancelled during the wait
}

type chaosUpstream struct {
	seed  uint64
	plans []chaosPlan
	mu    sync.Mutex
	att   map[int][]chaosAttempt
	other int
}

var chaosMarker = regexp.MustCompile(`chaos call (\d+) `)
var chaosUsage = regexp.MustCompile(`,"usage":\{(?:[^{}]|\{[^{}]*\})*\}`)

func chaosModelEcho(s, model string) string {
	if model == "" {
		return s
	}
	return modelMember.ReplaceAllString(s, `"model":"`+model+`"`)
}

// modelMember is declared in fakeupstream (unexported): a copy.
var modelMember = regexp.MustCompile(`"model":"[^"\\]*"`)

func (u *chaosUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	anth := r.URL.Path == "/v1/messages"
	var req struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	m := chaosMarker.FindSubmatch(body)
	b, param, status := cbNormal, 0, 0
	if m == nil {
		u.mu.Lock()
		u.other++
		u.mu.Unlock()
	}
	var id, k int
	if m != nil {
		id, _ = strconv.Atoi(string(m[1]))
		u.mu.Lock()
		k = len(u.att[id])
		u.att[id] = append(u.att[id], chaosAttempt{t: time.Now(), retryAfter: -1})
		u.mu.Unlock()
		if k < 3 && id < len(u.plans) {
			b, param, status = u.plans[id].up[k], u.plans[id].upParam[k], u.plans[id].upStatus[k]
		}
	}
	note := func(f func(a *chaosAttempt)) {
		if m == nil {
			return
		}
		u.mu.Lock()
		f(&u.att[id][k])
		u.mu.Unlock()
	}
	note(func(a *chaosAttempt) { a.behaviour = b })
	// non-stream requests: stream-only behaviours map to others
	if !req.Stream {
		switch b {
		case cbErrEvent:
			b = cbNormal
		case cbErrFirst:
			b, status, param = cb5xx, 529, 50
			if !anth {
				status = 503
			}
		}
	} else if b == cbTruncJSON {
		b, param = cbCutMid, 2
	}
	if b == cb5xx && status == 529 && !anth {
		status = 503
	}
	// the normal reply
	var rp fakeupstream.Reply
	switch {
	case anth && req.Stream:
		rp = fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0)
	case anth:
		rp = fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 0)
	case req.Stream:
		if id%2 == 0 {
			rp = fakeupstream.FromFixture(fakeupstream.FixtureOpenAIToolsStream, 0)
		} else {
			rp = fakeupstream.FromFixture(fakeupstream.FixtureOpenAIStream, 0)
		}
	default:
		rp = fakeupstream.FromFixture(fakeupstream.FixtureOpenAINonStream, 0)
	}
	rp.Body = chaosModelEcho(rp.Body, req.Model)
	for i := range rp.Events {
		rp.Events[i] = chaosModelEcho(rp.Events[i], req.Model)
	}
	fl := w.(http.Flusher)
	writeHdr := func(h http.Header, st int) {
		for kk, v := range h {
			w.Header()[kk] = v
		}
		w.WriteHeader(st)
	}
	errReply := func(st int) fakeupstream.Reply {
		if anth {
			typ := map[int]string{429: "rate_limit_error", 529: "overloaded_error"}[st]
			if typ == "" {
				typ = "api_error"
			}
			return fakeupstream.AnthropicError(st, typ, "chaos "+strconv.Itoa(st))
		}
		return fakeupstream.OpenAIError(st, "server_error", "chaos", "chaos "+strconv.Itoa(st))
	}
	switch b {
	case cb429, cb5xx:
		e := errReply(status)
		switch param {
		case -1:
		case -2:
			e.Header.Set("Retry-After", "1")
			note(func(a *chaosAttempt) { a.retryAfter = time.Second })
		default:
			e.Header.Set("Retry-After-Ms", strconv.Itoa(param))
			note(func(a *chaosAttempt) { a.retryAfter = time.Duration(param) * time.Millisecond })
		}
		e.Header.Set("Content-Length", strconv.Itoa(len(e.Body)))
		writeHdr(e.Header, status)
		_, _ = io.WriteString(w, e.Body)
		return
	case cbHijack:
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
		return
	case cbSlow:
		if !u.wait(r, time.Duration(param)*time.Millisecond, note) {
			return
		}
	case cbNoUsage:
		if len(rp.Events) > 0 {
			if anth {
				for i := range rp.Events {
					rp.Events[i] = chaosUsage.ReplaceAllString(rp.Events[i], "")
				}
			} else {
				rp.Events = fakeupstream.WithoutUsage(rp.Events)
			}
		} else {
			var mm map[string]any
			_ = json.Unmarshal([]byte(rp.Body), &mm)
			delete(mm, "usage")
			bb, _ := json.Marshal(mm)
			rp.Body = string(bb)
		}
	}
	if len(rp.Events) == 0 { // non-stream body
		switch b {
		case cbCutEarly, cbCutMid:
			rp.Header.Set("Content-Length", strconv.Itoa(len(rp.Body)))
			writeHdr(rp.Header, 200)
			if b == cbCutMid {
				_, _ = io.WriteString(w, rp.Body[:len(rp.Body)/2])
				note(func(a *chaosAttempt) { a.wroteData = true })
			}
			fl.Flush()
			panic(http.ErrAbortHandler)
		case cbTruncJSON:
			rp.Body = rp.Body[:len(rp.Body)/2]
		}
		rp.Header.Set("Content-Length", strconv.Itoa(len(rp.Body)))
		writeHdr(rp.Header, 200)
		_, _ = io.WriteString(w, rp.Body)
		note(func(a *chaosAttempt) { a.wroteData = true })
		return
	}
	events := rp.Events
	var tail string
	cut := false
	switch b {
	case cbCutEarly:
		events, cut = nil, true
	case cbCutMid:
		events, cut = events[:min(param, len(events)-2)], true
	case cbErrEvent:
		events = events[:min(param, len(events)-2)]
		if anth {
			tail = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
		} else {
			tail = "data: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
		}
	case cbErrFirst:
		events = nil
		if anth {
			tail = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
		} else {
			tail = "data: {\"error\":{\"message\":\"The server had an error while processing your request.\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n"
		}
	}
	gap := time.Duration(0)
	if b == cbNormalGap {
		gap = time.Duration(param) * time.Millisecond
	}
	if !req.Stream && b == cbStall {
		if !u.wait(r, 1500*time.Millisecond, note) {
			return
		}
	}
	writeHdr(rp.Header, 200)
	fl.Flush()
	for i, ev := range events {
		if i > 0 && gap > 0 {
			select {
			case <-time.After(gap):
			case <-r.Context().Done():
				return
			}
		}
		if _, err := io.WriteString(w, ev); err != nil {
			return
		}
		fl.Flush()
		if strings.TrimSpace(ev) != "" && !strings.HasPrefix(ev, "event: ping") {
			note(func(a *chaosAttempt) { a.wroteData = true })
		}
		if b == cbStall && i+1 == param {
			if !u.wait(r, 1500*time.Millisecond, note) {
				return
			}
		}
	}
	if tail != "" {
		_, _ = io.WriteString(w, tail)
		fl.Flush()
	}
	if cut {
		panic(http.ErrAbortHandler)
	}
}

// wait sleeps d unless the request is cancelled first (false), noting both.
func (u *chaosUpstream) wait(r *http.Request, d time.Duration, note func(func(*chaosAttempt))) bool {
	t0 := time.Now()
	note(func(a *chaosAttempt) { a.waitFrom, a.waitTo = t0, t0.Add(d) })
	select {
	case <-time.After(d):
		return true
	case <-r.Context().Done():
		now := time.Now()
		note(func(a *chaosAttempt) { a.ctxDone = now })
		return false
	}
}

// what one client saw
type chaosObs struct {
	plan     chaosPlan
	sid      string
	status   int  // HTTP status seen (0: none)
	left     bool // the client hung up before the response ended
	clean    bool // read to its end with no transport or stream error
	errEvent bool // a stream error event in the client's shape (SDK: a stream error after 200)
	starts   int  // message_start events / distinct chunk ids
	err      string
	events   int
	leftAt   time.Time
}

var (
	chaosAnthHTTP = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	chaosOAIHTTP  = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	chaosRawHTTP  = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
)

func chaosPrompt(id int) string {
	return fmt.Sprintf("chaos call %d please answer briefly.", id)
}

func (o *chaosObs) runAnthropicSDK(ctx context.Context, g *testGateway, tok string) {
	p := o.plan
	c := anthropic.NewClient(aoption.WithBaseURL(g.URL), aoption.WithAPIKey(tok), aoption.WithMaxRetries(0),
		aoption.WithRequestTimeout(30*time.Second), aoption.WithHTTPClient(chaosAnthHTTP))
	params := anthropic.MessageNewParams{Model: anthropic.Model(p.model), MaxTokens: 256,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(chaosPrompt(p.id)))}}
	var raw *http.Response
	opts := []aoption.RequestOption{aoption.WithHeader("X-Metis-Session-Id", o.sid), aoption.WithResponseInto(&raw)}
	var err error
	if p.stream {
		st := c.Messages.NewStreaming(ctx, params, opts...)
		for st.Next() {
			o.events++
			if st.Current().Type == "message_start" {
				o.starts++
			}
		}
		err = st.Err()
		st.Close()
	} else {
		_, err = c.Messages.New(ctx, params, opts...)
	}
	var ae *anthropic.Error
	switch {
	case errors.As(err, &ae):
		o.status = ae.StatusCode
	case raw != nil:
		o.status = raw.StatusCode
	}
	if err != nil {
		o.err = err.Error()
		if p.stream && o.status == 200 {
			o.errEvent = true
		}
	} else {
		o.clean = true
	}
}

func (o *chaosObs) runOpenAISDK(ctx context.Context, g *testGateway, tok string) {
	p := o.plan
	c := openai.NewClient(ooption.WithBaseURL(g.URL+"/v1"), ooption.WithAPIKey(tok), ooption.WithMaxRetries(0),
		ooption.WithRequestTimeout(30*time.Second), ooption.WithHTTPClient(chaosOAIHTTP))
	params := openai.ChatCompletionNewParams{Model: p.model,
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(chaosPrompt(p.id))}}
	var raw *http.Response
	opts := []ooption.RequestOption{ooption.WithHeader("X-Metis-Session-Id", o.sid), ooption.WithResponseInto(&raw)}
	var err error
	if p.stream {
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		st := c.Chat.Completions.NewStreaming(ctx, params, opts...)
		ids := map[string]bool{}
		for st.Next() {
			o.events++
			ids[st.Current().ID] = true
		}
		o.starts = len(ids)
		err = st.Err()
		st.Close()
	} else {
		_, err = c.Chat.Completions.New(ctx, params, opts...)
	}
	var oe *openai.Error
	switch {
	case errors.As(err, &oe):
		o.status = oe.StatusCode
	case raw != nil:
		o.status = raw.StatusCode
	}
	if err != nil {
		o.err = err.Error()
		if p.stream && o.status == 200 {
			o.errEvent = true
		}
	} else {
		o.clean = true
	}
}

func (o *chaosObs) runRaw(ctx context.Context, g *testGateway, tok string) {
	p := o.plan
	var body, path string
	streamS := ""
	if p.stream {
		streamS = `"stream":true,`
		if p.shape == "openai" {
			streamS += `"stream_options":{"include_usage":true},`
		}
	}
	if p.shape == "anthropic" {
		path = "/v1/messages"
		body = fmt.Sprintf(`{"model":%q,"max_tokens":256,%s"messages":[{"role":"user","content":%q}]}`, p.model, streamS, chaosPrompt(p.id))
	} else {
		path = "/v1/chat/completions"
		body = fmt.Sprintf(`{"model":%q,%s"messages":[{"role":"user","content":%q}]}`, p.model, streamS, chaosPrompt(p.id))
	}
	switch p.reject {
	case "badkey":
		tok = "gw_not_a_real_key_chaos"
	case "badjson":
		body = body[:len(body)-3]
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var leftMu sync.Mutex
	if p.cancel == "timer" {
		t := time.AfterFunc(p.cancelAt, func() {
			leftMu.Lock()
			o.leftAt = time.Now()
			leftMu.Unlock()
			cancel()
		})
		defer t.Stop()
	}
	defer func() {
		leftMu.Lock()
		defer leftMu.Unlock()
		if !o.left {
			o.leftAt = time.Time{}
		}
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("X-Metis-Session-Id", o.sid)
	if p.shape == "anthropic" {
		req.Header.Set("X-Api-Key", tok)
	} else {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := chaosRawHTTP.Do(req)
	if err != nil {
		o.err = err.Error()
		o.left = ctx.Err() != nil
		return
	}
	defer resp.Body.Close()
	o.status = resp.StatusCode
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		_, err := io.ReadAll(resp.Body)
		if err != nil {
			o.err = err.Error()
			o.left = ctx.Err() != nil
		} else {
			o.clean = true
		}
		return
	}
	rd := e2eNewSSEReader(resp.Body)
	ids := map[string]bool{}
	for {
		ev, ok := rd.next()
		if !ok {
			break
		}
		o.events++
		if p.shape == "anthropic" {
			if ev.Name == "error" {
				o.errEvent = true
			}
			if ev.Name == "message_start" {
				o.starts++
			}
		} else if ev.Data != "[DONE]" {
			var m map[string]any
			_ = json.Unmarshal([]byte(ev.Data), &m)
			if m["error"] != nil {
				o.errEvent = true
			}
			if id, _ := m["id"].(string); id != "" {
				ids[id] = true
			}
		}
		if p.cancel == "midstream" && o.events >= p.cancelEvN {
			leftMu.Lock()
			o.leftAt = time.Now()
			leftMu.Unlock()
			cancel()
			resp.Body.Close()
			o.left = true
			break
		}
	}
	if p.shape == "openai" {
		o.starts = len(ids)
	}
	if err := rd.err(); err != nil && !o.left {
		o.err = err.Error()
		o.left = ctx.Err() != nil
		return
	}
	if !o.left && !o.errEvent {
		o.clean = true
	}
}

func chaosGatewayWithMetrics(t *testing.T, upURL string) (*testGateway, string) {
	dir := t.TempDir()
	metricsPort := freePort(t)
	g := e2eStartCustom(t, func(gw, an int) string {
		return fmt.Sprintf(`{
	admin off
	grace_period 1s
	log {
		level ERROR
	}
	metis {
		%s
	}
}
http://127.0.0.1:%d {
	metis_gateway
}
http://127.0.0.1:%d {
	metis_analytics
}
http://127.0.0.1:%d {
	metrics
}
`, gatewayConfig(filepath.Join(dir, "metis.db"), upURL, ""), gw, an, metricsPort)
	})
	return g, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
}

func chaosMetricSum(m map[string]float64, name string) float64 {
	s := 0.0
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			s += v
		}
	}
	return s
}

func chaosEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// gatewayStacks counts goroutines whose stack has a frame of the
// gateway's own code.
func gatewayStacks() (int, string) {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	var sb strings.Builder
	for _, gr := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(gr, "github.com/metisgateway/metis.(*call)") || strings.Contains(gr, "metis.(*keepAliver)") ||
			strings.Contains(gr, "metis.watchBody") || strings.Contains(gr, "metis.(*Gateway)") {
			n++
			sb.WriteString(gr)
			sb.WriteString("\n\n")
		}
	}
	return n, sb.String()
}

func TestChaosPrintPlan(t *testing.T) {
	if os.Getenv("CHAOS_PRINT") == "" {
		t.Skip("CHAOS_PRINT=seed:id,...")
	}
	for _, f := range strings.Split(os.Getenv("CHAOS_PRINT"), ",") {
		var s, id int
		fmt.Sscanf(f, "%d:%d", &s, &id)
		t.Logf("seed %d: %+v", s, makeChaosPlan(uint64(s), id))
	}
}

func TestChaosInvariants(t *testing.T) {
	seed := uint64(chaosEnvInt("CHAOS_SEED", 27))
	n := chaosEnvInt("CHAOS_N", 1000)
	conc := chaosEnvInt("CHAOS_CONC", 16)
	u := &chaosUpstream{seed: seed, att: map[int][]chaosAttempt{}}
	for i := range n {
		u.plans = append(u.plans, makeChaosPlan(seed, i))
	}
	up := httptest.NewServer(u)
	upClosed := false
	defer func() {
		if !upClosed {
			up.Close()
		}
	}()
	g, metricsURL := chaosGatewayWithMetrics(t, up.URL)
	k, tok := e2eKey(g, "chaos")
	// Under a budget no call reaches: every call is reserved and settled,
	// through every way a call can end.
	capKey(t, g, k, 1000)

	// warm-up, then the baseline
	resp := g.post("/v1/messages", tok, e2eHaikuBody, e2eAnthropicHdr...)
	e2eRead(t, resp)
	g.sync()
	http.DefaultClient.CloseIdleConnections()
	time.Sleep(200 * time.Millisecond)
	gBefore := runtime.NumGoroutine()
	stBefore, _ := gatewayStacks()
	mBefore := e2eScrape(t, metricsURL)
	costBefore := chaosMetricSum(mBefore, "metis_cost_usd_total")
	warm := g.events(store.TypeCallCompleted)

	obs := make([]*chaosObs, n)
	wrote := make([]atomic.Bool, n) // the client wrote the whole request
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i := range n {
		o := &chaosObs{plan: u.plans[i], sid: fmt.Sprintf("chaos-%d", i)}
		obs[i] = o
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx := chaosWroteTrace(&wrote[o.plan.id])
			switch o.plan.client {
			case "anthropic-sdk":
				o.runAnthropicSDK(ctx, g, tok)
			case "openai-sdk":
				o.runOpenAISDK(ctx, g, tok)
			default:
				o.runRaw(ctx, g, tok)
			}
		})
	}
	wg.Wait()
	t.Logf("%d calls at concurrency %d in %v", n, conc, time.Since(start).Round(time.Millisecond))

	// wait for the gateway to finish every call (clients that left return
	// before their calls are recorded)
	byTurn, calls, callBySid, refusals, nRefused := chaosTrace(t, g, len(warm), chaosNeed(obs, wrote))

	chk := newChaosCheck(t)
	costSum := 0.0
	for _, c := range calls {
		if v, ok := c["cost_usd"].(float64); ok {
			costSum += v
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	combos, upBeh, nRejectedClient, leftEarly := chk.calls(obs, wrote, u, callBySid, byTurn)
	accepted := len(calls)
	anCost := chk.totals(chaosRun{g: g, key: k, metricsURL: metricsURL, calls: calls, warm: warm, byTurn: byTurn,
		sent: n, refused: nRefused, refusals: refusals, leftEarly: leftEarly, builtToRefuse: nRejectedClient,
		costSum: costSum, costBefore: costBefore, mBefore: mBefore})
	// 6. goroutines
	up.Close()
	upClosed = true
	http.DefaultClient.CloseIdleConnections()
	gAfter := chk.goroutines(g, gBefore, stBefore)

	// report
	var sb strings.Builder
	chk.report(&sb, chaosTally{seed: seed, sent: n, accepted: accepted, refused: nRefused, refusals: refusals,
		upstream: upBeh, combos: combos, unmarked: u.other})
	fmt.Fprintf(&sb, "goroutines before %d after %d; cost sum %.9f analytics %.9f\n", gBefore, gAfter, costSum, anCost)
	chk.fail()
	t.Log(sb.String())
	if p := os.Getenv("CHAOS_REPORT"); p != "" {
		_ = os.WriteFile(p, []byte(sb.String()), 0o644)
	}
}

// chaosEv is one trace event of a chaos run.
type chaosEv struct{ id, typ, turn, sid string }

// chaosTrace waits for the run's calls to end and its events to be
// written, then reads the trace: the events by turn, the calls after the
// warm-up ones (and by session id, the client's own), the refusals. need
// is how many requests must have ended in a call or a refusal: under load
// the gateway may come to a request whose client wrote it and left only
// after every call in flight has ended, so an idle in-flight set alone does
// not say the trace is whole.
func chaosTrace(t *testing.T, g *testGateway, warm, need int) (byTurn map[string][]chaosEv, calls []map[string]any,
	callBySid map[string][]map[string]any, refusals map[string]int, nRefused int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if g.app().inflight.idle() {
			g.sync()
			got := len(g.events(store.TypeCallCompleted)) - warm
			for reason, v := range g.refusals() {
				if reason != "body_unreadable" { // a client that left mid-body: not in need
					got += v
				}
			}
			if got >= need {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !g.app().inflight.idle() {
		t.Errorf("INV6: calls still in flight 20s after every client finished")
	}
	g.sync()
	rows, err := g.db().Query(`SELECT id, type, COALESCE(json_extract(payload_json,'$.turn_id'),''), COALESCE(json_extract(payload_json,'$.session_id'),'') FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	byTurn = map[string][]chaosEv{}
	for rows.Next() {
		var e chaosEv
		if err := rows.Scan(&e.id, &e.typ, &e.turn, &e.sid); err != nil {
			t.Fatal(err)
		}
		if e.turn != "" {
			byTurn[e.turn] = append(byTurn[e.turn], e)
		}
	}
	rows.Close()
	calls = g.events(store.TypeCallCompleted)[warm:]
	callBySid = map[string][]map[string]any{}
	for _, c := range calls {
		s, _ := c["session_id"].(string)
		callBySid[s] = append(callBySid[s], c)
	}
	refusals = g.refusals()
	for _, v := range refusals {
		nRefused += v
	}
	return byTurn, calls, callBySid, refusals, nRefused
}

// chaosRun is what a chaos run's totals are checked against.
type chaosRun struct {
	g                                       *testGateway
	key                                     store.Key
	metricsURL                              string
	calls, warm                             []map[string]any
	byTurn                                  map[string][]chaosEv
	sent, refused, leftEarly, builtToRefuse int
	refusals                                map[string]int
	costSum, costBefore                     float64
	mBefore                                 map[string]float64
}

// totals checks a chaos run as a whole: no orphan events, every request
// accounted for, and the calls' cost equal to the analytics', the key's
// budget's and the metrics', with no trace event dropped. It returns the
// cost the analytics report.
func (k *chaosCheck) totals(r chaosRun) (anCost float64) {
	// orphans
	callTurns := map[string]bool{}
	for _, c := range r.calls {
		callTurns[c["turn_id"].(string)] = true
	}
	for _, c := range r.warm {
		callTurns[c["turn_id"].(string)] = true
	}
	for turn, es := range r.byTurn {
		if !callTurns[turn] {
			var ty []string
			for _, e := range es {
				ty = append(ty, e.typ)
			}
			k.bad("1-orphan-events", "turn %s has no llm.call_completed: %v", turn, ty)
		}
	}
	accepted := len(r.calls)
	// A client that left while sending its body may have been recorded
	// as a body_unreadable refusal rather than not at all.
	if extra := accepted + r.refused + r.leftEarly - r.sent; extra < 0 || extra > min(r.leftEarly, r.refusals["body_unreadable"]) {
		k.bad("1-count", "clients made %d requests; trace has %d calls + %d refusals (%v), %d clients left before the gateway had theirs; clients built %d to be refused",
			r.sent, accepted, r.refused, r.refusals, r.leftEarly, r.builtToRefuse)
	}
	// 5. cost sums
	resp, err := http.Get(r.g.Analytics + "/analytics/cost?window=1h&group_by=model")
	if err != nil {
		k.t.Fatal(err)
	}
	an := e2eJSON(k.t, e2eRead(k.t, resp))
	warmCost := 0.0
	for _, c := range r.warm {
		if v, ok := c["cost_usd"].(float64); ok {
			warmCost += v
		}
	}
	anCost, _ = an["total_cost_usd"].(float64)
	if !e2eNear(anCost, r.costSum+warmCost) {
		k.bad("5-analytics", "/analytics/cost total_cost_usd %v, sum of cost_usd %v (diff %g)", anCost, r.costSum+warmCost, anCost-r.costSum-warmCost)
	}
	if calls, _ := an["calls"].(float64); int(calls) != accepted+len(r.warm) {
		k.bad("5-analytics-calls", "/analytics/cost calls %v, trace %d", calls, accepted+len(r.warm))
	}
	// 6b. the budget was charged each call's cost, once, and holds nothing
	// (a settlement the ledger could not write at once is retried later).
	var q budget.Quota
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if q = keyQuota(k.t, r.g, r.key); q.Reserved == 0 && e2eNear(q.Spent, r.costSum+warmCost) || time.Now().After(deadline) {
			break
		}
	}
	if q.Reserved != 0 || !e2eNear(q.Spent, r.costSum+warmCost) {
		k.bad("5-budget", "the key's budget: spent %v, reserved %v; want the calls' cost %v and nothing reserved", q.Spent, q.Reserved, r.costSum+warmCost)
	}
	mAfter := e2eScrape(k.t, r.metricsURL)
	if d := chaosMetricSum(mAfter, "metis_cost_usd_total") - r.costBefore; !e2eNear(d, r.costSum) && (d-r.costSum > 1e-9 || r.costSum-d > 1e-9) {
		k.bad("5-metrics", "metis_cost_usd_total grew by %v, sum of cost_usd %v (diff %g)", d, r.costSum, d-r.costSum)
	}
	if d := chaosMetricSum(mAfter, "metis_trace_events_dropped_total") - chaosMetricSum(r.mBefore, "metis_trace_events_dropped_total"); d != 0 {
		k.bad("5-dropped", "%v trace events dropped", d)
	}
	return anCost
}

// chaosCheck gathers a chaos run's violations, by invariant, and its
// tallies.
type chaosCheck struct {
	t                  *testing.T
	viol               map[string][]string
	outcomes, usageTab map[string]int
	cancelLags         []time.Duration
}

func newChaosCheck(t *testing.T) *chaosCheck {
	return &chaosCheck{t: t, viol: map[string][]string{}, outcomes: map[string]int{}, usageTab: map[string]int{}}
}

// cancelLagMax bounds how long after a client left its upstream request
// may see the cancel (measured: 1–10 ms under CI's load, 300–400 ms with
// the machine's load average at 9).
const cancelLagMax = time.Second

// chaosWroteTrace is a client context that sets wrote once the client
// has written its whole request.
func chaosWroteTrace(wrote *atomic.Bool) context.Context {
	return httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteRequest: func(wr httptrace.WroteRequestInfo) {
			if wr.Err == nil {
				wrote.Store(true)
			}
		},
	})
}

// chaosNeed counts the requests that must each end in a call or a
// refusal: those whose clients wrote them whole, less those leftEarly may
// excuse.
func chaosNeed(obs []*chaosObs, wrote []atomic.Bool) int {
	n := 0
	for _, o := range obs {
		p := o.plan
		if wrote[p.id].Load() && !(o.left && o.status == 0 && p.cancel == "timer" && p.cancelAt < 15*time.Millisecond) {
			n++
		}
	}
	return n
}

// leftEarly tells whether a call without a trace is one whose client gave
// up before the gateway had its request, which leaves nothing to record:
// it never wrote the whole request (under load it may still be dialling),
// or it left within 15 ms.
func (k *chaosCheck) leftEarly(o *chaosObs, cs []map[string]any, atts []chaosAttempt, wrote bool) bool {
	p := o.plan
	if len(cs) != 0 || !o.left || o.status != 0 || len(atts) != 0 || p.cancel != "timer" {
		return false
	}
	switch {
	case !wrote:
		k.outcomes[fmt.Sprintf("client left before it had written its request (cancel at %v, no trace)", p.cancelAt.Round(time.Millisecond))]++
	case p.cancelAt < 15*time.Millisecond:
		k.outcomes["client left before the gateway had the request (no trace)"]++
	default:
		return false
	}
	return true
}

// calls checks each client's request against the trace (callBySid,
// byTurn) and the upstream's attempts (u.att, which the caller holds
// u.mu for), and counts the client combinations and upstream behaviours
// the report shows, the requests built to be refused and those whose
// clients left before the gateway had them.
func (k *chaosCheck) calls(obs []*chaosObs, wrote []atomic.Bool, u *chaosUpstream, callBySid map[string][]map[string]any,
	byTurn map[string][]chaosEv) (combos, upBeh map[string]int, builtToRefuse, leftEarly int) {
	combos, upBeh = map[string]int{}, map[string]int{}
	for _, o := range obs {
		p := o.plan
		combo := fmt.Sprintf("%s/%s stream=%v cross=%v cancel=%s reject=%s", p.client, p.shape, p.stream, p.cross, p.cancel, p.reject)
		combos[combo]++
		atts := u.att[p.id]
		for _, a := range atts {
			upBeh[a.behaviour]++
		}
		cs := callBySid[o.sid]
		if p.reject != "" {
			builtToRefuse++
			if len(cs) != 0 {
				k.bad("1-rejected-has-call", "call %d (%s) rejected by design but has %d calls", p.id, p.reject, len(cs))
			}
			if len(atts) != 0 {
				k.bad("1-rejected-reached-upstream", "call %d reached upstream", p.id)
			}
			continue
		}
		if k.leftEarly(o, cs, atts, wrote[p.id].Load()) {
			leftEarly++
			continue
		}
		if len(cs) != 1 {
			k.bad("1-one-call-per-request", "call %d (%s, cancel at %v, saw status %d, left=%v, err=%q): %d llm.call_completed events; upstream attempts %d", p.id, combo, p.cancelAt, o.status, o.left, o.err, len(cs), len(atts))
			continue
		}
		c := cs[0]
		turn, _ := c["turn_id"].(string)
		var types []string
		for _, e := range byTurn[turn] {
			types = append(types, e.typ)
		}
		k.call(o, combo, c, types, atts)
	}
	return combos, upBeh, builtToRefuse, leftEarly
}

// goroutines closes the clients' idle connections and checks that the
// goroutines (and those with gateway frames) are back to where they were
// before the run, and the in-flight set empty; it returns the count after.
func (k *chaosCheck) goroutines(g *testGateway, gBefore, stBefore int) int {
	var gAfter, stAfter int
	var stacks string
	for i, c := range []*http.Client{chaosAnthHTTP, chaosOAIHTTP, chaosRawHTTP} {
		n0 := runtime.NumGoroutine()
		c.CloseIdleConnections()
		time.Sleep(300 * time.Millisecond)
		k.t.Logf("closing the idle connections of client %d: goroutines %d -> %d", i, n0, runtime.NumGoroutine())
	}
	for range 100 {
		time.Sleep(50 * time.Millisecond)
		gAfter = runtime.NumGoroutine()
		stAfter, stacks = gatewayStacks()
		if gAfter <= gBefore+10 && stAfter <= stBefore {
			break
		}
	}
	if gAfter > gBefore+10 || stAfter > stBefore {
		k.bad("6-goroutines", "goroutines %d before, %d after; with gateway frames %d before, %d after:\n%.6000s\nby creator:\n%s", gBefore, gAfter, stBefore, stAfter, stacks, goroutineGroups())
	}
	if !g.app().inflight.idle() {
		k.bad("6-inflight", "in-flight set not empty")
	}
	return gAfter
}

// chaosTally is what a chaos run's report counts besides the check's own
// tables.
type chaosTally struct {
	seed                    uint64
	sent, accepted, refused int
	refusals                map[string]int
	upstream, combos        map[string]int // upstream requests by behaviour, client combinations
	unmarked                int            // upstream requests without a marker
}

// report writes a run's tally to sb: its counts, the upstream's behaviours,
// the client combinations, the outcomes and usage, the cancel lags.
func (k *chaosCheck) report(sb *strings.Builder, r chaosTally) {
	fmt.Fprintf(sb, "seed %d, %d calls; accepted %d, refused %d %v; upstream requests by behaviour:\n", r.seed, r.sent, r.accepted, r.refused, r.refusals)
	chaosRows(sb, r.upstream, 26)
	chaosTable(sb, "client combinations", r.combos, 70)
	chaosTable(sb, "outcomes", k.outcomes, 80)
	chaosTable(sb, "usage by outcome", k.usageTab, 130)
	lags := k.cancelLags
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	if len(lags) > 0 {
		fmt.Fprintf(sb, "cancel lag client->upstream over %d waits: median %v max %v\n", len(lags), lags[len(lags)/2], lags[len(lags)-1])
	}
	fmt.Fprintf(sb, "upstream requests without a marker: %d\n", r.unmarked)
}

// chaosTable writes a titled table of counts, by key.
func chaosTable(sb *strings.Builder, title string, m map[string]int, width int) {
	sb.WriteString(title + ":\n")
	chaosRows(sb, m, width)
}

// chaosRows writes the counts of m, one per line, by key.
func chaosRows(sb *strings.Builder, m map[string]int, width int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(sb, "  %-*s %d\n", width, k, m[k])
	}
}

// fail reports the violations, before the long tally so that a log
// cut short (CI keeps the head and the tail) still shows them.
func (k *chaosCheck) fail() {
	var vk []string
	for inv := range k.viol {
		vk = append(vk, inv)
	}
	sort.Strings(vk)
	for _, inv := range vk {
		vs := k.viol[inv]
		k.t.Errorf("invariant %s: %d violations; first ones:\n  %s", inv, len(vs), strings.Join(vs[:min(len(vs), 8)], "\n  "))
	}
}

// bad records a violation of invariant inv.
func (k *chaosCheck) bad(inv string, format string, a ...any) {
	k.viol[inv] = append(k.viol[inv], fmt.Sprintf(format, a...))
}

// call checks one accepted call: its trace row c and its turn's event
// types against what its client saw (o) and what the upstream received
// (atts).
func (k *chaosCheck) call(o *chaosObs, combo string, c map[string]any, types []string, atts []chaosAttempt) {
	p := o.plan
	if got := strings.Join(types, ","); got != "route.decided,llm.call_completed,turn.completed" {
		k.bad("1-triple", "call %d turn %v: %s", p.id, c["turn_id"], got)
	}
	status := int(c["status"].(float64))
	ec, _ := c["error_class"].(string)
	attempts := int(c["attempts"].(float64))
	last := ""
	if len(atts) > 0 {
		last = atts[len(atts)-1].behaviour
	}
	k.outcomes[fmt.Sprintf("status=%d class=%s last=%s stream=%v", status, ec, last, p.stream)]++
	// 2. status agreement
	if o.status != 0 && !o.left && o.status != status {
		k.bad("2-status-mismatch", "call %d (%s): client saw %d, trace %d/%s; upstream %v; err %q", p.id, combo, o.status, status, ec, chaosBeh(atts), o.err)
	}
	if ec == "CANCELLED" && !o.left {
		k.bad("2-cancelled-client-stayed", "call %d (%s): CANCELLED but the client stayed (status %d clean %v err %q); upstream %v", p.id, combo, o.status, o.clean, o.err, chaosBeh(atts))
	}
	if last == cbCutMid && p.stream && !o.left && len(atts) > 0 && atts[len(atts)-1].wroteData {
		if ec != "STREAM_INTERRUPTED" {
			k.bad("2-cut-not-interrupted", "call %d (%s): upstream cut mid-stream, recorded %d/%s", p.id, combo, status, ec)
		}
		if !o.errEvent {
			k.bad("2-cut-no-error-event", "call %d (%s): upstream cut mid-stream, client saw no error event (status %d clean %v err %q events %d)", p.id, combo, o.status, o.clean, o.err, o.events)
		}
	}
	if last == cbErrEvent && p.stream && !o.left && o.status == 200 && !o.errEvent {
		k.bad("2-error-event-lost", "call %d (%s): upstream error event mid-stream, client saw none (clean %v, events %d); trace %d/%s", p.id, combo, o.clean, o.events, status, ec)
	}
	// (a non-streamed 200 whose JSON is cut short is relayed as it
	// came, recorded BAD_UPSTREAM_RESPONSE: README "timeouts")
	if o.clean && o.status == 200 && ec != "" && !(ec == "BAD_UPSTREAM_RESPONSE" && !p.stream) {
		k.bad("2-clean-client-error-class", "call %d (%s): client read a clean 200 but trace says %s; upstream %v", p.id, combo, ec, chaosBeh(atts))
	}
	// 3. attempts
	if attempts == len(atts)+1 && ec == "CANCELLED" && o.left {
		// the client left as the retry went out: counted, never
		// received (a race the gateway cannot see)
		k.outcomes["cancelled as a retry went out: attempts = received+1"]++
	} else if attempts != len(atts) {
		k.bad("3-attempts", "call %d (%s): trace attempts %d, upstream received %d %v; trace %d/%s; client left=%v", p.id, combo, attempts, len(atts), chaosBeh(atts), status, ec, o.left)
	}
	for i := 1; i < len(atts); i++ {
		prev := atts[i-1]
		if prev.wroteData && (prev.behaviour == cbNormal || prev.behaviour == cbNormalGap || prev.behaviour == cbCutMid || prev.behaviour == cbNoUsage || prev.behaviour == cbSlow || prev.behaviour == cbErrEvent) {
			k.bad("3-retry-after-bytes", "call %d (%s): attempt %d after attempt %d (%s) had sent data", p.id, combo, i+1, i, prev.behaviour)
		}
		if prev.retryAfter > 0 {
			if gap := atts[i].t.Sub(prev.t); gap < prev.retryAfter-2*time.Millisecond {
				k.bad("3-retry-after-not-honoured", "call %d: attempt %d came %v after a %s with retry-after %v", p.id, i+1, gap, prev.behaviour, prev.retryAfter)
			}
		}
	}
	// a client that left while the upstream was deliberately waiting
	// must have had the upstream request cancelled before the wait's end,
	// and soon: a few ms normally; the bar (cancelLagMax) allows for a
	// loaded 2-core machine, where -race and several goroutine hops (the
	// client's transport, the server, the gateway, the upstream's server)
	// each wait to be scheduled
	if o.left && !o.leftAt.IsZero() {
		for i, a := range atts {
			if a.waitFrom.IsZero() || o.leftAt.Before(a.waitFrom) || !o.leftAt.Before(a.waitTo.Add(-300*time.Millisecond)) {
				continue
			}
			if a.ctxDone.IsZero() && status == 200 && ec == "" {
				// the client left after the answer's end (OpenAI's
				// finish chunk): the gateway reads on for the usage
				// chunk (README "Trace events")
				continue
			}
			if a.ctxDone.IsZero() {
				k.bad("6-cancel-not-propagated", "call %d (%s): client left %v into attempt %d's %v wait (%s after %d events, client had %d); upstream never saw the cancel; trace %d/%s usage %v", p.id, combo, o.leftAt.Sub(a.waitFrom).Round(time.Millisecond), i+1, a.waitTo.Sub(a.waitFrom), a.behaviour, p.upParam[min(i, 2)], o.events, status, ec, c["usage_source"])
			} else if lag := a.ctxDone.Sub(o.leftAt); lag > cancelLagMax {
				k.bad("6-cancel-slow", "call %d (%s): upstream saw the cancel %v after the client left (%s)", p.id, combo, lag.Round(time.Millisecond), a.behaviour)
			} else {
				k.cancelLags = append(k.cancelLags, lag)
			}
		}
	}
	if o.starts > 1 {
		k.bad("3-client-saw-two-answers", "call %d (%s): client saw %d message starts / chunk ids; upstream %v", p.id, combo, o.starts, chaosBeh(atts))
	}
	// 4. cost
	in, _ := c["input_tokens"].(float64)
	out, _ := c["output_tokens"].(float64)
	cr, _ := c["cache_read_input_tokens"].(float64)
	cw, _ := c["cache_creation_input_tokens"].(float64)
	cost, hasCost := c["cost_usd"].(float64)
	lastWrote := len(atts) > 0 && atts[len(atts)-1].wroteData
	if ec == "STREAM_INTERRUPTED" && last == cbCutEarly && in == 0 {
		k.t.Logf("note: call %d (%s) STREAM_INTERRUPTED after %v records no input (usage %v, status %d)", p.id, combo, chaosBeh(atts), c["usage_source"], status)
	}
	k.usageTab[fmt.Sprintf("class=%-22s last=%-24s wrote=%-5v usage=%-9v in>0=%-5v out>0=%-5v cost0=%v", ec, last, lastWrote, c["usage_source"], in+cr+cw > 0, out > 0, hasCost && cost == 0)]++
	if lastWrote && in+cr+cw == 0 && (last == cbNormal || last == cbNormalGap || last == cbCutMid || last == cbNoUsage || last == cbStall || last == cbSlow) {
		k.bad("4-billed-zero", "call %d (%s): the provider answered (%s) but the trace has no input tokens: %d/%s usage_source %v cost %v", p.id, combo, last, status, ec, c["usage_source"], c["cost_usd"])
	}
	priced := c["priced"] == true
	if priced && !hasCost {
		k.bad("4-priced-null", "call %d: priced with cost_usd %v", p.id, c["cost_usd"])
	}
	if !priced && hasCost {
		k.bad("4-unpriced-with-cost", "call %d: priced %v with cost %v", p.id, c["priced"], cost)
	}
	if priced && in+out+cr+cw > 0 && cost <= 0 {
		k.bad("4-silent-zero", "call %d (%s): %v/%v tokens priced at %v; %d/%s usage_source %v", p.id, combo, in, out, cost, status, ec, c["usage_source"])
	}
	if last == cbNoUsage && status == 200 && ec == "" && c["usage_source"] != "estimated" {
		k.bad("4-no-usage-not-estimated", "call %d (%s): upstream sent no usage; usage_source %v tokens %v/%v", p.id, combo, c["usage_source"], in, out)
	}
}

// goroutineGroups summarises every goroutine by its creator.
func goroutineGroups() string {
	buf := make([]byte, 16<<20)
	buf = buf[:runtime.Stack(buf, true)]
	cnt := map[string]int{}
	for _, gr := range strings.Split(string(buf), "\n\n") {
		lines := strings.Split(gr, "\n")
		key := ""
		if len(lines) > 1 {
			key = lines[1]
			if i := strings.IndexByte(key, '('); i > 0 && strings.HasSuffix(key, ")") {
				key = key[:strings.LastIndexByte(key, '(')]
			}
		}
		for i, l := range lines {
			if strings.HasPrefix(l, "created by ") {
				if j := strings.Index(l, " in goroutine"); j > 0 {
					l = l[:j]
				}
				key += " <- " + l
				_ = i
			}
		}
		cnt[key]++
	}
	var ks []string
	for k := range cnt {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return cnt[ks[i]] > cnt[ks[j]] })
	if os.Getenv("CHAOS_STACKS") != "" {
		_ = os.WriteFile(os.Getenv("CHAOS_STACKS"), buf, 0o644)
	}
	var sb strings.Builder
	for _, k := range ks[:min(len(ks), 15)] {
		fmt.Fprintf(&sb, "  %4d %s\n", cnt[k], k)
	}
	return sb.String()
}

func chaosBeh(atts []chaosAttempt) []string {
	var out []string
	for _, a := range atts {
		out = append(out, a.behaviour)
	}
	return out
}

var _ = bufio.NewReader
