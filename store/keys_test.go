//go:build cgo

package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

var tokenRE = regexp.MustCompile(`^gw_([0-9A-HJKMNP-TV-Z]{26})([0-9a-f]{32})$`)

func TestIssueAndAuthenticate(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	k, token, err := s.IssueKey(ctx, IssueParams{Name: "alice-laptop", Workspace: "/src/p", User: "alice",
		Team: "eng", AllowedModels: []string{"haiku", "gpt-5-mini"}, ExpiresIn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	m := tokenRE.FindStringSubmatch(token)
	if m == nil {
		t.Fatalf("token %q has the wrong shape", token)
	}
	if k.ID != "gk_"+m[1] {
		t.Fatalf("key id %s does not share the token's ULID %s", k.ID, m[1])
	}
	if d := time.Until(k.ExpiresAt); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("ExpiresAt %v", k.ExpiresAt)
	}
	got, err := s.Authenticate(token)
	if err != nil {
		t.Fatalf("Authenticate: %v", err)
	}
	if got.ID != k.ID || got.Name != "alice-laptop" || got.User != "alice" || got.Team != "eng" ||
		got.Workspace != "/src/p" || strings.Join(got.AllowedModels, ",") != "haiku,gpt-5-mini" {
		t.Fatalf("Authenticate = %+v", got)
	}
	got.Name = "mutated" // a copy: the cache is unaffected
	if again, _ := s.Authenticate(token); again.Name != "alice-laptop" {
		t.Fatal("Authenticate returned the cached key itself")
	}

	for _, bad := range []string{"", "gw_", token[:len(token)-1], token + "0", strings.ToUpper(token), "Bearer " + token} {
		if _, err := s.Authenticate(bad); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnknownKey", bad, err)
		}
	}

	_, other, err := s.IssueKey(ctx, IssueParams{Name: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if other == token {
		t.Fatal("two keys share a token")
	}
	if _, _, err := s.IssueKey(ctx, IssueParams{}); err == nil {
		t.Fatal("IssueKey without a name succeeded")
	}
}

// TestIssueKeyTrimsIdentity: a stray space around a user or team (a quoted
// shell argument) would keep the key out of budgets and filters that name
// the user, which set-budget trims; they are stored trimmed.
func TestIssueKeyTrimsIdentity(t *testing.T) {
	s := openTest(t, Options{})
	k, token, err := s.IssueKey(context.Background(), IssueParams{Name: " laptop ", User: " alice", Team: "eng ", Workspace: " /src/p "})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Authenticate(token)
	if err != nil {
		t.Fatal(err)
	}
	for _, kk := range []Key{k, *got} {
		if kk.Name != "laptop" || kk.User != "alice" || kk.Team != "eng" || kk.Workspace != "/src/p" {
			t.Errorf("key stored as name %q user %q team %q workspace %q", kk.Name, kk.User, kk.Team, kk.Workspace)
		}
	}
	if _, _, err := s.IssueKey(context.Background(), IssueParams{Name: "  "}); err == nil {
		t.Error("a blank name was accepted")
	}
}

func TestRevokeAndExpire(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	k, token, err := s.IssueKey(ctx, IssueParams{Name: "r"})
	if err != nil {
		t.Fatal(err)
	}
	rk, err := s.RevokeKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rk.RevokedAt.IsZero() || rk.ID != k.ID {
		t.Fatalf("RevokeKey = %+v", rk)
	}
	if _, err := s.Authenticate(token); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("revoked: %v", err)
	}
	again, err := s.RevokeKey(ctx, k.ID)
	if err != nil || !again.RevokedAt.Equal(rk.RevokedAt) {
		t.Fatalf("second revoke = %+v, %v; want the first revocation time", again, err)
	}
	if _, err := s.RevokeKey(ctx, "gk_nope"); !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("RevokeKey(unknown) = %v", err)
	}

	_, short, err := s.IssueKey(ctx, IssueParams{Name: "short", ExpiresIn: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(short); err != nil {
		t.Fatalf("fresh short-lived key: %v", err)
	}
	time.Sleep(350 * time.Millisecond)
	if _, err := s.Authenticate(short); !errors.Is(err, ErrExpiredKey) {
		t.Fatalf("expired: %v", err)
	}
}

// TestCrossProcessKeys: a second Store on the same file stands in for the
// CLI process; its issue (through Authenticate's miss check, else the poll)
// and revoke (through the keys_version poll) reach the first store's cache
// within the contract's 5 seconds.
func TestCrossProcessKeys(t *testing.T) {
	gw := openTest(t, Options{})
	cli, err := Open(gw.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, cli)
	ctx := context.Background()

	start := time.Now()
	k, token, err := cli.IssueKey(ctx, IssueParams{Name: "from-cli"})
	if err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { _, err := gw.Authenticate(token); return err == nil }) {
		t.Fatal("key issued by another process not accepted within 5s")
	}
	t.Logf("issue seen after %v", time.Since(start))

	start = time.Now()
	if _, err := cli.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { _, err := gw.Authenticate(token); return errors.Is(err, ErrRevokedKey) }) {
		t.Fatal("revocation by another process not seen within 5s")
	}
	t.Logf("revocation seen after %v", time.Since(start))
}

// TestTokenNeverStored: neither the database file nor its WAL contains a
// token or its secret part, and ListKeys/JSON of keys never show it.
func TestTokenNeverStored(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	var tokens []string
	for i := range 5 {
		_, token, err := s.IssueKey(ctx, IssueParams{Name: fmt.Sprint("k", i), User: "u"})
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, token)
		k, err := s.Authenticate(token)
		if err != nil {
			t.Fatal(err)
		}
		s.Enqueue(Event{Type: TypeCallCompleted, Payload: &Call{TurnID: NewID().String(), GatewayKeyID: k.ID, KeyName: k.Name}})
	}
	if _, err := s.RevokeKey(ctx, "gk_"+tokens[0][3:29]); err != nil {
		t.Fatal(err)
	}
	syncStore(t, s)

	keys, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 5 {
		t.Fatalf("ListKeys: %d keys", len(keys))
	}
	listed, _ := json.Marshal(keys)
	listed = append(listed, fmt.Sprintf("%+v %#v", keys, keys)...)
	scan := func(when string) {
		for _, f := range []string{s.Path(), s.Path() + "-wal"} {
			raw, err := os.ReadFile(f)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			for _, tok := range tokens {
				if bytes.Contains(raw, []byte(tok)) || bytes.Contains(raw, []byte(tok[29:])) {
					t.Fatalf("%s: %s contains a token", when, f)
				}
			}
		}
	}
	for _, tok := range tokens {
		if bytes.Contains(listed, []byte(tok[29:])) {
			t.Fatal("ListKeys exposes a token")
		}
	}
	scan("before checkpoint")
	if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	scan("after checkpoint")
	// The scan itself must be able to see text we did write.
	raw, _ := os.ReadFile(s.Path())
	if !bytes.Contains(raw, []byte(keys[1].ID)) {
		t.Fatal("scan cannot see a key id that is stored: the check is vacuous")
	}
}

// TestLastUsedPersisted: Authenticate's in-memory use reaches last_used_at
// with the writer's next transaction (and at Close) without bumping
// keys_version.
func TestLastUsedPersisted(t *testing.T) {
	path := t.TempDir() + "/m.db"
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k, token, err := s.IssueKey(ctx, IssueParams{Name: "used"})
	if err != nil {
		t.Fatal(err)
	}
	unused, _, err := s.IssueKey(ctx, IssueParams{Name: "unused"})
	if err != nil {
		t.Fatal(err)
	}
	version := queryInt(t, s.ReadDB(), `SELECT value FROM meta WHERE name = 'keys_version'`)
	before := time.Now().Add(-time.Millisecond)
	if _, err := s.Authenticate(token); err != nil {
		t.Fatal(err)
	}
	s.Enqueue(Event{Type: TypeRouteDecided})
	syncStore(t, s)
	var used int64
	if err := s.ReadDB().QueryRow(`SELECT coalesce(last_used_at, 0) FROM gateway_keys WHERE id = ?`, k.ID).Scan(&used); err != nil {
		t.Fatal(err)
	}
	if used < before.UnixMicro() {
		t.Fatalf("last_used_at = %d after the writer's transaction, want ≥ %d", used, before.UnixMicro())
	}
	if v := queryInt(t, s.ReadDB(), `SELECT value FROM meta WHERE name = 'keys_version'`); v != version {
		t.Fatalf("keys_version %d → %d on a last-used update", version, v)
	}
	closeStore(t, s)

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	keys, err := s.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range keys {
		switch key.ID {
		case k.ID:
			if key.LastUsedAt.Before(before) {
				t.Errorf("used key: LastUsedAt %v", key.LastUsedAt)
			}
		case unused.ID:
			if !key.LastUsedAt.IsZero() {
				t.Errorf("unused key: LastUsedAt %v", key.LastUsedAt)
			}
		}
	}
}

// waitLastUsed waits, up to 2 s past lastUsedEvery, for key id's
// last_used_at to be saved, and says how long it waited.
func waitLastUsed(t *testing.T, s *Store, id string) (time.Duration, bool) {
	t.Helper()
	start := time.Now()
	for queryInt(t, s.ReadDB(), `SELECT count(*) FROM gateway_keys WHERE id = ? AND last_used_at > 0`, id) != 1 {
		if time.Since(start) > lastUsedEvery+2*time.Second {
			return time.Since(start), false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), true
}

// TestLastUsedSavedWhenQuiet: a key used within lastUsedEvery of the last
// save (its events' batch did not save it) has its time saved once the
// interval is up, with no later event to carry it: list-keys otherwise
// showed it as never used for as long as the gateway stayed quiet (audit
// 15E).
func TestLastUsedSavedWhenQuiet(t *testing.T) {
	s, err := Open(t.TempDir()+"/m.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	ctx := context.Background()
	_, tokA, err := s.IssueKey(ctx, IssueParams{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, tokB, err := s.IssueKey(ctx, IssueParams{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{tokA, tokB} {
		if _, err := s.Authenticate(tok); err != nil {
			t.Fatal(err)
		}
		s.Enqueue(Event{Type: TypeRouteDecided})
		syncStore(t, s)
	}
	if took, ok := waitLastUsed(t, s, b.ID); !ok {
		t.Fatalf("key b's use not saved %v after its event was written, with nothing else to write", took)
	}
}

// TestLastUsedSavedWithoutEvent: a key used where no trace event follows
// (GET /v1/models, the analytics login) has its use saved within
// lastUsedEvery too (review 15R2).
func TestLastUsedSavedWithoutEvent(t *testing.T) {
	s, err := Open(t.TempDir()+"/m.db", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	k, tok, err := s.IssueKey(context.Background(), IssueParams{Name: "models-only"})
	if err != nil {
		t.Fatal(err)
	}
	// The writer parks, with nothing to write and no use pending: only
	// the use itself can wake it (review 15R3: without this the writer's
	// first look could find the use by chance).
	s.Enqueue(Event{Type: TypeRouteDecided})
	syncStore(t, s)
	time.Sleep(200 * time.Millisecond)
	if _, err := s.Authenticate(tok); err != nil {
		t.Fatal(err)
	}
	if took, ok := waitLastUsed(t, s, k.ID); !ok {
		t.Fatalf("a use with no event not saved after %v", took)
	}
}

// TestLastUsedFlushedOnClose: a use with no later event is persisted by Close.
func TestLastUsedFlushedOnClose(t *testing.T) {
	path := t.TempDir() + "/m.db"
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	k, token, err := s.IssueKey(context.Background(), IssueParams{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(token); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	raw := rawDB(t, path)
	if n := queryInt(t, raw, `SELECT count(*) FROM gateway_keys WHERE id = ? AND last_used_at > 0`, k.ID); n != 1 {
		t.Fatal("last_used_at not persisted at Close")
	}
}

// TestIssuedKeyWorksAtOnce: a key issued through a second, independent
// Store on the same file (the CLI) authenticates on the gateway's very next
// Authenticate, with no sleep and with the keys_version poll out of the way,
// and so do the next keys a script issues right after.
func TestIssuedKeyWorksAtOnce(t *testing.T) {
	gw, cli := gatewayAndCLI(t)
	ctx := context.Background()
	for i := range missCheckBurst {
		k, token, err := cli.IssueKey(ctx, IssueParams{Name: fmt.Sprint("script-", i), User: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := gw.Authenticate(token)
		if err != nil {
			t.Fatalf("key %d: Authenticate right after another process issued it: %v", i, err)
		}
		if got.ID != k.ID || got.Name != k.Name || got.User != "alice" {
			t.Fatalf("key %d: Authenticate = %+v, want %+v", i, got, k)
		}
		// Now cached: no further check.
		checks := gw.keyMiss.checks.Load()
		if _, err := gw.Authenticate(token); err != nil || gw.keyMiss.checks.Load() != checks {
			t.Fatalf("key %d: second Authenticate = %v, checks %d → %d", i, err, checks, gw.keyMiss.checks.Load())
		}
	}
	if n := gw.keyMiss.checks.Load(); n != missCheckBurst {
		t.Fatalf("%d keys_version checks for %d new keys", n, missCheckBurst)
	}
}

// unknownToken is a well-formed token no store issued.
func unknownToken(r *mrand.Rand) string {
	const hexDigits = "0123456789abcdef"
	b := []byte(tokenPrefix + NewID().String())
	for range 32 {
		b = append(b, hexDigits[r.IntN(16)])
	}
	return string(b)
}

// TestUnknownKeyFloodIsBounded: 10,000 unknown tokens from several
// goroutines make at most missCheckBurst keys_version reads plus one per
// missCheckEvery of the time they took (the bound is exact for the gate's
// budget, whatever the machine's speed), and non-gw_ tokens make none.
func TestUnknownKeyFloodIsBounded(t *testing.T) {
	s := openTest(t, Options{KeyRefresh: time.Hour})
	if _, _, err := s.IssueKey(context.Background(), IssueParams{Name: "real"}); err != nil {
		t.Fatal(err)
	}
	gate := &s.keyMiss
	const n, workers = 10000, 4
	tokens := make([]string, n)
	r := mrand.New(mrand.NewPCG(1, 2))
	for i := range tokens {
		tokens[i] = unknownToken(r)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				if _, err := s.Authenticate(tokens[i]); !errors.Is(err, ErrUnknownKey) {
					errs <- fmt.Errorf("Authenticate(unknown) = %v, want ErrUnknownKey", err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checks := gate.checks.Load()
	bound := int64(missCheckBurst) + int64(elapsed/missCheckEvery)
	t.Logf("%d unknown tokens in %v: %d keys_version checks (bound %d)", n, elapsed, checks, bound)
	if checks < 1 {
		t.Fatal("no keys_version check at all: the miss path is not exercised")
	}
	if checks > bound {
		t.Fatalf("%d keys_version checks for %d unknown tokens in %v, want ≤ %d", checks, n, elapsed, bound)
	}

	before := gate.checks.Load()
	for range 1000 {
		if _, err := s.Authenticate("sk-ant-" + unknownToken(r)); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("Authenticate(provider key) = %v", err)
		}
	}
	if d := gate.checks.Load() - before; d != 0 {
		t.Fatalf("%d keys_version checks for tokens that are not gw_ tokens", d)
	}
}

// TestRevokedKeyStaysRevoked: a key the CLI issued and revoked before the
// gateway ever saw it is found by the miss check and refused as revoked, and
// a cached revoked key is refused without a check.
func TestRevokedKeyStaysRevoked(t *testing.T) {
	gw, cli := gatewayAndCLI(t)
	ctx := context.Background()
	k, token, err := cli.IssueKey(ctx, IssueParams{Name: "short-lived"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if got, err := gw.Authenticate(token); !errors.Is(err, ErrRevokedKey) {
		t.Fatalf("key issued and revoked by another process: Authenticate = %+v, %v; want ErrRevokedKey", got, err)
	}
	if n := gw.keyMiss.checks.Load(); n != 1 {
		t.Fatalf("%d keys_version checks, want 1", n)
	}

	k2, token2, err := gw.IssueKey(ctx, IssueParams{Name: "local"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw.RevokeKey(ctx, k2.ID); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := gw.Authenticate(token2); !errors.Is(err, ErrRevokedKey) {
			t.Fatalf("revoked key: %v, want ErrRevokedKey", err)
		}
		if _, err := gw.Authenticate(token); !errors.Is(err, ErrRevokedKey) {
			t.Fatalf("key revoked by another process, now cached: %v, want ErrRevokedKey", err)
		}
	}
	if n := gw.keyMiss.checks.Load(); n != 1 {
		t.Fatalf("%d keys_version checks after authenticating cached revoked keys, want still 1", n)
	}
}

// BenchmarkAuthenticateUnknown is the cost of an invalid gw_ token, nearly
// always rejected by the miss gate's budget without a database read.
func BenchmarkAuthenticateUnknown(b *testing.B) {
	s := openTest(b, Options{KeyRefresh: time.Hour})
	r := mrand.New(mrand.NewPCG(3, 4))
	tokens := make([]string, 1024)
	for i := range tokens {
		tokens[i] = unknownToken(r)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Authenticate(tokens[i%len(tokens)]); !errors.Is(err, ErrUnknownKey) {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.keyMiss.checks.Load()), "checks")
}

// gatewayAndCLI opens a gateway's store whose key poll never fires in a
// test, and a second, independent store on the same file, as the CLI is.
func gatewayAndCLI(t *testing.T) (gw, cli *Store) {
	t.Helper()
	gw = openTest(t, Options{KeyRefresh: time.Hour})
	cli, err := Open(gw.Path(), Options{KeyRefresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore(t, cli) })
	return gw, cli
}

func TestTokenFrom(t *testing.T) {
	for _, c := range []struct{ xAPIKey, auth, want string }{
		{"gw_a", "", "gw_a"},
		{"", "Bearer gw_b", "gw_b"},
		{"", "bearer  gw_b ", "gw_b"},
		{"sk-ant-own", "Bearer gw_b", "gw_b"},
		{"gw_a", "Bearer sk-own", "gw_a"},
		{"sk-ant-own", "Bearer sk-other", "sk-ant-own"},
		{"", "Basic Z3dfYQ==", ""},
		{"", "", ""},
	} {
		if got, conflict := TokenFrom(c.xAPIKey, c.auth); got != c.want || conflict {
			t.Errorf("TokenFrom(%q, %q) = %q, %v; want %q, no conflict", c.xAPIKey, c.auth, got, conflict, c.want)
		}
	}
	for _, c := range []struct {
		xAPIKey, auth string
		want          bool
	}{
		{"gw_a", "Bearer gw_b", true},
		{"gw_a", "bearer  gw_a ", false},
		{"sk-ant-own", "Bearer gw_b", false},
		{"gw_a", "Bearer sk-own", false},
		{"gw_a", "", false},
		{"gw_a", "Basic gw_b", false},
	} {
		if _, got := TokenFrom(c.xAPIKey, c.auth); got != c.want {
			t.Errorf("TokenFrom(%q, %q) conflict = %v, want %v", c.xAPIKey, c.auth, got, c.want)
		}
	}
}

func TestTokenFromLines(t *testing.T) {
	for _, c := range []struct {
		name     string
		x, auth  []string
		want     string
		conflict bool
	}{
		{"one line each", []string{"gw_a"}, nil, "gw_a", false},
		{"the same token twice", []string{"gw_a", " gw_a"}, []string{"Bearer gw_a"}, "gw_a", false},
		{"two tokens in x-api-key", []string{"gw_a", "gw_b"}, nil, "gw_a", true},
		{"two tokens in Authorization", nil, []string{"Bearer gw_a", "bearer gw_b"}, "gw_a", true},
		{"a second line against the other header", []string{"sk-ant-own", "gw_a"}, []string{"Bearer gw_b"}, "gw_a", true},
		{"a gateway token among other lines", []string{"sk-ant-own", "gw_a"}, nil, "gw_a", false},
		{"no gateway token", []string{"sk-ant-own", "sk-other"}, []string{"Basic Z3dfYQ=="}, "sk-ant-own", false},
	} {
		got, conflict := TokenFromLines(c.x, c.auth)
		if got != c.want || conflict != c.conflict {
			t.Errorf("%s: TokenFromLines(%q, %q) = %q, %v; want %q, %v", c.name, c.x, c.auth, got, conflict, c.want, c.conflict)
		}
	}
}

// A name that could forge a row of list-keys or drive the operator's
// terminal is refused.
func TestIssueKeyRefusesControlCharacters(t *testing.T) {
	s := openTest(t, Options{})
	ctx := context.Background()
	for _, p := range []IssueParams{
		{Name: "evil\x1b[2J\ngk_FAKE  injected"},
		{Name: "ok", User: "al\tice"},
		{Name: "ok", Team: "eng\r"},
		{Name: "ok", Workspace: "/tmp/x\n"},
		{Name: "ok", AllowedModels: []string{"haiku\x00"}},
		{Name: "admin\u202egnp.exe"}, // a right-to-left override
		{Name: "bad \x9b2J utf-8"},   // a C1 CSI byte, not UTF-8
	} {
		if _, tok, err := s.IssueKey(ctx, p); err == nil || !strings.Contains(err.Error(), "control character") {
			t.Errorf("IssueKey(%+v) = %q, %v; want a control-character error", p, tok, err)
		}
	}
	if _, _, err := s.IssueKey(ctx, IssueParams{Name: "alice's laptop ✓", User: "alice", Team: "eng"}); err != nil {
		t.Errorf("a plain name was refused: %v", err)
	}
}

// An unknown gw_ token is a final ErrUnknownKey only when a check of the
// database looked for it; once the miss checks are over their budget (a
// flood of unknown tokens) it is ErrUnknownKeyUnchecked, which the gateway
// tells as one to retry: a key issued a moment ago may be it (review
// 29R3). Both are ErrUnknownKey to errors.Is.
func TestUnknownKeyUncheckedOverTheMissBudget(t *testing.T) {
	s := openTest(t, Options{})
	unknown := func(i int) error {
		_, err := s.Authenticate(fmt.Sprintf("gw_01JUNKNOWN%04d00000000000000000000000000000", i))
		return err
	}
	if err := unknown(0); err != ErrUnknownKey {
		t.Fatalf("first unknown token: %v, want the checked ErrUnknownKey", err)
	}
	// Checks refill at one per missCheckEvery: back to back, the budget
	// of missCheckBurst runs out within a few (more on a slow machine).
	unchecked := false
	for i := 1; i <= 200 && !unchecked; i++ {
		err := unknown(i)
		if !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("unknown token %d: %v, not an ErrUnknownKey", i, err)
		}
		unchecked = err == ErrUnknownKeyUnchecked
	}
	if !unchecked {
		t.Errorf("200 unknown tokens back to back, beyond the miss budget of %d, were all told as checked", missCheckBurst)
	}
	if _, err := s.Authenticate("sk-ant-not-a-gateway-token"); err != ErrUnknownKey {
		t.Errorf("a token not of the gateway's form: %v, want ErrUnknownKey (nothing to look for)", err)
	}
}

// WaitKeyCheck returns once a check for new keys that began after it has
// succeeded: a key another process issued before the call is then known.
func TestWaitKeyCheckSeesKeysIssuedBefore(t *testing.T) {
	gw := openTest(t, Options{KeyRefresh: 200 * time.Millisecond})
	cli, err := Open(gw.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, cli)
	_, token, err := cli.IssueKey(t.Context(), IssueParams{Name: "from-cli"})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.WaitKeyCheck(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := gw.keys.Load().byHash[sha256.Sum256([]byte(token))]; !ok {
		t.Error("after WaitKeyCheck the key issued before it is not in the cache")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := gw.WaitKeyCheck(ctx); err == nil {
		t.Error("WaitKeyCheck with a cancelled context returned nil before any new check")
	}
}
