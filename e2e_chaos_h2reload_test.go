package metis

// Chaos invariants over HTTP/2 with reloads (review 27H): the chaos
// upstream and clients of e2e_chaos_test.go, but every client multiplexed
// on HTTP/2 streams of one TLS connection (Caddy's internal CA), clients
// that hang up sending RST_STREAM, and three config reloads in the middle
// of the run: one that re-points an alias, one that rotates both provider
// keys, one harmless. Then the chaos invariants, plus: no call sent after a
// reload reached the provider with the old key or the old alias target;
// no stream failed at the transport; every response came over HTTP/2.
// CHAOS_SEED, CHAOS_N and CHAOS_CONC change the run.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// h2Att is what the provider saw of one request: when, with which key,
// for which model.
type h2Att struct {
	t     time.Time
	key   string
	model string
}

// h2KeyRec records the key and model of every provider request, then
// hands it to the chaos upstream.
type h2KeyRec struct {
	u   *chaosUpstream
	mu  sync.Mutex
	att map[int][]h2Att
}

func (k *h2KeyRec) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	key := r.Header.Get("X-Api-Key")
	if key == "" {
		key = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	var req struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(body, &req)
	if m := chaosMarker.FindSubmatch(body); m != nil {
		id, _ := strconv.Atoi(string(m[1]))
		k.mu.Lock()
		k.att[id] = append(k.att[id], h2Att{t: time.Now(), key: key, model: req.Model})
		k.mu.Unlock()
	}
	k.u.ServeHTTP(w, r)
}

// h2ChaosBody is gatewayConfig with literal provider keys and a chosen
// target for the sonnet alias.
func h2ChaosBody(dbPath, up, anthKey, oaiKey, sonnet, extra string) string {
	return fmt.Sprintf(`db %s
		provider anthropic {
			api_key %s
			base_url %s
			max_retries 2
			max_retry_wait 5s
		}
		provider openai {
			api_key %s
			base_url %s/v1
			max_retries 2
			max_retry_wait 5s
		}
		alias haiku anthropic:claude-haiku-4-5
		alias sonnet anthropic:%s
		alias nano openai:gpt-5-nano
		%s`, dbPath, anthKey, up, oaiKey, up, sonnet, extra)
}

// h2ProtoCount counts the protocols of the responses it passes on.
type h2ProtoCount struct {
	rt    http.RoundTripper
	mu    sync.Mutex
	proto map[string]int
}

func (p *h2ProtoCount) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := p.rt.RoundTrip(r)
	if err == nil {
		p.mu.Lock()
		p.proto[resp.Proto]++
		p.mu.Unlock()
	}
	return resp, err
}

// h2Gateway is a gateway on HTTPS with HTTP/2 (Caddy's internal CA) and a
// metrics site, both providers at up with the given provider keys.
type h2Gateway struct {
	*testGateway
	dbPath  string
	metrics string
	tr      *http.Transport
	pc      *h2ProtoCount
	hc      *http.Client
	dials   *atomic.Int64
	reload  func(body string) error
}

func startH2Gateway(t *testing.T, upURL, anthKey, oaiKey, sonnet string) *h2Gateway {
	t.Helper()
	up := struct{ URL string }{upURL}
	dir := t.TempDir()
	storage := filepath.Join(dir, "caddy")
	dbPath := filepath.Join(dir, "metis.db")
	metricsPort := freePort(t)
	var gwPort, anPort int
	render := func(body string) string {
		return tlsCaddyfile(storage, body, gwPort, anPort, fmt.Sprintf("http://127.0.0.1:%d {\n\tmetrics\n}\n", metricsPort))
	}
	g := e2eStartCustom(t, func(gw, an int) string {
		gwPort, anPort = gw, an
		return render(h2ChaosBody(dbPath, up.URL, anthKey, oaiKey, sonnet, ""))
	})
	g.URL = fmt.Sprintf("https://127.0.0.1:%d", g.gwPort)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	reload := func(body string) error {
		cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(render(body)), nil)
		if err != nil {
			return err
		}
		return caddy.Load(cfg, true)
	}

	rootPEM, err := os.ReadFile(filepath.Join(storage, "pki", "authorities", "local", "root.crt"))
	if err != nil {
		t.Fatalf("Caddy's internal root: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	dials := new(atomic.Int64)
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			if os.Getenv("H2_DIALS") != "" {
				fmt.Fprintf(os.Stderr, "DIAL %s\n", time.Now().Format("15:04:05.000"))
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	pc := &h2ProtoCount{rt: tr, proto: map[string]int{}}
	hc := &http.Client{Transport: pc}
	// the certificate is issued in the background
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", g.gwPort), &tls.Config{RootCAs: roots, NextProtos: []string{"h2"}})
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS handshake within 15s: %v", err)
		}
	}

	return &h2Gateway{testGateway: g, dbPath: dbPath, metrics: metricsURL, tr: tr, pc: pc, hc: hc, dials: dials, reload: reload}
}

func TestChaosH2Reload(t *testing.T) {
	seed := uint64(chaosEnvInt("CHAOS_SEED", 27))
	n := chaosEnvInt("CHAOS_N", 800)
	conc := chaosEnvInt("CHAOS_CONC", 24)
	u := &chaosUpstream{seed: seed, att: map[int][]chaosAttempt{}}
	for i := range n {
		u.plans = append(u.plans, makeChaosPlan(seed, i))
	}
	kr := &h2KeyRec{u: u, att: map[int][]h2Att{}}
	up := httptest.NewServer(kr)
	upClosed := false
	defer func() {
		if !upClosed {
			up.Close()
		}
	}()

	const (
		oldAnth, oldOAI      = "sk-ant-key-one", "sk-openai-key-one"
		newAnth, newOAI      = "sk-ant-key-two", "sk-openai-key-two"
		oldSonnet, newSonnet = "claude-3-7-sonnet-20250219", "claude-sonnet-4-5"
	)
	hg := startH2Gateway(t, up.URL, oldAnth, oldOAI, oldSonnet)
	g, metricsURL, tr, pc, hc, dials, reload, dbPath := hg.testGateway, hg.metrics, hg.tr, hg.pc, hg.hc, hg.dials, hg.reload, hg.dbPath
	setForTest(t, &chaosAnthHTTP, hc)
	setForTest(t, &chaosOAIHTTP, hc)
	setForTest(t, &chaosRawHTTP, hc)
	k, tok := e2eKey(g, "chaos")
	capKey(t, g, k, 1000)

	// warm-up (over HTTP/2, so that the connection exists), then the baseline
	warmReq, _ := http.NewRequest(http.MethodPost, g.URL+"/v1/messages", strings.NewReader(e2eHaikuBody))
	warmReq.Header.Set("X-Api-Key", tok)
	warmReq.Header.Set("Anthropic-Version", "2023-06-01")
	warmResp, err := hc.Do(warmReq)
	if err != nil {
		t.Fatal(err)
	}
	e2eRead(t, warmResp)
	g.sync()
	time.Sleep(200 * time.Millisecond)
	gBefore := runtime.NumGoroutine()
	stBefore, _ := gatewayStacks()
	mBefore := e2eScrape(t, metricsURL)
	costBefore := chaosMetricSum(mBefore, "metis_cost_usd_total")
	warm := g.events(store.TypeCallCompleted)

	// reloads at a quarter, half and three quarters of the run
	type reloadT struct {
		what       string
		start, end time.Time
		err        error
	}
	reloads := []*reloadT{{what: "alias sonnet -> " + newSonnet}, {what: "rotate provider keys"}, {what: "harmless (default_model)"}}
	bodies := []string{
		h2ChaosBody(dbPath, up.URL, oldAnth, oldOAI, newSonnet, ""),
		h2ChaosBody(dbPath, up.URL, newAnth, newOAI, newSonnet, ""),
		h2ChaosBody(dbPath, up.URL, newAnth, newOAI, newSonnet, "default_model anthropic:claude-haiku-4-5"),
	}
	var reloadWG sync.WaitGroup
	startAt := make([]time.Time, n)
	wrote := make([]atomic.Bool, n) // the client wrote the whole request

	obs := make([]*chaosObs, n)
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)
	for i := range n {
		o := &chaosObs{plan: u.plans[i], sid: fmt.Sprintf("chaos-%d", i)}
		obs[i] = o
		if r := 4 * i / n; i == r*n/4 && r >= 1 && r <= 3 {
			rl, body := reloads[r-1], bodies[r-1]
			rl.start = time.Now()
			if os.Getenv("H2_DIALS") != "" {
				fmt.Fprintf(os.Stderr, "RELOAD %s\n", time.Now().Format("15:04:05.000"))
			}
			reloadWG.Go(func() {
				rl.err = reload(body)
				rl.end = time.Now()
			})
			if os.Getenv("H2_RELOAD_ASYNC") == "" {
				reloadWG.Wait() // calls go on meanwhile; the next call starts after the load returned
			}
		}
		sem <- struct{}{}
		startAt[i] = time.Now()
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
	reloadWG.Wait()
	t.Logf("%d calls at concurrency %d in %v", n, conc, time.Since(start).Round(time.Millisecond))
	for _, rl := range reloads {
		if rl.err != nil {
			t.Fatalf("reload %q: %v", rl.what, rl.err)
		}
		t.Logf("reload %q took %v", rl.what, rl.end.Sub(rl.start).Round(time.Millisecond))
	}

	// wait for the gateway to finish every call (clients that left return
	// before their calls are recorded)
	byTurn, calls, callBySid, refusals, nRefused := chaosTrace(t, g, len(warm), chaosNeed(obs, wrote))

	chk := newChaosCheck(t)
	bad := chk.bad
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

	// 7. HTTP/2 and reloads
	h2Tab := map[string]int{}
	for _, o := range obs {
		p := o.plan
		if p.reject != "" {
			continue
		}
		if o.status == 0 && !o.left {
			bad("7-transport-error", "call %d (%s %s stream=%v): no response and the client did not leave: %q", p.id, p.client, p.shape, p.stream, o.err)
		}
		if !o.left && o.err != "" && (strings.Contains(o.err, "http2:") || strings.Contains(o.err, "stream error") || strings.Contains(o.err, "GOAWAY")) {
			bad("7-h2-stream-error", "call %d (%s): %q", p.id, p.client, o.err)
		}
		if p.cancel != "" && o.left {
			ec := ""
			if cs := callBySid[o.sid]; len(cs) == 1 {
				ec, _ = cs[0]["error_class"].(string)
			}
			last := ""
			if atts := u.att[p.id]; len(atts) > 0 {
				last = atts[len(atts)-1].behaviour
			}
			h2Tab[fmt.Sprintf("client left (%s): recorded class %q, upstream %s", p.cancel, ec, last)]++
		}
		// which config served it: by the calls' start against the reloads
		phase := 0
		for r, rl := range reloads {
			if startAt[p.id].After(rl.end) {
				phase = r + 1
			}
		}
		before := func(r int) bool { return startAt[p.id].Before(reloads[r].start) }
		kr.mu.Lock()
		ks := kr.att[p.id]
		kr.mu.Unlock()
		for j, a := range ks {
			wantAnth, wantOAI := oldAnth, oldOAI
			if phase >= 2 {
				wantAnth, wantOAI = newAnth, newOAI
			}
			newKey := a.key == newAnth || a.key == newOAI
			switch {
			case phase >= 2 && a.key != wantAnth && a.key != wantOAI:
				bad("8-old-key-after-reload", "call %d started %v after the key rotation finished; attempt %d reached the provider with %q", p.id, startAt[p.id].Sub(reloads[1].end).Round(time.Millisecond), j+1, a.key)
			case before(1) && newKey:
				if a.t.Before(reloads[1].start) {
					bad("8-new-key-before-reload", "call %d attempt %d used %q before the rotation", p.id, j+1, a.key)
				}
				h2Tab["call begun before the rotation, attempt sent with the NEW key"]++
			case before(1) && a.t.After(reloads[1].end):
				h2Tab["call begun before the rotation, attempt after it with the old key"]++
			}
			if p.model == "sonnet" {
				switch {
				case phase >= 1 && a.model != newSonnet:
					bad("8-old-alias-after-reload", "call %d started after the alias reload; attempt %d asked the provider for %q", p.id, j+1, a.model)
				case ks[0].t.Before(reloads[0].start) && a.model != oldSonnet:
					// its first attempt reached the provider before the
					// reload began, so the gateway resolved it on the old
					// config (a client's own start says less: under load
					// its request may reach the gateway after the reload)
					bad("8-new-alias-before-reload", "call %d reached the provider before the alias reload; attempt %d asked for %q", p.id, j+1, a.model)
				}
			}
		}
		if cs := callBySid[o.sid]; len(cs) == 1 && p.model == "sonnet" && len(ks) > 0 {
			if m, _ := cs[0]["model"].(string); !strings.HasSuffix(m, ks[len(ks)-1].model) {
				bad("8-trace-model", "call %d: trace model %q, provider was asked for %q", p.id, m, ks[len(ks)-1].model)
			}
		}
		h2Tab[fmt.Sprintf("calls started in config phase %d", phase)]++
	}
	pc.mu.Lock()
	for pr, c := range pc.proto {
		h2Tab["responses over "+pr]++
		h2Tab["responses over "+pr] = c
		if pr != "HTTP/2.0" {
			bad("7-not-h2", "%d responses over %s", c, pr)
		}
	}
	pc.mu.Unlock()
	h2Tab["TCP connections dialled"] = int(dials.Load())

	// 6. goroutines
	up.Close()
	upClosed = true
	tr.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
	gAfter := chk.goroutines(g, gBefore, stBefore)

	// report
	var sb strings.Builder
	chk.report(&sb, chaosTally{seed: seed, sent: n, accepted: accepted, refused: nRefused, refusals: refusals,
		upstream: upBeh, combos: combos, unmarked: u.other})
	chaosTable(&sb, "http/2 and reloads", h2Tab, 80)
	fmt.Fprintf(&sb, "goroutines before %d after %d; cost sum %.9f analytics %.9f\n", gBefore, gAfter, costSum, anCost)
	chk.fail()
	t.Log(sb.String())
	if p := os.Getenv("CHAOS_REPORT"); p != "" {
		_ = os.WriteFile(p, []byte(sb.String()), 0o644)
	}
}

// h2StallUp streams the Anthropic fixture; a request whose prompt says
// "stall call N" (N < 100) stops after three events until released or
// cancelled, noting when it saw the cancel.
type h2StallUp struct {
	mu      sync.Mutex
	reqs    map[int]*h2StallReq
	release chan struct{}
}

type h2StallReq struct {
	key     string
	stalled chan struct{}
	ctxDone time.Time
}

var h2StallMarker = regexp.MustCompile(`stall call (\d+) `)

func (u *h2StallUp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	id := -1
	if m := h2StallMarker.FindSubmatch(body); m != nil {
		id, _ = strconv.Atoi(string(m[1]))
	}
	sr := &h2StallReq{key: r.Header.Get("X-Api-Key"), stalled: make(chan struct{})}
	u.mu.Lock()
	u.reqs[id] = sr
	u.mu.Unlock()
	rp := fakeupstream.FromFixture(fakeupstream.FixtureAnthropicStream, 0)
	for k, v := range rp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	for i, ev := range rp.Events {
		if i == 3 && id >= 0 && id < 100 {
			close(sr.stalled)
			select {
			case <-u.release:
			case <-r.Context().Done():
				u.mu.Lock()
				sr.ctxDone = time.Now()
				u.mu.Unlock()
				return
			}
		}
		_, _ = io.WriteString(w, ev)
		fl.Flush()
	}
}

// Eight streams multiplexed on one HTTP/2 connection, all held by the
// provider mid-answer. The client resets one (RST_STREAM); then a reload
// rotates the provider key (the connection gets a GOAWAY) and, after the
// 1 s grace period, the client resets another. Each reset cancels its
// provider request within a second and is recorded CANCELLED; the six
// other streams on the connection read their whole answer, recorded 200;
// a request after the reload goes on a new connection with the new key.
func TestH2ResetStreamSiblingsAcrossReload(t *testing.T) {
	u := &h2StallUp{reqs: map[int]*h2StallReq{}, release: make(chan struct{})}
	up := httptest.NewServer(u)
	defer up.Close()
	released := false
	defer func() {
		if !released {
			close(u.release)
		}
	}()
	const oldKey, newKey = "sk-ant-key-one", "sk-ant-key-two"
	hg := startH2Gateway(t, up.URL, oldKey, "sk-openai-one", "claude-3-7-sonnet-20250219")
	g := hg.testGateway
	_, tok := e2eKey(g, "h2rst")

	type stream struct {
		id      int
		cancel  context.CancelFunc
		resp    *http.Response
		rd      *e2eSSEReader
		local   string
		events  []e2eSSE
		readErr error
	}
	open := func(id int) *stream {
		s := &stream{id: id}
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) {
			s.local = ci.Conn.LocalAddr().String()
		}})
		body := fmt.Sprintf(`{"model":"sonnet","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"stall call %d please."}]}`, id)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/messages", strings.NewReader(body))
		req.Header.Set("X-Api-Key", tok)
		req.Header.Set("Anthropic-Version", "2023-06-01")
		req.Header.Set("X-Metis-Session-Id", fmt.Sprintf("h2rst-%d", id))
		resp, err := hg.hc.Do(req)
		if err != nil {
			t.Fatalf("stream %d: %v", id, err)
		}
		if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
			t.Fatalf("stream %d: %s %d", id, resp.Proto, resp.StatusCode)
		}
		s.resp, s.rd = resp, e2eNewSSEReader(resp.Body)
		return s
	}
	readN := func(s *stream, n int) {
		for len(s.events) < n {
			ev, ok := s.rd.next()
			if !ok {
				s.readErr = s.rd.err()
				return
			}
			s.events = append(s.events, ev)
		}
	}
	upReq := func(id int) *h2StallReq {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			u.mu.Lock()
			r := u.reqs[id]
			u.mu.Unlock()
			if r != nil {
				return r
			}
		}
		t.Fatalf("the provider never got request %d", id)
		return nil
	}
	cancelledWithin := func(id int, d time.Duration) time.Duration {
		t0 := time.Now()
		for time.Since(t0) < d {
			u.mu.Lock()
			cd := u.reqs[id].ctxDone
			u.mu.Unlock()
			if !cd.IsZero() {
				return cd.Sub(t0)
			}
			time.Sleep(2 * time.Millisecond)
		}
		t.Errorf("stream %d reset: the provider request was not cancelled within %v", id, d)
		return -1
	}

	var streams []*stream
	for id := range 8 {
		s := open(id)
		<-upReq(id).stalled
		readN(s, 2)
		streams = append(streams, s)
	}
	for _, s := range streams {
		if s.local != streams[0].local || s.readErr != nil {
			t.Fatalf("stream %d on %s (first on %s), read error %v", s.id, s.local, streams[0].local, s.readErr)
		}
	}
	gBefore := runtime.NumGoroutine()

	// reset stream 0 on the live connection
	streams[0].cancel()
	streams[0].resp.Body.Close()
	lag0 := cancelledWithin(0, time.Second)

	// reload: rotate the provider key; wait past the 1 s grace period
	rl0 := time.Now()
	if err := hg.reload(h2ChaosBody(hg.dbPath, up.URL, newKey, "sk-openai-two", "claude-3-7-sonnet-20250219", "")); err != nil {
		t.Fatal(err)
	}
	rlTook := time.Since(rl0)
	// a request after the reload: a new connection, the new key
	after := open(100)
	readN(after, 100)
	if after.local == streams[0].local {
		t.Errorf("the request after the reload went on the old config's connection %s", after.local)
	}
	if after.readErr != nil || len(after.events) == 0 || after.events[len(after.events)-1].Name != "message_stop" {
		t.Errorf("the request after the reload: %d events, last %+v, error %v", len(after.events), after.events[len(after.events)-1:], after.readErr)
	}
	if k := upReq(100).key; k != newKey {
		t.Errorf("the request after the reload reached the provider with %q, want the new key", k)
	}
	time.Sleep(1300*time.Millisecond - time.Since(rl0))

	// reset stream 1 on the old connection, past the grace period
	streams[1].cancel()
	streams[1].resp.Body.Close()
	lag1 := cancelledWithin(1, time.Second)

	// the six others read their whole answer
	close(u.release)
	released = true
	for _, s := range streams[2:] {
		readN(s, 100)
		s.resp.Body.Close()
		if s.readErr != nil || s.events[len(s.events)-1].Name != "message_stop" {
			t.Errorf("stream %d, a sibling of the reset ones: %d events, last %q, read error %v", s.id, len(s.events), s.events[len(s.events)-1].Name, s.readErr)
		}
		for _, ev := range s.events {
			if ev.Name == "error" {
				t.Errorf("stream %d got an error event: %s", s.id, ev.Data)
			}
		}
		if k := upReq(s.id).key; k != oldKey {
			t.Errorf("stream %d reached the provider with %q", s.id, k)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); !g.app().inflight.idle() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !g.app().inflight.idle() {
		t.Errorf("calls still in flight")
	}
	calls := e2eCalls(g, 9)
	bySid := map[string]map[string]any{}
	for _, c := range calls {
		s, _ := c["session_id"].(string)
		if bySid[s] != nil {
			t.Errorf("session %s has two calls", s)
		}
		bySid[s] = c
	}
	for id := range 8 {
		c := bySid[fmt.Sprintf("h2rst-%d", id)]
		if c == nil {
			t.Errorf("stream %d: no llm.call_completed", id)
			continue
		}
		e2eCheckTriple(g, c)
		want := map[string]any{"status": 200, "error_class": nil, "attempts": 1}
		if id < 2 {
			want["error_class"] = "CANCELLED"
		}
		e2eWant(t, fmt.Sprintf("stream %d", id), c, want)
	}
	if c := bySid["h2rst-100"]; c == nil {
		t.Errorf("no call for the request after the reload")
	} else {
		e2eCheckTriple(g, c)
	}
	hg.tr.CloseIdleConnections()
	var gAfter int
	for range 60 {
		time.Sleep(50 * time.Millisecond)
		if gAfter = runtime.NumGoroutine(); gAfter <= gBefore {
			break
		}
	}
	if st, stacks := gatewayStacks(); st > 0 {
		t.Errorf("%d goroutines with gateway frames left:\n%.4000s", st, stacks)
	}
	t.Logf("reset lags: live connection %v, after reload+grace %v; reload took %v; goroutines %d -> %d; dials %d; sibling events %d",
		lag0.Round(time.Millisecond), lag1.Round(time.Millisecond), rlTook.Round(time.Millisecond), gBefore, gAfter, hg.dials.Load(), len(streams[2].events))
}

// A client that resets its HTTP/2 stream while its request body is still
// arriving: nothing reaches the provider, nothing is charged, and the
// refusal is recorded (the request reached the gateway), nothing left in
// flight.
func TestH2ResetDuringBody(t *testing.T) {
	u := &h2StallUp{reqs: map[int]*h2StallReq{}, release: make(chan struct{})}
	close(u.release)
	up := httptest.NewServer(u)
	defer up.Close()
	hg := startH2Gateway(t, up.URL, "sk-ant-one", "sk-openai-one", "claude-3-7-sonnet-20250219")
	g := hg.testGateway
	_, tok := e2eKey(g, "h2body")
	before := g.refusals()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/v1/messages", pr)
	req.Header.Set("X-Api-Key", tok)
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	done := make(chan error, 1)
	go func() {
		resp, err := hg.hc.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	_, _ = pw.Write([]byte(`{"model":"sonnet","max_tokens":256,"messages":[{"role":"user","content":"stall call 5 `))
	// wait until the gateway holds it in flight
	for deadline := time.Now().Add(5 * time.Second); g.app().inflight.idle() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if g.app().inflight.idle() {
		t.Fatal("the request never reached the gateway")
	}
	cancel()
	<-done
	pw.Close()
	for deadline := time.Now().Add(5 * time.Second); !g.app().inflight.idle() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if !g.app().inflight.idle() {
		t.Errorf("still in flight 5 s after the client reset its stream")
	}
	after := g.refusals()
	n := 0
	for k, v := range after {
		n += v - before[k]
	}
	if n != 1 {
		t.Errorf("refusals before %v after %v: want one more", before, after)
	}
	u.mu.Lock()
	if len(u.reqs) != 0 {
		t.Errorf("the provider got %d requests", len(u.reqs))
	}
	u.mu.Unlock()
	if c := g.events(store.TypeCallCompleted); len(c) != 0 {
		t.Errorf("%d calls recorded", len(c))
	}
	t.Logf("refusals after: %v", after)
}
