package metis

// End-to-end under concurrency: 100 streamed calls at once, in both
// shapes, same-shape and translated, over four keys. Every call ends in
// exactly one trace triple and the dollars add up.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

func TestE2EConcurrentStreams(t *testing.T) {
	g, up := e2eSetup(t, "")
	const perGroup = 25
	const text = "The quick brown fox jumps over the lazy dog."
	// Per call, priced on the provider's usage whatever the client's shape:
	//   anthropic upstream (AnthropicTextStream): input 12, output 44/4+1 = 12
	//     claude-haiku-4-5: 12 × $1/MTok + 12 × $5/MTok = 0.000012 + 0.00006 = 0.000072
	//   openai upstream (OpenAITextStream, prompt 20): completion 44/4+1 = 12
	//     gpt-5-nano: 20 × $0.05/MTok + 12 × $0.40/MTok = 0.000001 + 0.0000048 = 0.0000058
	// 50 calls of each: 50 × 0.000072 + 50 × 0.0000058 = 0.0036 + 0.00029 = 0.00389
	const wantTotal = 0.00389
	for range 2 * perGroup {
		a := fakeupstream.AnthropicTextStream("claude-haiku-4-5", text)
		a.Gap = 2 * time.Millisecond
		o := fakeupstream.OpenAITextStream("gpt-5-nano", text, 20, true)
		o.Gap = 2 * time.Millisecond
		up.Enqueue("/v1/messages", a)
		up.Enqueue("/v1/chat/completions", o)
	}
	var keys [4]store.Key
	var toks [4]string
	for i := range keys {
		keys[i], toks[i] = e2eKey(g, fmt.Sprintf("conc-%d", i))
	}
	groups := []struct {
		path, model string
		anthropic   bool // client shape
	}{
		{"/v1/messages", "haiku", true},
		{"/v1/chat/completions", "nano", false},
		{"/v1/messages", "nano", true},
		{"/v1/chat/completions", "haiku", false},
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}, Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	errs := make(chan error, 4*perGroup)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for gi, gr := range groups {
		for i := range perGroup {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				body := fmt.Sprintf(`{"model":%q,"stream":true,"messages":[{"role":"user","content":"call %d-%d"}]}`, gr.model, gi, i)
				if gr.anthropic {
					body = fmt.Sprintf(`{"model":%q,"max_tokens":64,"stream":true,"messages":[{"role":"user","content":"call %d-%d"}]}`, gr.model, gi, i)
				}
				req, _ := http.NewRequest(http.MethodPost, g.URL+gr.path, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Api-Key", toks[(gi+i)%4])
				if gr.anthropic {
					req.Header.Set("Anthropic-Version", "2023-06-01")
				}
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("%s %s: status %d", gr.path, gr.model, resp.StatusCode)
					return
				}
				if err := e2eCheckStreamText(resp, gr.anthropic, text); err != nil {
					errs <- fmt.Errorf("%s %s: %v", gr.path, gr.model, err)
				}
			}()
		}
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	if a, o := up.Count("/v1/messages"), up.Count("/v1/chat/completions"); a != 2*perGroup || o != 2*perGroup {
		t.Errorf("provider saw %d anthropic and %d openai calls, want %d each", a, o, 2*perGroup)
	}
	calls := e2eCalls(g, 4*perGroup)
	if len(calls) != 4*perGroup {
		t.Fatalf("%d llm.call_completed events for %d calls", len(calls), 4*perGroup)
	}
	total := 0.0
	perKey := map[string]int{}
	for _, c := range calls {
		e2eWant(t, "call", c, map[string]any{"status": 200, "error_class": nil, "usage_source": "provider", "stream": true, "attempts": 1})
		total += e2eCost(t, c)
		perKey[fmt.Sprint(c["gateway_key_id"])]++
	}
	if !e2eNear(total, wantTotal) {
		t.Errorf("sum of costs %v, want %v", total, wantTotal)
	}
	for _, k := range keys {
		if perKey[k.ID] != perGroup {
			t.Errorf("key %s has %d calls, want %d", k.Name, perKey[k.ID], perGroup)
		}
	}
	var sqlTotal float64
	if err := g.db().QueryRow(`SELECT SUM(json_extract(payload_json, '$.cost_usd')) FROM events WHERE type = 'llm.call_completed'`).Scan(&sqlTotal); err != nil || !e2eNear(sqlTotal, wantTotal) {
		t.Errorf("SQL sum of costs %v (%v), want %v", sqlTotal, err, wantTotal)
	}

	// Every turn: exactly route.decided, llm.call_completed, turn.completed,
	// in that order; turn ids unique.
	rows, err := g.db().Query(`SELECT type, json_extract(payload_json, '$.turn_id') FROM events ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	seq := map[string][]string{}
	for rows.Next() {
		var typ, turn string
		if err := rows.Scan(&typ, &turn); err != nil {
			t.Fatal(err)
		}
		seq[turn] = append(seq[turn], typ)
	}
	rows.Close()
	if len(seq) != 4*perGroup {
		t.Errorf("%d distinct turns for %d calls", len(seq), 4*perGroup)
	}
	for turn, s := range seq {
		if strings.Join(s, ",") != "route.decided,llm.call_completed,turn.completed" {
			t.Errorf("turn %s: %v", turn, s)
		}
	}
	if s := g.app().store.Stats(); s.Dropped != 0 || s.Enqueued != s.Written {
		t.Errorf("store stats %+v: events dropped or unwritten", s)
	}
}

// e2eCheckStreamText reads a whole stream and checks that it completed
// and carried text, in the client's shape.
func e2eCheckStreamText(resp *http.Response, anthropicShape bool, want string) error {
	rd := e2eNewSSEReader(resp.Body)
	var got strings.Builder
	var last e2eSSE
	for {
		ev, ok := rd.next()
		if !ok {
			break
		}
		last = ev
		if anthropicShape {
			if ev.Name == "content_block_delta" {
				var d struct {
					Delta struct {
						Text string `json:"text"`
					} `json:"delta"`
				}
				if err := e2eUnmarshal(ev.Data, &d); err != nil {
					return err
				}
				got.WriteString(d.Delta.Text)
			}
			continue
		}
		if ev.Data == "[DONE]" {
			continue
		}
		var c struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := e2eUnmarshal(ev.Data, &c); err != nil {
			return err
		}
		for _, ch := range c.Choices {
			got.WriteString(ch.Delta.Content)
		}
	}
	if got.String() != want {
		return fmt.Errorf("text %q, want %q", got.String(), want)
	}
	if anthropicShape && last.Name != "message_stop" {
		return fmt.Errorf("stream ended with %q, want message_stop", last.Name)
	}
	if !anthropicShape && last.Data != "[DONE]" {
		return fmt.Errorf("stream ended with %q, want [DONE]", last.Data)
	}
	return nil
}

func e2eUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
