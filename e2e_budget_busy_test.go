package metis

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// TestBudgetRefusalWhileTheLedgerIsLocked: a key whose budget has no room
// for the call is refused while another process holds the database's
// write lock. Under `budget_failure open` such a call used to wait out the
// 5 s lock wait and then go to the provider unbudgeted, spending past the
// hard limit; under `closed` it got a 503 saying the budget could not be
// checked. The budget could be read all along (WAL readers wait for no
// writer): it is now refused with the 429 the developer gets unlocked, and
// once refused the key's further calls are refused at once, without
// queueing behind the lock.
func TestBudgetRefusalWhileTheLedgerIsLocked(t *testing.T) {
	for _, policy := range []string{"open", "closed"} {
		t.Run(policy, func(t *testing.T) {
			up := fakeupstream.New(t)
			g := startGateway(t, gatewayConfig(tempDB(t), up.URL, "budget_failure "+policy))
			k, tok := g.issueKey(store.IssueParams{Name: "capped"})
			// Room for one call's worst case ($0.00318), not two.
			capKey(t, g, k, 0.004)
			up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1))
			resp := g.post("/v1/messages", tok, capsBody, e2eAnthropicHdr...)
			if b := e2eRead(t, resp); resp.StatusCode != http.StatusOK {
				t.Fatalf("the first call: %d %s", resp.StatusCode, b)
			}
			for deadline := time.Now().Add(5 * time.Second); keyQuota(t, g, k).Reserved != 0; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the first call never settled")
				}
			}
			release := holdWriteLock(t, g.DB)
			for i := range 2 {
				// A reply is queued in case the call gets through.
				up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1))
				start := time.Now()
				resp := g.post("/v1/messages", tok, capsBody, e2eAnthropicHdr...)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				t.Logf("call %d with the ledger locked: %d after %v", i+2, resp.StatusCode, took.Round(10*time.Millisecond))
				if resp.StatusCode != http.StatusTooManyRequests {
					t.Fatalf("call %d of a key without room, ledger locked, budget_failure %s: status %d, want 429", i+2, policy, resp.StatusCode)
				}
				if i == 1 && took > time.Second {
					t.Errorf("a refused key's next call took %v behind the lock", took.Round(10*time.Millisecond))
				}
			}
			release()
			if n := len(up.Requests()); n != 1 {
				t.Errorf("%d calls reached the provider, want 1 (the two refused must not)", n)
			}
			g.sync()
			if rej := g.events(store.TypeRequestRejected); len(rej) != 2 || rej[0]["reason"] != "budget" || rej[1]["reason"] != "budget" {
				t.Errorf("rejections recorded: %v, want two budget refusals", rej)
			}
		})
	}
}
