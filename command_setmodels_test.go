//go:build cgo

package metis

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/metisgateway/metis/internal/fakeupstream"
	"github.com/metisgateway/metis/store"
)

// TestSetModelsAppliesToARunningGateway: `caddy metis set-models` changes
// the models a key may use, and a running gateway applies it within a few
// seconds, with the same token: the developer keeps their configuration.
// Before it, an operator had to revoke the key and hand out a new token
// (audit 24O). --all lifts the restriction; a revoked or unknown key and a
// missing or empty list are refused with a message saying what to do.
func TestSetModelsAppliesToARunningGateway(t *testing.T) {
	up := fakeupstream.New(t)
	g := startGateway(t, gatewayConfig(tempDB(t), up.URL, ""))
	k, tok := g.issueKey(store.IssueParams{Name: "alice-laptop", AllowedModels: []string{"haiku"}})
	body := func(model string) string {
		return `{"model":"` + model + `","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
	}
	status := func(model string) int {
		up.Enqueue("/v1/messages", fakeupstream.FromFixture(fakeupstream.FixtureAnthropicNonStream, 1))
		resp := g.post("/v1/messages", tok, body(model), e2eAnthropicHdr...)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	waitStatus := func(model string, want int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			st := status(model)
			if st == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: status %d 5 s after set-models, want %d", model, st, want)
			}
		}
	}
	run := func(args ...string) (string, error) {
		// As runBudgetCLI: built without runE, so errors come back.
		root := &cobra.Command{Use: "metis", SilenceErrors: true, SilenceUsage: true}
		root.PersistentFlags().String("db", "", "database")
		root.AddCommand(setModelsCommand(func(f runFunc) runFunc { return f }))
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"set-models"}, append(args, "--db", g.DB)...))
		err := root.Execute()
		return out.String(), err
	}
	if st := status("sonnet"); st != http.StatusForbidden {
		t.Fatalf("sonnet before set-models: %d, want 403", st)
	}

	out, err := run(k.ID, "--models", "haiku, sonnet")
	if err != nil || !strings.Contains(out, "models: "+k.ID+" (alice-laptop) may use haiku,sonnet") {
		t.Fatalf("set-models --models haiku,sonnet: %v\n%s", err, out)
	}
	waitStatus("sonnet", http.StatusOK)
	if st := status("nano"); st != http.StatusForbidden {
		t.Errorf("nano, not in the new list: %d, want 403", st)
	}

	out, err = run(k.ID, "--models", "sonnet")
	if err != nil {
		t.Fatalf("set-models --models sonnet: %v\n%s", err, out)
	}
	waitStatus("haiku", http.StatusForbidden)

	out, err = run(k.ID, "--all")
	if err != nil || !strings.Contains(out, "may use every model") {
		t.Fatalf("set-models --all: %v\n%s", err, out)
	}
	waitStatus("nano", http.StatusOK)
	keys, err := g.app().store.ListKeys(t.Context())
	if err != nil || len(keys) != 1 || len(keys[0].AllowedModels) != 0 {
		t.Fatalf("list after --all: %+v %v", keys, err)
	}

	other, _ := g.issueKey(store.IssueParams{Name: "gone"})
	if _, err := g.app().store.RevokeKey(t.Context(), other.ID); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{k.ID}, "give --models a,b"},
		{[]string{k.ID, "--models", " , "}, `--models " , " lists no model; give --all`},
		{[]string{k.ID, "--models", "haiku", "--all"}, "not both"},
		{[]string{other.ID, "--models", "haiku"}, "is revoked; issue a new one"},
		{[]string{"gk_01M8JE6F7EEBPTJH5T5MMHEG62", "--all"}, "no key with id"},
		{[]string{"alice-laptop", "--all"}, "is not a key id"},
	} {
		if out, err := run(c.args...); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("set-models %v: err %v (output %q), want an error saying %q", c.args, err, out, c.want)
		}
	}
	if st := status("nano"); st != http.StatusOK {
		t.Errorf("after the refused commands the key's models changed: nano %d", st)
	}

	// An expired key's list changes, and the operator is told it is expired.
	old, _ := g.issueKey(store.IssueParams{Name: "old", ExpiresIn: time.Millisecond})
	time.Sleep(5 * time.Millisecond)
	if out, err := run(old.ID, "--models", "haiku"); err != nil || !strings.Contains(out, "note: key "+old.ID+" expired at") {
		t.Errorf("set-models on an expired key: %v, output %q; want it set, with a note that the key expired", err, out)
	}
}
