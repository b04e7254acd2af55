package metis

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// A flood of refused requests (anyone can send them to a public gateway,
// with no key or a made-up one) writes a bounded number of rows, and the
// trace still counts every refusal: past a burst, each reason's refusals
// are written as one request.rejected event with their count, carrying the
// key's tags when a key was valid and the model asked for.
func TestRefusalFloodIsSummed(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "k", Team: "eng", AllowedModels: []string{"haiku"}})
	lim := g.app().rejects
	lim.mu.Lock()
	lim.every = time.Hour // the test flushes; a timer firing in a slow run would add rows
	lim.mu.Unlock()
	body := `{"model":"haiku","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	const workers, each = 8, 50 // 400 with a made-up key
	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				resp := g.post("/v1/messages", fmt.Sprintf("gw_made_up_%d_%d", w, i), body)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i := range 100 { // a valid key asking for models it may not use
		model := []string{"sonnet", "gpt-5-mini"}[i%2]
		resp := g.post("/v1/messages", tok, `{"model":"`+model+`","max_tokens":5,"messages":[]}`)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	for range 3 { // no key at all
		resp := g.post("/v1/chat/completions", "", `{"model":"gpt-5-nano","messages":[]}`)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
	}
	elapsed := time.Since(start)
	if statuses[401] != workers*each+3 || statuses[403] != 100 {
		t.Fatalf("statuses %v, want %d 401s and 100 403s", statuses, workers*each+3)
	}
	lim.flush() // what the timer does every rejectSumEvery
	rej := g.events(store.TypeRequestRejected)
	// One row per refusal for each allowance's burst and refill (no key,
	// the valid key), plus one sum per key, reason, shape and model.
	if limit := 2*(rejectBurst+int(elapsed.Seconds()*rejectRate)+1) + 4; len(rej) > limit {
		t.Errorf("%d request.rejected rows for %d refusals, want at most %d", len(rej), workers*each+103, limit)
	}
	counts := map[string]float64{}
	byModel := map[string]float64{} // the valid key's, by requested model
	sums := 0
	for _, e := range rej {
		n := 1.0
		if c, ok := e["count"].(float64); ok {
			n = c
			if c > 1 {
				sums++
				if _, ok := e["first_timestamp_us"].(float64); !ok {
					t.Errorf("a sum of %v refusals has no first_timestamp_us: %v", c, e)
				}
			}
		}
		counts[fmt.Sprint(e["reason"])] += n
		if e["reason"] == "model_not_allowed" {
			byModel[fmt.Sprint(e["requested_model"])] += n
			if e["gateway_key_id"] != k.ID || e["team"] != "eng" {
				t.Errorf("a refusal of a valid key lost its tags: %v", e)
			}
		}
		if e["reason"] == "unknown_key" && e["gateway_key_id"] != nil {
			t.Errorf("a refusal without a valid key names one: %v", e)
		}
	}
	if sums == 0 {
		t.Errorf("no summed event among %d rows", len(rej))
	}
	want := map[string]float64{"unknown_key": workers * each, "model_not_allowed": 100, "missing_key": 3}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("refusals counted by reason %v, want %v", counts, want)
	}
	// A model filter matches summed refusals as it matches single ones.
	if byModel["sonnet"] != 50 || byModel["gpt-5-mini"] != 50 {
		t.Errorf("the key's refusals by model %v, want 50 each", byModel)
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("%d refused requests reached the upstream", n)
	}
}

// The limiter writes its sums on its timer and when the store closes, and
// refusals after the close are written one by one.
func TestRejectLimiterWritesSums(t *testing.T) {
	var mu sync.Mutex
	var got []store.Event
	l := newRejectLimiter(func(ev store.Event) bool {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev)
		return true
	})
	l.log = func() *zap.Logger { return zaptest.NewLogger(t) }
	l.every = 200 * time.Millisecond
	written := func() (rows int, refusals int64) {
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range got {
			rows++
			refusals += ev.Payload.(map[string]any)["count"].(int64)
		}
		return rows, refusals
	}
	now := time.Now()
	alone := 0
	for i := range 100 {
		if l.allow("", now) {
			alone++
			continue
		}
		l.sum(rejectGroup{reason: "unknown_key", shape: "anthropic"}, now.Add(time.Duration(i)), map[string]any{"reason": "unknown_key"})
	}
	if alone != rejectBurst {
		t.Fatalf("%d of 100 refusals at one instant written alone, want the burst %d", alone, rejectBurst)
	}
	if !l.allow("", now.Add(time.Second)) {
		t.Error("no refusal allowed alone a second after the burst")
	}
	if !l.allow("gk_1", now) {
		t.Error("a key's refusal is summed for a flood without a key")
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, n := written(); n == 100-rejectBurst {
			break
		}
	}
	// One row, or two if the summing straddled a tick on a slow machine.
	if rows, n := written(); rows < 1 || rows > 2 || n != 100-rejectBurst {
		t.Fatalf("after the timer: %d rows for %d refusals, want 1 for %d", rows, n, 100-rejectBurst)
	}
	before, _ := written()
	l.sum(rejectGroup{reason: "missing_key", shape: "openai"}, now, map[string]any{"reason": "missing_key"})
	l.close()
	if rows, n := written(); rows != before+1 || n != 100-rejectBurst+1 {
		t.Fatalf("after close: %d rows for %d refusals, want %d for %d", rows, n, before+1, 100-rejectBurst+1)
	}
	if !l.allow("", now) {
		t.Error("a refusal after close is not written alone")
	}
}

// The groups summed at once are bounded: a flood naming a new model each
// time is summed without the model past maxRejectGroups, counted all the
// same.
func TestRejectLimiterBoundsGroups(t *testing.T) {
	var got []store.Event
	l := newRejectLimiter(func(ev store.Event) bool { got = append(got, ev); return true })
	l.log = func() *zap.Logger { return zaptest.NewLogger(t) }
	now := time.Now()
	for i := range 3 * maxRejectGroups {
		m := fmt.Sprintf("model-%d", i)
		l.sum(rejectGroup{reason: "unknown_model", shape: "openai", model: m}, now, map[string]any{"requested_model": m})
	}
	l.close()
	var n int64
	folded := 0
	for _, ev := range got {
		p := ev.Payload.(map[string]any)
		n += p["count"].(int64)
		if p["requested_model"] == "" {
			folded++
		}
	}
	if len(got) != maxRejectGroups+1 || folded != 1 || n != 3*maxRejectGroups {
		t.Errorf("%d events (%d without a model) for %d refusals, want %d (1) for %d", len(got), folded, n, maxRejectGroups+1, 3*maxRejectGroups)
	}
}

// Closing waits for a flush the timer has begun: the store closes right
// after, and the sums it is writing would otherwise be dropped.
func TestRejectLimiterCloseWaitsForTimersFlush(t *testing.T) {
	var mu sync.Mutex
	written := 0
	writing := make(chan struct{}, 1)
	l := newRejectLimiter(func(store.Event) bool {
		writing <- struct{}{}
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		written++
		mu.Unlock()
		return true
	})
	l.log = func() *zap.Logger { return zaptest.NewLogger(t) }
	l.every = time.Millisecond
	now := time.Now()
	for l.allow("", now) {
	}
	l.sum(rejectGroup{reason: "unknown_key", shape: "anthropic"}, now, map[string]any{"reason": "unknown_key"})
	<-writing // the timer's flush is writing
	l.close()
	mu.Lock()
	defer mu.Unlock()
	if written != 1 {
		t.Errorf("close returned with %d of 1 sums written", written)
	}
}

// A refused request's model is the client's to choose, up to the body's
// size: the answer quotes it, and the trace records it, clipped.
func TestRefusalClipsTheModel(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	_, tok := g.issueKey(store.IssueParams{Name: "k", AllowedModels: []string{"haiku"}})
	long := "claude-" + strings.Repeat("é", 100_000) // 2-byte runes: a cut may fall inside one
	// The upper-case plain one would resolve lower-cased: no hint quotes
	// it back.
	for _, model := range []string{long, strings.ToUpper(long), strings.ToUpper("claude-" + strings.Repeat("a", 100_000))} {
		resp := g.post("/v1/messages", tok, `{"model":"`+model+`","max_tokens":5,"messages":[]}`)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 4 || len(body) > 2*maxRecordedModel+1024 {
			t.Errorf("a %d-byte model: %d with a %d-byte answer", len(model), resp.StatusCode, len(body))
		}
	}
	for _, e := range g.events(store.TypeRequestRejected) {
		m, _ := e["requested_model"].(string)
		msg, _ := e["message"].(string)
		if len(m) > maxRecordedModel+len("…") || len(msg) > maxRecordedMessage+len("…") || !utf8.ValidString(m) || !utf8.ValidString(msg) {
			t.Errorf("recorded a %d-byte model and a %d-byte message (valid UTF-8: %v %v)", len(m), len(msg), utf8.ValidString(m), utf8.ValidString(msg))
		}
	}
}

// Past maxRejectBuckets keys, the allowances that have refilled are
// forgotten (a new one is the same); one still spent is kept.
func TestRejectLimiterPrunesFullBuckets(t *testing.T) {
	l := newRejectLimiter(func(store.Event) bool { return true })
	t0 := time.Now()
	for i := range maxRejectBuckets - 1 {
		l.allow(fmt.Sprintf("gk_%d", i), t0)
	}
	for l.allow("gk_spent", t0.Add(50*time.Second)) { // spent 10 s before the next key comes
	}
	l.allow("gk_new", t0.Add(61*time.Second))
	if _, kept := l.buckets["gk_spent"]; len(l.buckets) != 2 || !kept {
		t.Errorf("%d allowances kept after pruning (spent kept: %v), want gk_spent and gk_new", len(l.buckets), kept)
	}
}

// A model named in more than maxRecordedModel bytes is refused before any
// provider sees it (review 19R): accepted, a provider:model name of any
// length up to the body's limit went whole into every event, the calls
// table and the log line of the call.
func TestLongModelNameRefused(t *testing.T) {
	g, up := e2eSetup(t, "")
	_, tok := e2eKey(g, "longname")
	name := "openai:" + strings.Repeat("m", 200_000)
	resp := g.post("/v1/chat/completions", tok, `{"model":"`+name+`","messages":[{"role":"user","content":"hi"}]}`)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "longer than 256 bytes") || len(body) > 2*maxRecordedModel+256 {
		t.Errorf("%d %.300s (%d bytes)", resp.StatusCode, body, len(body))
	}
	if n := len(up.Requests()); n != 0 {
		t.Errorf("the provider saw %d requests", n)
	}
	rej := g.waitEvents(store.TypeRequestRejected, 1)
	if m, _ := rej[0]["requested_model"].(string); len(m) > maxRecordedModel+len("…") {
		t.Errorf("request.rejected records a %d-byte model", len(m))
	}
	// A name at the bound is served.
	model := "openai:" + strings.Repeat("m", maxRecordedModel-len("openai:"))
	resp = g.post("/v1/chat/completions", tok, `{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("a %d-byte model: %d", len(model), resp.StatusCode)
	}
}
