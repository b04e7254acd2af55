package metis

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"

	_ "github.com/metisgateway/metis/bench/floor" // the F3 floor's handler
	"github.com/metisgateway/metis/bench/mock"
	"github.com/metisgateway/metis/store"
)

// BenchmarkGatewayCall is one non-streamed Anthropic call through a real
// Caddy with the gateway on loopback, against the benchmark's instant mock,
// trace writing on. Its CPU and allocation profiles
// (-cpuprofile/-memprofile) show the gateway's per-call work; the process
// also holds the client and the mock, so BenchmarkGatewayCallFloor (the
// same request through Caddy with the F3 floor's forwarding handler) is the
// baseline to subtract, and BenchmarkGatewayCallDirect (straight to the
// mock) the client's and the mock's share.
func BenchmarkGatewayCall(b *testing.B) {
	up := httptest.NewServer(mock.NewHandler(mock.M0))
	defer up.Close()
	g := startGateway(b, gatewayConfig(tempDB(b), up.URL, os.Getenv("METIS_BENCH_EXTRA")))
	_, token := g.issueKey(store.IssueParams{Name: "bench", User: "u", Team: "t"})
	benchCalls(b, g.URL+"/v1/messages", token)
	b.StopTimer()
	g.sync()
}

// BenchmarkGatewayCallDirect is BenchmarkGatewayCall's request sent
// straight to the mock: the client's and the mock's share of the process.
func BenchmarkGatewayCallDirect(b *testing.B) {
	up := httptest.NewServer(mock.NewHandler(mock.M0))
	defer up.Close()
	benchCalls(b, up.URL+"/v1/messages", "")
}

// BenchmarkGatewayCallFloor is BenchmarkGatewayCall's request through a
// Caddy whose only handler is the F3 floor (bench/floor): forwarding with
// no auth, parsing, cost or trace.
func BenchmarkGatewayCallFloor(b *testing.B) {
	up := httptest.NewServer(mock.NewHandler(mock.M0))
	defer up.Close()
	port := freePort(b)
	cf := fmt.Sprintf("{\n\tadmin off\n\tpersist_config off\n\tlog {\n\t\tlevel ERROR\n\t}\n}\nhttp://127.0.0.1:%d {\n\tmetis_bench_forward %s\n}\n", port, up.URL)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cf), nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := caddy.Load(cfg, true); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = caddy.Stop() }()
	benchCalls(b, fmt.Sprintf("http://127.0.0.1:%d/v1/messages", port), "")
}

func benchCalls(b *testing.B, url, token string) {
	body := []byte(`{"model":"haiku","max_tokens":16,"messages":[{"role":"user","content":"Say hello to the benchmark, briefly please."}]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	do := func() {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Anthropic-Version", "2023-06-01")
		if token != "" {
			req.Header.Set("X-Api-Key", token)
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(out), `"usage"`) {
			b.Fatalf("status %d: %s", resp.StatusCode, out)
		}
	}
	for range 200 {
		do()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		do()
	}
}
