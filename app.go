package metis

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/metisgateway/metis/budget"
	"github.com/metisgateway/metis/pricing"
	"github.com/metisgateway/metis/store"
)

// stores holds one open trace store per absolute database path. It is
// package-level so that it outlives config reloads: every config that names
// the same file shares one handle and one writer goroutine.
var stores = caddy.NewUsagePool()

// storeKey is the pool key of the store of the database at path: the path
// and a generation, which grows each time a config finds the running
// store's file deleted or replaced.
func storeKey(path string, gen int) string { return path + "\x00" + strconv.Itoa(gen) }

// splitStoreKey is storeKey's inverse.
func splitStoreKey(k string) (path string, gen int) {
	path, g, _ := strings.Cut(k, "\x00")
	gen, _ = strconv.Atoi(g)
	return path, gen
}

// pooledStore is one database file's trace store and budget ledger.
type pooledStore struct {
	*store.Store
	ledger   *budget.Ledger
	inflight *inflight
	rejects  *rejectLimiter
	items    *responseItems
}

// Destruct closes the store when no config uses it any more. The calls
// still in flight are cancelled first and their traces and budget
// settlements written; then the event queue is drained, so that no
// accepted event is lost. When the process exits (caddy stop, a signal),
// Caddy has already given them its grace period. When it does not (a
// reload that moves the database, the metis app unloaded), their
// connections stay open: they may run on for up to reloadDrain, in the
// background, before they are cancelled and the store closed; if the
// process exits first, finishDraining does that at once.
func (p pooledStore) Destruct() error {
	if caddy.Exiting() || p.inflight.idle() {
		return p.close(0)
	}
	done := make(chan struct{})
	draining.Lock()
	draining.m[p.inflight] = done
	draining.Unlock()
	draining.once.Do(func() { caddy.OnExit(finishDraining) })
	go func() {
		defer func() {
			draining.Lock()
			delete(draining.m, p.inflight)
			draining.Unlock()
			close(done)
		}()
		if err := p.close(reloadDrain); err != nil {
			caddy.Log().Named("metis").Error("closing the trace store of a replaced config", zap.Error(err))
		}
	}()
	return nil
}

// draining holds the stores of replaced configs that Destruct is closing
// in the background, each with the channel closed when it has closed.
var draining = struct {
	sync.Mutex
	m    map[*inflight]chan struct{}
	once sync.Once
}{m: map[*inflight]chan struct{}{}}

// finishDraining, run as the process exits, ends the drain of replaced
// configs' stores and waits for them to close: their calls are cancelled
// and traced as the running config's are, instead of being cut by the
// exit without a trace. Each close is bounded (closeWait for the calls,
// 30 s for the store).
func finishDraining(context.Context) {
	draining.Lock()
	var waits []chan struct{}
	for f, done := range draining.m {
		f.hurry()
		waits = append(waits, done)
	}
	draining.Unlock()
	for _, done := range waits {
		<-done
	}
}

// close lets the calls in flight finish for up to drain, cancels the rest,
// and closes the ledger and the store.
func (p pooledStore) close(drain time.Duration) error {
	var errs []error
	if left := p.inflight.close(drain, closeWait); left > 0 {
		errs = append(errs, fmt.Errorf("trace store %s: %d calls still in flight %s after they were cancelled; their traces are lost", p.Path(), left, closeWait))
	}
	p.rejects.close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return errors.Join(append(errs, p.ledger.Close(), p.Store.Close(ctx))...)
}

// App is the `metis` Caddy app: the providers, model aliases, prices and
// the trace database shared by the metis_gateway and metis_analytics
// handlers.
type App struct {
	// DB is the path of the SQLite trace database. Default: $METIS_DB, else
	// ~/.metis/metis.db. Placeholders such as {env.X} are resolved.
	DB string `json:"db,omitempty"`
	// Providers are the upstream LLM providers, in configuration order.
	Providers []*ProviderConfig `json:"providers,omitempty"`
	// Aliases maps a short model name to "provider:model" or a bare model id.
	Aliases map[string]string `json:"aliases,omitempty"`
	// Pricing is an optional LiteLLM model_prices JSON file merged over the
	// built-in price catalogue.
	Pricing string `json:"pricing,omitempty"`
	// DefaultModel is the last slot of the routing chain, used when a
	// request names no model and no workspace rule or default applies.
	DefaultModel string `json:"default_model,omitempty"`
	// Writer tunes the trace writer (queue size, batch size, interval).
	Writer *WriterConfig `json:"writer,omitempty"`
	// BudgetFailure says what happens to a call of a budgeted identity when
	// the budget ledger cannot be read or written: "closed" (default)
	// refuses it with 503, "open" lets it through unbudgeted.
	BudgetFailure string `json:"budget_failure,omitempty"`

	logger   *zap.Logger
	store    *store.Store
	ledger   *budget.Ledger
	storeKey string
	// retune holds this config's writer options for a store a running
	// config already had open, applied once the config is accepted.
	retune    *store.Options
	untune    func()    // puts the running config's writer options back
	inflight  *inflight // the calls in flight on store
	rejects   *rejectLimiter
	items     *responseItems // translated Responses API answers' items
	prices    *pricing.Catalogue
	providers map[string]*provider
	ordered   []*provider
	routing   *routingCache
	calls     *callLog

	unpricedOnce sync.Map // model → struct{}: warn once per model
	// unlistedWarned: the warning that models outside the catalogue are
	// past maxUnlistedModels was written.
	unlistedWarned atomic.Bool
	// ledgerErrLog spaces "budget ledger unavailable": while the database
	// is unwritable every budgeted call fails alike. settleDeferred and
	// settleLate count the settlements deferred, and written late, in
	// lines of their own.
	ledgerErrLog               logGate
	settleDeferred, settleLate burstLog
}

// WriterConfig tunes the trace store's batching writer.
type WriterConfig struct {
	// QueueSize bounds the in-memory event queue. Default 65536.
	QueueSize int `json:"queue_size,omitempty"`
	// BatchSize is the most events written in one transaction. Default 2048.
	BatchSize int `json:"batch_size,omitempty"`
	// FlushInterval is the longest an event waits before its batch is
	// committed while the gateway is quiet. Default 20ms; a busy writer
	// (≥ 512 events in its previous transaction) waits up to 2.5 × this.
	FlushInterval caddy.Duration `json:"flush_interval,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "metis", New: func() caddy.Module { return new(App) }}
}

// DefaultDBPath is the database path used when neither the config nor a
// flag names one: $METIS_DB, else ~/.metis/metis.db.
func DefaultDBPath() string {
	if p := os.Getenv("METIS_DB"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(caddy.AppDataDir(), "metis", "metis.db")
	}
	return filepath.Join(home, ".metis", "metis.db")
}

// expandPath resolves placeholders and a leading ~ and makes the path absolute.
func expandPath(p string) (string, error) {
	p = caddy.NewReplacer().ReplaceKnown(p, "")
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("expanding %q: %w", p, err)
		}
		p = filepath.Join(home, p[1:])
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("resolving %q: %w", p, err)
	}
	return abs, nil
}

func (a *App) storeOptions() store.Options {
	o := store.Options{Logger: a.logger.Named("store"), RequireWritable: true}
	if w := a.Writer; w != nil {
		o.QueueSize, o.BatchSize, o.FlushInterval = w.QueueSize, w.BatchSize, time.Duration(w.FlushInterval)
	}
	return o
}

// Provision builds the per-config state (providers, prices, aliases) and
// then acquires the shared trace store from the pool.
func (a *App) Provision(ctx caddy.Context) error {
	a.logger = ctx.Logger()
	a.calls = newCallLog()
	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	// Cheap, per-config state first, so a bad config fails before it
	// touches the shared store.
	a.prices = pricing.Default()
	if a.Pricing != "" {
		path, err := expandPath(a.Pricing)
		if err != nil {
			return fmt.Errorf("pricing: %w", err)
		}
		extra, err := pricing.LoadFile(path)
		if err != nil {
			return fmt.Errorf("loading pricing file %s: %w", path, err)
		}
		a.prices = a.prices.Merge(extra)
	}
	a.providers = make(map[string]*provider, len(a.Providers))
	for _, pc := range a.Providers {
		p, err := newProvider(pc)
		if err != nil {
			return err
		}
		if _, dup := a.providers[p.name]; dup {
			return fmt.Errorf("provider %q is configured twice", p.name)
		}
		if p.keyEmptied != "" {
			// A block without api_key is a server that needs none; one whose
			// placeholder came out empty is a missing environment variable,
			// named so that the operator knows which to set.
			a.logger.Warn("provider has no API key: its api_key came out empty (is the environment variable set?); its calls will get the provider's 401",
				zap.String("provider", p.name), zap.String("api_key", p.keyEmptied))
		}
		a.providers[p.name] = p
		a.ordered = append(a.ordered, p)
	}
	for alias, target := range a.Aliases {
		if target == "" {
			return fmt.Errorf("alias %q has no target", alias)
		}
	}
	switch a.BudgetFailure {
	case "", "closed", "open":
	default:
		return fmt.Errorf("budget_failure must be open or closed, got %q", a.BudgetFailure)
	}
	a.routing = newRoutingCache()

	dbPath := a.DB
	if dbPath == "" {
		dbPath = DefaultDBPath()
	}
	path, err := expandPath(dbPath)
	if err != nil {
		return fmt.Errorf("trace database: %w", err)
	}
	opts := a.storeOptions()
	// The stores of the running config are still pooled while a reload
	// provisions: one under another path means this config moves the
	// trace (as `db {$METIS_DB}` does when the reloading shell's
	// environment differs from the server's), which the operator must see.
	var others []string
	gen := 0 // the pool key's generation for path: see below
	var gone []pooledStore
	stores.Range(func(k, v any) bool {
		p, g := splitStoreKey(k.(string))
		switch {
		case p != path:
			others = append(others, p)
		case g >= gen && v.(pooledStore).FileGone() != "":
			// The running store's file was deleted or replaced (a backup
			// restored with mv): SQLite cannot follow it, so this config
			// opens the file now at the path as another store.
			gen = g + 1
			gone = append(gone, v.(pooledStore))
		case g > gen:
			gen = g
		}
		return true
	})
	replaced := len(gone) > 0
	for _, ps := range gone {
		// Its -wal and -shm, left at the path, would be read as the new
		// file's journal and corrupt it.
		if removed := ps.RemoveOwnSidecars(); len(removed) > 0 {
			a.logger.Warn("removed the replaced database file's -wal and -shm from its path", zap.Strings("files", removed))
		}
	}
	key := storeKey(path, gen)
	v, loaded, err := stores.LoadOrNew(key, func() (caddy.Destructor, error) {
		s, err := store.Open(path, opts)
		if err != nil {
			return nil, err
		}
		s.SetHooks(store.Hooks{
			Lost:        func(n int) { mDropped.Add(float64(n)) },
			WriteFailed: mWriteErrors.Inc,
		})
		l, err := budget.Open(path, budget.Options{Logger: a.logger.Named("budget")})
		if err != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Close(ctx)
			return nil, err
		}
		return pooledStore{Store: s, ledger: l, inflight: newInflight(),
			rejects: newRejectLimiter(func(ev store.Event) bool { return s.Enqueue(ev) }), items: newResponseItems()}, nil
	})
	if err != nil {
		return err
	}
	ps := v.(pooledStore)
	a.store, a.ledger, a.inflight, a.rejects, a.items, a.storeKey = ps.Store, ps.ledger, ps.inflight, ps.rejects, ps.items, key
	if loaded {
		// Applied in Start: this config may still be refused, and the
		// running one keeps the store until then.
		a.retune = &opts
	} else if replaced {
		a.logger.Warn("the trace database file was deleted or replaced since the running config opened it: "+
			"this config opens the file now at its path", zap.String("db", path))
	} else if len(others) > 0 {
		a.logger.Warn("this config moves the trace database: the keys, budgets and spend of the running one stay in its file",
			zap.String("db", path), zap.Strings("running_db", others))
	}
	a.logger.Info("trace database", zap.String("db", path))
	return nil
}

// Validate checks the cross-references of the config.
func (a *App) Validate() error {
	var errs []error
	for _, alias := range slices.Sorted(maps.Keys(a.Aliases)) {
		target := a.Aliases[alias]
		if name, _, ok := strings.Cut(target, ":"); ok && a.providers[name] == nil && a.looksLikeProviderRef(name) {
			errs = append(errs, fmt.Errorf("alias %q points at unknown provider %q", alias, name))
			continue
		}
		if err := a.checkAliasChain(alias); err != nil {
			errs = append(errs, err)
			continue
		}
		if a.resolve(alias) == nil {
			errs = append(errs, fmt.Errorf("alias %q: no provider serves model %q (write provider:model for a model the price catalogue does not know)",
				alias, a.aliasTarget(alias)))
		}
	}
	// Checked here, not on the first model-less request, where the client
	// would be told of the operator's mistake.
	if a.DefaultModel != "" && a.resolve(a.DefaultModel) == nil {
		errs = append(errs, fmt.Errorf("default_model: no provider serves model %q (write provider:model for a model the price catalogue does not know)", a.DefaultModel))
	}
	if len(errs) == 0 {
		a.warnUnservedKeyModels()
	}
	return errors.Join(errs...)
}

// warnUnservedKeyModels logs the keys whose model list names models this
// config does not serve: an alias removed or renamed by a reload, a
// provider gone. Such a key keeps working for its other models, and
// nothing else would say why its calls for these now get a 404 (audit 16B).
func (a *App) warnUnservedKeyModels() {
	if a.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	keys, err := a.store.ListKeys(ctx)
	if err != nil {
		a.logger.Debug("listing gateway keys to check their models", zap.Error(err))
		return
	}
	const most = 20
	n := 0
	now := time.Now()
	for _, k := range keys {
		if !k.RevokedAt.IsZero() || !k.ExpiresAt.IsZero() && k.ExpiresAt.Before(now) {
			continue
		}
		var unserved []string
		for _, m := range k.AllowedModels {
			if a.resolve(m) == nil {
				unserved = append(unserved, m)
			}
		}
		if len(unserved) == 0 {
			continue
		}
		if n++; n <= most {
			a.logger.Warn("gateway key allows models this config does not serve (no alias or provider for them): its calls for them get a 404",
				zap.String("key_id", k.ID), zap.String("key_name", k.Name), zap.Strings("models", unserved))
		}
	}
	if n > most {
		a.logger.Warn("more gateway keys allow models this config does not serve", zap.Int("keys", n-most))
	}
}

// maxAliasHops is how many aliases resolve follows from a name.
const maxAliasHops = 4

// checkAliasChain refuses an alias whose chain loops or is longer than
// resolve follows.
func (a *App) checkAliasChain(alias string) error {
	chain := []string{alias}
	ref := alias
	for {
		target, ok := a.Aliases[ref]
		if !ok || target == ref { // an alias of itself names the model
			return nil
		}
		if slices.Contains(chain, target) {
			return fmt.Errorf("aliases loop: %s", strings.Join(append(chain, target), " → "))
		}
		if len(chain) > maxAliasHops {
			return fmt.Errorf("alias %q: more than %d aliases in a row (%s …)", alias, maxAliasHops, strings.Join(chain, " → "))
		}
		chain = append(chain, target)
		ref = target
	}
}

// aliasTarget is where alias's chain of aliases ends, following at most
// maxAliasHops of them (alias itself when it is none).
func (a *App) aliasTarget(alias string) string {
	ref := alias
	for range maxAliasHops {
		target, ok := a.Aliases[ref]
		if !ok || target == ref {
			break
		}
		ref = target
	}
	return ref
}

// looksLikeProviderRef reports whether the part before a colon is meant as
// a provider name (as opposed to a model id that contains a colon, such as
// an OpenAI fine-tune "ft:gpt-4o:org").
func (a *App) looksLikeProviderRef(name string) bool {
	return name != "ft" && !strings.Contains(name, "/")
}

// Start implements caddy.App. The store is opened in Provision (apps start
// in random order and handlers may serve before Start); a store the
// running config shares gets this config's writer options here, once the
// whole config has been accepted.
func (a *App) Start() error {
	if a.retune != nil {
		a.untune = a.store.Reconfigure(*a.retune)
	}
	return nil
}

// Stop implements caddy.App. The store is never closed here: streams that
// began under this config may still be writing their traces. The writer
// options Start applied are put back, unless a later config has applied
// its own (a reload) or the process is exiting: this config was refused
// after it started (another app failed to start).
func (a *App) Stop() error {
	if a.untune != nil && !caddy.Exiting() {
		a.untune()
	}
	return nil
}

// Cleanup releases this config's reference to the pooled store and the
// providers' idle connections.
func (a *App) Cleanup() error {
	if a.calls != nil {
		a.calls.stop()
	}
	a.settleDeferred.flush()
	a.settleLate.flush()
	for _, p := range a.ordered {
		p.failed.flush()
		p.errored.flush()
		p.closeIdle()
	}
	if a.storeKey == "" { // never acquired: don't drop the running config's reference
		return nil
	}
	_, err := stores.Delete(a.storeKey)
	a.storeKey = ""
	return err
}

// Store returns the app's trace store.
func (a *App) Store() *store.Store { return a.store }

// Interface guards.
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
