package metis

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/metisgateway/metis/store"
)

// 5a50f1d puts X-Should-Retry: false on every gateway 401, "invalid
// gateway key" included. README (keys): "A key normally works as soon as
// issue-key returns: … while invalid tokens flood it (or analytics queries
// hold every read connection) a new key waits for the once-a-second poll
// instead." In that window the gateway answers a key issued a moment ago
// with a 401 that a retry a second later would turn into a 200, yet it
// tells Claude Code (which honours the header) and the SDKs never to
// retry: the developer handed a fresh key is told "invalid gateway key"
// and gives up, where before Claude Code's own retries got through.
func TestFreshKeyIn401WindowIsNotFinal(t *testing.T) {
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
	// A flood of unknown gw_ tokens (a client with a stale key in a loop).
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				resp := g.post("/v1/messages", fmt.Sprintf("gw_01JFLOOD%02dFLOOD%06d00000000000000000000000000", w, i), `{}`)
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	body := `{"model":"claude-haiku-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
	var (
		tok   string
		resp  *http.Response
		first []byte
	)
	// A key served at once (the poll or a miss check came between) does
	// not show the window: issue another, up to ten.
	for i := range 10 {
		_, tok, err = cli.IssueKey(context.Background(), store.IssueParams{Name: fmt.Sprint("fresh-", i), User: "dev"})
		if err != nil {
			t.Fatal(err)
		}
		resp = g.post("/v1/messages", tok, body)
		first, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized {
			break
		}
		time.Sleep(150 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Skipf("ten fresh keys were served at once (%d): the window was not hit", resp.StatusCode)
	}
	t.Logf("fresh key, first call: %d %s, X-Should-Retry %q", resp.StatusCode, first, resp.Header.Get("X-Should-Retry"))
	time.Sleep(1500 * time.Millisecond)
	resp2 := g.post("/v1/messages", tok, body)
	_, _ = io.Copy(io.Discard, resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusOK {
		t.Fatalf("fresh key after the poll: %d, want 200", resp2.StatusCode)
	}
	if strings.EqualFold(resp.Header.Get("X-Should-Retry"), "false") {
		t.Errorf("a key issued a moment ago got 401 %q with X-Should-Retry: false, yet the same call 1.5 s later got 200: the refusal was not final", first)
	}
	if ra := resp.Header.Get("Retry-After"); ra != "1" {
		t.Errorf("the unchecked refusal's Retry-After is %q, want 1 (the poll finds a new key within a second)", ra)
	}
}
