package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/metisgateway/metis/bench/workload"
)

// Target IDs. F0 is the mock itself; F2, F3 and Metis are Caddy processes.
const (
	tF0        = "F0 direct"
	tF2        = "F2 reverse_proxy"
	tF3        = "F3 own forwarding"
	tMetis     = "Metis"
	tF3OAI     = "F3 · OpenAI 4 KB"
	tMetisOAI  = "Metis · OpenAI 4 KB same-shape"
	tMetisXOAI = "Metis · OpenAI→Anthropic 4 KB"
)

// Provider names in the Metis config: the M0 mock for plain calls, the
// M-stream mock for streams.
const (
	provAnthropic       = "anthropic"
	provOpenAI          = "openai"
	provAnthropicStream = "anthropic_stream"
)

// benchModel is a catalogue model, so every call is priced.
const benchModel = "claude-haiku-4-5"

// openAIModel is an OpenAI catalogue model for the same-shape 4 KB row.
const openAIModel = "gpt-5-mini"

// servers are the listen addresses of one Caddy process: one server in
// front of the M0 mock and one in front of the M-stream mock (the Metis
// process needs only the first: it routes by model).
type servers struct {
	M0, Stream string // host:port
}

// caddyJSON renders a Caddy config with admin off, logs at INFO on stderr
// and the given HTTP servers and extra apps.
func caddyJSON(srv map[string]any, apps map[string]any) (json.RawMessage, error) {
	if apps == nil {
		apps = map[string]any{}
	}
	apps["http"] = map[string]any{"servers": srv}
	cfg := map[string]any{
		"admin":   map[string]any{"disabled": true, "config": map[string]any{"persist": false}},
		"logging": map[string]any{"logs": map[string]any{"default": map[string]any{"level": "INFO"}}},
		"apps":    apps,
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding caddy config: %w", err)
	}
	return b, nil
}

func server(listen string, handler map[string]any) map[string]any {
	return map[string]any{
		"listen":          []string{listen},
		"automatic_https": map[string]any{"disable": true},
		"routes":          []any{map[string]any{"handle": []any{handler}}},
	}
}

// floorConfig is F3 (own forwarding) or F2 (reverse_proxy, defaults) in
// front of both mocks.
func floorConfig(reverseProxy bool, s servers, m0URL, streamURL string) (json.RawMessage, error) {
	h := func(up string) (map[string]any, error) {
		if !reverseProxy {
			return map[string]any{"handler": "metis_bench_forward", "upstream": up}, nil
		}
		u, err := url.Parse(up)
		if err != nil {
			return nil, fmt.Errorf("parsing upstream %q: %w", up, err)
		}
		return map[string]any{"handler": "reverse_proxy", "upstreams": []any{map[string]any{"dial": u.Host}}}, nil
	}
	hm0, err := h(m0URL)
	if err != nil {
		return nil, err
	}
	hs, err := h(streamURL)
	if err != nil {
		return nil, err
	}
	return caddyJSON(map[string]any{"m0": server(s.M0, hm0), "stream": server(s.Stream, hs)}, nil)
}

// writerTuning overrides the trace writer's batch size and flush interval
// (zero: the gateway's defaults), for experiments.
type writerTuning struct {
	Batch int
	Flush time.Duration
}

// metisConfig is the gateway with trace writing into db. Provider keys are
// dummies: the mock doesn't check them.
func metisConfig(listen, db, m0URL, streamURL string, wt writerTuning) (json.RawMessage, error) {
	app := map[string]any{
		"db": db,
		"providers": []any{
			map[string]any{"name": provAnthropic, "type": "anthropic", "api_key": "sk-ant-bench", "base_url": m0URL},
			map[string]any{"name": provOpenAI, "type": "openai", "api_key": "sk-bench", "base_url": m0URL + "/v1"},
			map[string]any{"name": provAnthropicStream, "type": "anthropic", "api_key": "sk-ant-bench", "base_url": streamURL},
		},
	}
	if wt.Batch > 0 || wt.Flush > 0 {
		w := map[string]any{}
		if wt.Batch > 0 {
			w["batch_size"] = wt.Batch
		}
		if wt.Flush > 0 {
			w["flush_interval"] = wt.Flush.String()
		}
		app["writer"] = w
	}
	return caddyJSON(map[string]any{"gw": server(listen, map[string]any{"handler": "metis_gateway"})},
		map[string]any{"metis": app})
}

// target is one thing the load generator can hit.
type target struct {
	id     string
	proc   *child // the Caddy process serving it; nil for F0
	url    string
	header http.Header
	body   []byte
}

// env holds the running processes and what targets need from them.
type env struct {
	mock                *child
	m0URL, streamURL    string
	f2, f3, metis       *child
	f2Srv, f3Srv        servers
	metisAddr           string
	token               string
	metisCtl, f3Ctl     string // control addresses (pprof, stats)
	caddyVer, sqliteVer string
	smokeCalls          int // requests sent to Metis outside measured runs
}

// target builds the request of a target in a scenario.
func (e *env) target(id string, sc *scenario) target {
	stream := sc.Stream
	anth := func(model string) []byte { return workload.AnthropicBody(model, sc.MaxTokens, stream) }
	base := func(s servers) string {
		if stream {
			return "http://" + s.Stream
		}
		return "http://" + s.M0
	}
	metisHdr := http.Header{"X-Api-Key": {e.token}, "Anthropic-Version": {"2023-06-01"}}
	floorHdr := http.Header{"X-Api-Key": {"sk-ant-bench"}, "Anthropic-Version": {"2023-06-01"}}
	metisModel := benchModel
	if stream {
		metisModel = provAnthropicStream + ":" + benchModel
	}
	switch id {
	case tF0:
		u := e.m0URL
		if stream {
			u = e.streamURL
		}
		return target{id: id, url: u + "/v1/messages", header: floorHdr, body: anth(benchModel)}
	case tF2:
		return target{id: id, proc: e.f2, url: base(e.f2Srv) + "/v1/messages", header: floorHdr, body: anth(benchModel)}
	case tF3:
		return target{id: id, proc: e.f3, url: base(e.f3Srv) + "/v1/messages", header: floorHdr, body: anth(benchModel)}
	case tMetis:
		return target{id: id, proc: e.metis, url: "http://" + e.metisAddr + "/v1/messages", header: metisHdr, body: anth(metisModel)}
	case tF3OAI:
		return target{id: id, proc: e.f3, url: "http://" + e.f3Srv.M0 + "/v1/chat/completions",
			header: http.Header{"Authorization": {"Bearer sk-bench"}}, body: workload.OpenAI4KBody(openAIModel)}
	case tMetisOAI:
		return target{id: id, proc: e.metis, url: "http://" + e.metisAddr + "/v1/chat/completions",
			header: http.Header{"Authorization": {"Bearer " + e.token}}, body: workload.OpenAI4KBody(openAIModel)}
	case tMetisXOAI:
		return target{id: id, proc: e.metis, url: "http://" + e.metisAddr + "/v1/chat/completions",
			header: http.Header{"Authorization": {"Bearer " + e.token}}, body: workload.OpenAI4KBody(benchModel)}
	}
	panic("unknown target " + id)
}
