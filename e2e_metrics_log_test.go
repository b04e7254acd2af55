package metis

// End-to-end observability: Caddy's Prometheus metrics show the gateway's
// counters after real calls, and Caddy's log has one "llm call" line per
// call without a single secret or prompt in it.

import (
	"bufio"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"

	"github.com/metisgateway/metis/internal/fakeupstream"
)

// e2eScrape reads a Prometheus text exposition into series → value, the
// series written as name{label="value",…} with labels sorted as exposed.
func e2eScrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

// e2eSeries sums the series of a metric whose labels include all of want
// (label=value pairs).
func e2eSeries(m map[string]float64, name string, want ...string) (float64, bool) {
	sum, found := 0.0, false
	for series, v := range m {
		base, labels, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			if !strings.Contains("{"+labels, fmt.Sprintf("%s=%q", want[i], want[i+1])) {
				ok = false
				break
			}
		}
		if ok {
			sum, found = sum+v, true
		}
	}
	return sum, found
}

// e2eLogLines reads a JSON log file into objects, skipping other lines.
func e2eLogLines(t *testing.T, path string) (lines []map[string]any, raw string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		m := map[string]any{}
		if json.Unmarshal([]byte(l), &m) == nil {
			lines = append(lines, m)
		}
	}
	return lines, string(b)
}

// e2eObservedGateway starts a gateway on up with its trace in dir, an
// access log (accessPath) on its site, Caddy's metrics served at
// metricsURL, and global, more global options (a log, metrics).
func e2eObservedGateway(t *testing.T, up *fakeupstream.Server, dir, global string) (g *testGateway, accessPath, metricsURL string) {
	t.Helper()
	accessPath = filepath.Join(dir, "access.log")
	metricsPort := freePort(t)
	g = e2eStartCustom(t, func(gw, an int) string {
		return fmt.Sprintf(`{
	admin off
	grace_period 1s
	%s
	metis {
		%s
	}
}
http://127.0.0.1:%d {
	log {
		output file %s
		format filter {
			request>headers>X-Api-Key delete
			wrap json
		}
	}
	metis_gateway
}
http://127.0.0.1:%d {
	metis_analytics
}
http://127.0.0.1:%d {
	metrics
}
`, global, gatewayConfig(filepath.Join(dir, "metis.db"), up.URL, ""), gw, accessPath, an, metricsPort)
	})
	return g, accessPath, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
}

func TestE2EMetricsAndLog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "caddy.log")
	up := fakeupstream.New(t)
	g, accessPath, metricsURL := e2eObservedGateway(t, up, dir, fmt.Sprintf(`log {
		output file %s
		format json
		level INFO
	}`, logPath))
	k, tok := e2eKey(g, "observed", "haiku", "nano")
	before := e2eScrape(t, metricsURL)

	// A marker in every prompt: it must never reach the log.
	const marker = "zebra-marmalade-7731"
	up.Enqueue("/v1/messages", fakeupstream.AnthropicTextStream("claude-haiku-4-5", "Metrics are flowing nicely today."))
	resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"`+marker+` stream"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "message_stop") {
		t.Fatalf("stream: %d %s", resp.StatusCode, body)
	}
	up.Enqueue("/v1/chat/completions", fakeupstream.OpenAICompletion("gpt-5-nano", "Logged and counted.", 50))
	resp = g.post("/v1/chat/completions", tok, `{"model":"nano","messages":[{"role":"user","content":"`+marker+` plain"}]}`, "Authorization", "Bearer "+tok)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, body)
	}
	rl := fakeupstream.AnthropicError(429, "rate_limit_error", "slow down")
	rl.Header.Set("Retry-After", "60")
	up.Enqueue("/v1/messages", rl)
	resp = g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"messages":[{"role":"user","content":"`+marker+` limited"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 429 {
		t.Fatalf("429: %d %s", resp.StatusCode, body)
	}
	// Refused before any upstream call: a rejection, not an llm call.
	resp = g.post("/v1/chat/completions", tok, `{"model":"gpt-4o","messages":[{"role":"user","content":"`+marker+` refused"}]}`)
	if body := e2eRead(t, resp); resp.StatusCode != 403 {
		t.Fatalf("403: %d %s", resp.StatusCode, body)
	}
	calls := e2eCalls(g, 3)

	after := e2eScrape(t, metricsURL)
	delta := func(name string, labels ...string) float64 {
		a, ok := e2eSeries(after, name, labels...)
		if !ok {
			t.Errorf("metric %s%v not exposed", name, labels)
		}
		b, _ := e2eSeries(before, name, labels...)
		return a - b
	}
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"metis_requests_total", []string{"shape", "anthropic", "provider", "anthropic", "status", "200"}, 1},
		{"metis_requests_total", []string{"shape", "openai", "provider", "openai", "status", "200"}, 1},
		{"metis_requests_total", []string{"shape", "anthropic", "provider", "anthropic", "status", "429"}, 1},
		{"metis_rejected_requests_total", []string{"shape", "openai", "reason", "model_not_allowed"}, 1},
		// AnthropicTextStream: input 12, output len("Metrics are flowing nicely today.")/4+1 = 33/4+1 = 9.
		{"metis_tokens_total", []string{"provider", "anthropic", "model", "claude-haiku-4-5", "kind", "input"}, 12},
		{"metis_tokens_total", []string{"provider", "anthropic", "model", "claude-haiku-4-5", "kind", "output"}, 9},
		// OpenAICompletion: prompt 50, completion len("Logged and counted.")/4+1 = 19/4+1 = 5.
		{"metis_tokens_total", []string{"provider", "openai", "model", "gpt-5-nano", "kind", "input"}, 50},
		{"metis_tokens_total", []string{"provider", "openai", "model", "gpt-5-nano", "kind", "output"}, 5},
		{"metis_time_to_first_token_seconds_count", []string{"provider", "anthropic", "model", "claude-haiku-4-5"}, 1},
		{"metis_trace_events_dropped_total", nil, 0},
	} {
		if d := delta(c.name, c.labels...); d != c.want {
			t.Errorf("%s%v grew by %v, want %v", c.name, c.labels, d, c.want)
		}
	}
	// haiku: 12 × $1/MTok + 9 × $5/MTok = 0.000012 + 0.000045 = 0.000057
	if d := delta("metis_cost_usd_total", "provider", "anthropic", "model", "claude-haiku-4-5"); !e2eNear(d, 0.000057) {
		t.Errorf("metis_cost_usd_total for haiku grew by %v, want 0.000057", d)
	}
	// gpt-5-nano: 50 × $0.05/MTok + 5 × $0.40/MTok = 0.0000025 + 0.000002 = 0.0000045
	if d := delta("metis_cost_usd_total", "provider", "openai", "model", "gpt-5-nano"); !e2eNear(d, 0.0000045) {
		t.Errorf("metis_cost_usd_total for nano grew by %v, want 0.0000045", d)
	}

	// The log: one "llm call" line per call, matching its trace event.
	var llm []map[string]any
	var raw string
	deadline := time.Now().Add(5 * time.Second)
	for {
		var lines []map[string]any
		lines, raw = e2eLogLines(t, logPath)
		llm = llm[:0]
		for _, l := range lines {
			if l["msg"] == "llm call" {
				llm = append(llm, l)
			}
		}
		if len(llm) >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(llm) != 3 {
		t.Fatalf("%d \"llm call\" log lines for 3 calls:\n%s", len(llm), raw)
	}
	byTurn := map[string]map[string]any{}
	for _, c := range calls {
		byTurn[c["turn_id"].(string)] = c
	}
	for _, l := range llm {
		c := byTurn[fmt.Sprint(l["turn_id"])]
		if c == nil {
			t.Errorf("log line for unknown turn: %v", l)
			continue
		}
		delete(byTurn, fmt.Sprint(l["turn_id"]))
		e2eWant(t, "log line", l, map[string]any{"key_id": k.ID, "model": c["model"], "status": c["status"],
			"input_tokens": c["input_tokens"], "output_tokens": c["output_tokens"]})
		if _, ok := l["latency"]; !ok {
			t.Errorf("log line without latency: %v", l)
		}
		if cost, ok := l["cost_usd"]; ok {
			if c["cost_usd"] == nil || !e2eNear(cost.(float64), c["cost_usd"].(float64)) {
				t.Errorf("logged cost %v, recorded %v", cost, c["cost_usd"])
			}
		} else if l["priced"] != false {
			t.Errorf("log line has neither cost_usd nor priced:false: %v", l)
		}
	}

	// No secret and no prompt, anywhere in either log.
	access, _ := os.ReadFile(accessPath)
	if !strings.Contains(string(access), `"uri":"/v1/messages"`) {
		t.Errorf("the access log has no request lines: %.500s", access)
	}
	for name, text := range map[string]string{"caddy log": raw, "access log": string(access)} {
		for what, secret := range map[string]string{
			"gateway token": tok, "token secret": tok[3:], "anthropic provider key": testAnthropicKey,
			"openai provider key": testOpenAIKey, "prompt text": marker,
		} {
			if strings.Contains(text, secret) {
				t.Errorf("the %s contains the %s", name, what)
			}
		}
	}
	if s := g.app().store.Stats(); s.Dropped != 0 {
		t.Errorf("%d trace events dropped", s.Dropped)
	}
}

// A provider whose key is missing at start: the operator is told at once,
// the provider gets no empty credential header, and when it refuses the
// call the client gets its error unmodified while the log says whose key
// it was (Claude Code shows a provider 401 as the developer's bad key).
func TestE2EProviderWithoutKey(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "caddy.log")
	up := fakeupstream.New(t)
	t.Setenv("METIS_TEST_UNSET_KEY", "")
	g := e2eStartCustom(t, func(gw, an int) string {
		return fmt.Sprintf(`{
	admin off
	log {
		output file %s
		format json
		level INFO
	}
	metis {
		db %s
		provider anthropic {
			api_key {env.METIS_TEST_UNSET_KEY}
			base_url %s
			max_retries 0
		}
	}
}
http://127.0.0.1:%d {
	metis_gateway
}
http://127.0.0.1:%d {
	metis_analytics
}
`, logPath, filepath.Join(dir, "metis.db"), up.URL, gw, an)
	})
	warned := func(msg string) bool {
		deadline := time.Now().Add(5 * time.Second)
		for {
			lines, _ := e2eLogLines(t, logPath)
			for _, l := range lines {
				if l["level"] == "warn" && l["provider"] == "anthropic" && strings.Contains(fmt.Sprint(l["msg"]), msg) {
					return true
				}
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// The line names the placeholder to set (28L): a field at start-up,
	// in the text of the refusal's line.
	if !warned("provider has no API key") {
		t.Errorf("no start-up warning about the provider without a key")
	} else if lines, _ := e2eLogLines(t, logPath); !slices.ContainsFunc(lines, func(l map[string]any) bool {
		return l["api_key"] == "{env.METIS_TEST_UNSET_KEY}"
	}) {
		t.Errorf("the start-up warning does not name the unset {env.METIS_TEST_UNSET_KEY}")
	}
	_, tok := e2eKey(g, "keyless-provider")
	refused := fakeupstream.AnthropicError(401, "authentication_error", "x-api-key header is required")
	up.Enqueue("/v1/messages", refused)
	resp := g.post("/v1/messages", tok, `{"model":"anthropic:claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 401 || body != refused.Body {
		t.Errorf("provider's 401: got %d %s, want it unmodified: %s", resp.StatusCode, body, refused.Body)
	}
	reqs := up.RequestsTo("/v1/messages")
	if len(reqs) != 1 {
		t.Fatalf("%d upstream requests, want 1", len(reqs))
	}
	if v, sent := reqs[0].Header["X-Api-Key"]; sent {
		t.Errorf("the provider got x-api-key %q from a provider block without a key", v)
	}
	if !warned("provider refused a request without an API key; the provider's api_key {env.METIS_TEST_UNSET_KEY} came out empty") {
		t.Errorf("no warning that the provider refused the call for want of its key")
	}
}

// A reload that names another database (as `db {$METIS_DB}` does when the
// reloading shell's environment differs from the server's) is warned of:
// every key looks invalid afterwards, which looks like an outage.
func TestE2EReloadMovingTheDatabaseIsLogged(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "caddy.log")
	dbA, dbB := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	render := func(db string) func(gw, an int) string {
		return func(gw, an int) string {
			return fmt.Sprintf(`{
	admin off
	log {
		output file %s
		format json
		level INFO
	}
	metis {
		db %s
	}
}
http://127.0.0.1:%d {
	metis_gateway
}
http://127.0.0.1:%d {
	metis_analytics
}
`, logPath, db, gw, an)
		}
	}
	g := e2eStartCustom(t, render(dbA))
	reload := func(db string) {
		t.Helper()
		cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(render(db)(g.gwPort, g.anPort)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := reloadCaddy(cfg); err != nil {
			t.Fatal(err)
		}
	}
	moved := func() (n int, last map[string]any) {
		lines, _ := e2eLogLines(t, logPath)
		for _, l := range lines {
			if l["level"] == "warn" && strings.Contains(fmt.Sprint(l["msg"]), "moves the trace database") {
				n, last = n+1, l
			}
		}
		return n, last
	}
	lines, raw := e2eLogLines(t, logPath)
	opened := false
	for _, l := range lines {
		opened = opened || (l["msg"] == "trace database" && l["db"] == dbA)
	}
	if !opened {
		t.Errorf("the log does not say which database the gateway opened:\n%s", raw)
	}
	reload(dbA)
	if n, _ := moved(); n != 0 {
		t.Errorf("a reload keeping the database warned %d times", n)
	}
	reload(dbB)
	n, l := moved()
	if n != 1 || l["db"] != dbB || fmt.Sprint(l["running_db"]) != fmt.Sprint([]any{dbA}) {
		t.Errorf("%d warnings, last %v; want one naming %s and the running %s", n, l, dbB, dbA)
	}
}

// A provider key kept in a file ({file.PATH}) is read again on every
// reload, so it can be rotated without a restart ({env.X} is the server
// process's environment, fixed at its start); the adapted config holds
// only the placeholder.
func TestE2EProviderKeyFromFileRotatesOnReload(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "anthropic.key")
	if err := os.WriteFile(keyFile, []byte("sk-ant-first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	up := fakeupstream.New(t)
	var caddyfile string
	g := e2eStartCustom(t, func(gw, an int) string {
		caddyfile = fmt.Sprintf(`{
	admin off
	metis {
		db %s
		provider anthropic {
			api_key {file.%s}
			base_url %s
		}
	}
}
http://127.0.0.1:%d {
	metis_gateway
}
http://127.0.0.1:%d {
	metis_analytics
}
`, filepath.Join(dir, "metis.db"), keyFile, up.URL, gw, an)
		return caddyfile
	})
	_, tok := e2eKey(g, "rotating")
	call := func() string {
		t.Helper()
		up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 10, "end_turn", fakeupstream.TextBlock("hi")))
		resp := g.post("/v1/messages", tok, `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"Hi."}]}`, e2eAnthropicHdr...)
		if e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		reqs := up.RequestsTo("/v1/messages")
		return reqs[len(reqs)-1].APIKey()
	}
	if k := call(); k != "sk-ant-first" {
		t.Fatalf("provider got key %q, want the file's", k)
	}
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), "sk-ant-first") {
		t.Error("the adapted config holds the key itself")
	}
	// An editor's trailing blank line: the key is the line, not the
	// line breaks (an invalid header value failed every call as
	// "unreachable").
	if err := os.WriteFile(keyFile, []byte("sk-ant-second\n\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := reloadCaddy(cfg); err != nil {
		t.Fatal(err)
	}
	if k := call(); k != "sk-ant-second" {
		t.Errorf("after the reload the provider got key %q, want the rotated one", k)
	}
}

// TestProviderPlaceholdersThatComeOutWrong: a base_url whose placeholder
// comes out empty is a config error, not the provider type's public API
// (a vendor's key and the team's prompts would go to api.anthropic.com),
// and an api_key with a line break inside is refused by name.
func TestProviderPlaceholdersThatComeOutWrong(t *testing.T) {
	db := tempDB(t)
	g := startGateway(t, gatewayConfig(db, "http://127.0.0.1:1", ""))
	t.Setenv("METIS_TEST_TWO_KEYS", "sk-one\nsk-two")
	for _, c := range []struct{ provider, want string }{
		{"provider glm anthropic {\n\t\t\tapi_key vendor-key\n\t\t\tbase_url {env.METIS_TEST_UNSET_BASE_URL}\n\t\t}",
			`provider "glm": base_url "{env.METIS_TEST_UNSET_BASE_URL}" came out empty`},
		{"provider local openai {\n\t\t\tbase_url {file./nonexistent/metis/url}\n\t\t}",
			`provider "local": base_url "{file./nonexistent/metis/url}" came out empty`},
		{"provider glm anthropic {\n\t\t\tapi_key {env.METIS_TEST_TWO_KEYS}\n\t\t\tbase_url http://127.0.0.1:1\n\t\t}",
			`provider "glm": api_key contains a control character`},
	} {
		err := g.tryLoad(gatewayConfig(db, "http://127.0.0.1:1", c.provider))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\nloaded with error %v; want %q", c.provider, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "sk-one") {
			t.Errorf("the error shows the key: %v", err)
		}
	}
}

// e2eStartLogged starts a gateway on up, extra added to its metis options,
// whose log goes to a JSON file at level, with Caddy's metrics on a site of
// their own. It returns the log file's path and the metrics URL.
func e2eStartLogged(t *testing.T, up *fakeupstream.Server, level, extra string) (g *testGateway, logPath, metricsURL string) {
	t.Helper()
	dir := t.TempDir()
	logPath = filepath.Join(dir, "caddy.log")
	metricsPort := freePort(t)
	g = e2eStartCustom(t, func(gw, an int) string {
		return fmt.Sprintf(`{
	admin off
	grace_period 1s
	log {
		output file %s
		format json
		level %s
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
`, logPath, level, gatewayConfig(filepath.Join(dir, "metis.db"), up.URL, extra), gw, an, metricsPort)
	})
	return g, logPath, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
}

// A client can name any model after a provider: prefix. Names the provider
// refused add no series to /metrics and no line to the log (they count
// under model="other"); a model outside the catalogue that answered gets
// its own series and one warning, and the log line says what was asked.
func TestE2EMetricsModelLabelsBounded(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, metricsURL := e2eStartLogged(t, up, "INFO", "")
	_, tok := e2eKey(g, "anything")
	before := e2eScrape(t, metricsURL)

	// Made-up names, and spellings of a catalogue id that the catalogue
	// prices but does not list (a prefix, capitals).
	const made = 5
	for i := range made {
		for _, model := range []string{fmt.Sprintf("claude-made-up-%d", i), fmt.Sprintf("made-up-%d/claude-haiku-4-5", i),
			fmt.Sprintf("Made-Up-%d/CLAUDE-HAIKU-4-5", i)} {
			up.Enqueue("/v1/messages", fakeupstream.AnthropicError(404, "not_found_error", "model: no such model"))
			resp := g.post("/v1/messages", tok, `{"model":"anthropic:`+model+`","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
			if body := e2eRead(t, resp); resp.StatusCode != 404 {
				t.Fatalf("made-up model %s: %d %s", model, resp.StatusCode, body)
			}
		}
	}
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-local-metrics", 10, "end_turn", fakeupstream.TextBlock("Hi.")))
	resp := g.post("/v1/messages", tok, `{"model":"anthropic:claude-local-metrics","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("unlisted model: %d %s", resp.StatusCode, body)
	}
	e2eCalls(g, 3*made+1)

	after := e2eScrape(t, metricsURL)
	for series := range after {
		if strings.Contains(strings.ToLower(series), "made-up") {
			t.Errorf("a refused made-up model has a series: %s", series)
		}
	}
	delta := func(name string, labels ...string) float64 {
		a, _ := e2eSeries(after, name, labels...)
		b, _ := e2eSeries(before, name, labels...)
		return a - b
	}
	if d := delta("metis_unpriced_calls_total", "provider", "anthropic", "model", "other"); d != made {
		t.Errorf(`metis_unpriced_calls_total{model="other"} grew by %v, want %d`, d, made)
	}
	if d := delta("metis_unpriced_calls_total", "provider", "anthropic", "model", "claude-local-metrics"); d != 1 {
		t.Errorf("metis_unpriced_calls_total for the model that answered grew by %v, want 1", d)
	}
	if d := delta("metis_tokens_total", "provider", "anthropic", "model", "claude-local-metrics", "kind", "input"); d != 10 {
		t.Errorf("input tokens of the model that answered grew by %v, want 10", d)
	}

	var warnings, calls []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines, _ := e2eLogLines(t, logPath)
		warnings, calls = warnings[:0], calls[:0]
		for _, l := range lines {
			switch {
			case strings.HasPrefix(fmt.Sprint(l["msg"]), "model has no price"):
				warnings = append(warnings, l)
			case l["msg"] == "llm call":
				calls = append(calls, l)
			}
		}
		if len(calls) >= 3*made+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(warnings) != 1 || warnings[0]["model"] != "claude-local-metrics" {
		t.Errorf("price warnings %v, want one, for claude-local-metrics", warnings)
	}
	if len(calls) != 3*made+1 {
		t.Fatalf("%d llm call lines, want %d", len(calls), 3*made+1)
	}
	for _, l := range calls {
		if want := "anthropic:" + fmt.Sprint(l["model"]); l["requested_model"] != want {
			t.Errorf("log line requested_model %v, want %s", l["requested_model"], want)
		}
	}
}

// The model label admits at most its limit of models outside the
// catalogue, only on a successful call, and each once.
func TestModelLabelsLimit(t *testing.T) {
	l := modelLabels{max: 2}
	for _, c := range []struct {
		model  string
		listed bool
		status int
		want   string
	}{
		{"claude-haiku-4-5", true, 500, "claude-haiku-4-5"},
		{"made-up", false, 404, otherModel},
		{"local-a", false, 200, "local-a"},
		{"local-a", false, 500, "local-a"},
		{"local-b", false, 200, "local-b"},
		{"local-c", false, 200, otherModel},
		{"claude-sonnet-4-5", true, 200, "claude-sonnet-4-5"},
		{"local-b", false, 200, "local-b"},
	} {
		if got := l.label(c.model, c.listed, c.status); got != c.want {
			t.Errorf("label(%q, listed %v, status %d) = %q, want %q", c.model, c.listed, c.status, got, c.want)
		}
	}
}

// An operator reading the log sees each retry of a provider error (at
// INFO) and, at DEBUG, each refused request with its reason, but never
// the key that was refused.
func TestE2ERetriesAndRejectionsLogged(t *testing.T) {
	up := fakeupstream.New(t)
	g, logPath, _ := e2eStartLogged(t, up, "DEBUG", "")
	_, tok := e2eKey(g, "retried")
	busy := fakeupstream.AnthropicError(529, "overloaded_error", "Overloaded")
	busy.Header.Set("Retry-After", "0")
	up.Enqueue("/v1/messages", busy)
	up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 10, "end_turn", fakeupstream.TextBlock("Hi.")))
	resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 200 {
		t.Fatalf("retried call: %d %s", resp.StatusCode, body)
	}
	const badKey = "gw_not-a-real-key-4417"
	resp = g.post("/v1/messages", badKey, `{"model":"haiku","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
	if body := e2eRead(t, resp); resp.StatusCode != 401 {
		t.Fatalf("bad key: %d %s", resp.StatusCode, body)
	}
	e2eCalls(g, 1)

	var retry, rejected map[string]any
	var raw string
	deadline := time.Now().Add(5 * time.Second)
	for (retry == nil || rejected == nil) && time.Now().Before(deadline) {
		var lines []map[string]any
		lines, raw = e2eLogLines(t, logPath)
		for _, l := range lines {
			switch l["msg"] {
			case "provider answered an error status; retrying":
				retry = l
			case "request rejected":
				rejected = l
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if retry == nil || retry["status"] != 529.0 || retry["attempt"] != 1.0 || retry["level"] != "info" {
		t.Errorf("retry log line %v, want status 529, attempt 1 at info", retry)
	}
	if rejected == nil || rejected["reason"] != "unknown_key" || rejected["status"] != 401.0 {
		t.Errorf("rejection log line %v, want reason unknown_key, status 401", rejected)
	}
	if strings.Contains(raw, badKey[3:]) || strings.Contains(raw, tok[3:]) {
		t.Error("the log contains a gateway key")
	}
}

// TestE2ETraceWaitsOutALockedDatabase: while another process holds the
// trace database's write lock past the writer's busy timeout (an
// operator's long transaction), calls are answered at once, /metrics
// counts the failed writes, and once the lock is gone every call is in the
// trace: nothing dropped. The lock is held for one busy timeout, which the
// old writer's single retry also outlasted; retrying for as long as the
// failure lasts is TestWriterHoldsEventsWhileDiskFull's (store).
func TestE2ETraceWaitsOutALockedDatabase(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "metis.db")
	metricsPort := freePort(t)
	up := fakeupstream.New(t)
	g := e2eStartCustom(t, func(gw, an int) string {
		return fmt.Sprintf(`{
	admin off
	grace_period 1s
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
`, gatewayConfig(db, up.URL, ""), gw, an, metricsPort)
	})
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	_, tok := e2eKey(g, "locked-out", "haiku")
	before := e2eScrape(t, metricsURL)

	other, err := sql.Open("sqlite3", "file:"+db+"?_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Begin() // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		up.Enqueue("/v1/messages", fakeupstream.AnthropicMessage("claude-haiku-4-5", 20, "end_turn", fakeupstream.TextBlock("Held in memory.")))
		start := time.Now()
		resp := g.post("/v1/messages", tok, `{"model":"haiku","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`, e2eAnthropicHdr...)
		if body := e2eRead(t, resp); resp.StatusCode != 200 {
			t.Fatalf("call %d with the database locked: %d %s", i, resp.StatusCode, body)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("call %d took %v: the trace delayed the answer", i, d)
		}
	}
	// The writer's first attempt fails after its 5 s busy timeout.
	deadline := time.Now().Add(15 * time.Second)
	for {
		a, _ := e2eSeries(e2eScrape(t, metricsURL), "metis_trace_write_errors_total")
		b, _ := e2eSeries(before, "metis_trace_write_errors_total")
		if a-b >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("metis_trace_write_errors_total did not grow while the database was locked")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if calls := e2eCalls(g, 3); len(calls) != 3 {
		t.Fatalf("%d calls in the trace after the lock went, want 3", len(calls))
	}
	after := e2eScrape(t, metricsURL)
	a, _ := e2eSeries(after, "metis_trace_events_dropped_total")
	b, _ := e2eSeries(before, "metis_trace_events_dropped_total")
	if a != b || g.app().store.Stats().Dropped != 0 {
		t.Fatalf("trace events dropped: metric grew by %v, store %+v", a-b, g.app().store.Stats())
	}
}

// A reload that drops an alias a key's model list names says so in the
// log, naming the key and the models it can no longer use: the key works
// for its other models, and its calls for those get a 404 with nothing
// else to say why (audit 16B).
func TestE2EReloadWarnsOfKeyModelsNoLongerServed(t *testing.T) {
	up := fakeupstream.New(t)
	const alias = "alias my-sonnet anthropic:claude-sonnet-4-5"
	g, logPath, _ := e2eStartLogged(t, up, "INFO", alias)
	k, _ := e2eKey(g, "carol", "my-sonnet", "haiku")
	_, _ = e2eKey(g, "dave", "haiku")
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(strings.Replace(g.custom, alias, "", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := reloadCaddy(cfg); err != nil {
		t.Fatal(err)
	}
	var warned []map[string]any
	lines, _ := e2eLogLines(t, logPath)
	for _, l := range lines {
		if strings.Contains(fmt.Sprint(l["msg"]), "does not serve") {
			warned = append(warned, l)
		}
	}
	if len(warned) != 1 || warned[0]["key_id"] != k.ID || fmt.Sprint(warned[0]["models"]) != "[my-sonnet]" {
		t.Errorf("warnings after the reload: %v; want one naming %s and [my-sonnet]", warned, k.ID)
	}
}

// count_tokens for a model of an OpenAI-type provider is answered with
// the gateway's estimate and reaches no provider: metis_requests_total,
// which counts requests sent to a provider, does not grow (review 19R).
func TestCountTokensEstimateIsNoProviderRequest(t *testing.T) {
	up := fakeupstream.New(t)
	g, _, metricsURL := e2eObservedGateway(t, up, t.TempDir(), "")
	_, tok := e2eKey(g, "counter")
	before := e2eScrape(t, metricsURL)
	for range 3 {
		resp := g.post("/v1/messages/count_tokens", tok, `{"model":"nano","messages":[{"role":"user","content":"How many tokens is this?"}]}`, e2eAnthropicHdr...)
		if body := e2eRead(t, resp); resp.StatusCode != http.StatusOK || resp.Header.Get("Metis-Token-Count") != "estimated" {
			t.Fatalf("count_tokens: %d %s", resp.StatusCode, body)
		}
	}
	g.waitEvents(typeTokensCounted, 3)
	if n := len(up.Requests()); n != 0 {
		t.Fatalf("the provider saw %d requests", n)
	}
	after := e2eScrape(t, metricsURL)
	a, _ := e2eSeries(after, "metis_requests_total", "provider", "openai")
	b, _ := e2eSeries(before, "metis_requests_total", "provider", "openai")
	if a != b {
		t.Errorf("metis_requests_total{provider=\"openai\"} grew by %v for 3 estimates that reached no provider", a-b)
	}
}
