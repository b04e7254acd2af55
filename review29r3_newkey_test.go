package metis

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// While unknown tokens flood the gateway's checks for new keys (README:
// "a new key waits for the once-a-second poll"), a key issued a moment ago
// was refused with 401 "invalid gateway key" — with X-Should-Retry: false
// after 5a50f1d, so Claude Code gave up on a good key (review 29R3); with
// Retry-After: 1 after f0c22f0, on which Claude Code backs off up to three
// minutes for a mistyped one (29R4). The gateway now waits for a check
// that began after the request: each fresh key works on its first call.
func TestFreshKeyWorksAtOnceDuringAFlood(t *testing.T) {
	g, _ := e2eSetup(t, "")
	cli, err := store.Open(g.DB, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = cli.Close(ctx)
		cancel()
	})
	defer floodUnknownTokens(g)()
	body := `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
	for i := range 5 {
		_, tok, err := cli.IssueKey(context.Background(), store.IssueParams{Name: fmt.Sprint("fresh-", i), User: "dev"})
		if err != nil {
			t.Fatal(err)
		}
		resp := g.post("/v1/messages", tok, body)
		first, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("fresh key %d, first call during a flood of unknown tokens: %d %s (X-Should-Retry %q, Retry-After %q); want 200",
				i, resp.StatusCode, first, resp.Header.Get("X-Should-Retry"), resp.Header.Get("Retry-After"))
		}
	}
}

// floodUnknownTokens sends unknown gw_ tokens from four goroutines (a
// client with a stale key in a loop) until the returned func is called:
// more than the miss checks' budget, so new tokens wait for the key poll.
func floodUnknownTokens(g *testGateway) (stop func()) {
	var done atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !done.Load(); i++ {
				resp := g.post("/v1/messages", fmt.Sprintf("gw_01JFLOOD%02dFLOOD%06d00000000000000000000000000", w, i), `{}`)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	return func() { done.Store(true); wg.Wait() }
}
