package metis

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metisgateway/metis/ir"
)

// Collectors are created once per process and registered on every
// config's registry (Caddy makes a new one per load), so their values
// survive reloads.
var (
	mRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metis", Name: "requests_total",
		Help: "Gateway LLM calls and count_tokens requests sent to a provider, by inbound shape, provider and HTTP status.",
	}, []string{"shape", "provider", "status"})
	mRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metis", Name: "rejected_requests_total",
		Help: "Requests refused before any upstream call, by inbound shape and reason.",
	}, []string{"shape", "reason"})
	mTokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metis", Name: "tokens_total",
		Help: "Tokens by provider, model and kind (input, cache_read, cache_write, output, reasoning).",
	}, []string{"provider", "model", "kind"})
	mCost = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metis", Name: "cost_usd_total",
		Help: "Dollars spent by provider and model (priced calls only).",
	}, []string{"provider", "model"})
	mUnpriced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metis", Name: "unpriced_calls_total",
		Help: "Calls whose model has no price in the catalogue.",
	}, []string{"provider", "model"})
	mUpstreamLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "metis", Name: "upstream_response_seconds",
		Help:    "Time from sending a request upstream to its response headers.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
	}, []string{"provider"})
	mTTFT = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "metis", Name: "time_to_first_token_seconds",
		Help:    "Time from request arrival to the first streamed content.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 12),
	}, []string{"provider", "model"})
	mDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "metis", Name: "trace_events_dropped_total",
		Help: "Trace events lost: the writer queue was full or the store closed, or a write kept failing.",
	})
	mWriteErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "metis", Name: "trace_write_errors_total",
		Help: "Failed trace database transactions (each retry counts); events are held in memory while they last.",
	})
)

func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{mRequests, mRejected, mTokens, mCost, mUnpriced, mUpstreamLatency, mTTFT, mDropped, mWriteErrors} {
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

// observeCall records a finished call's metrics under model label label
// (see modelLabels.label).
func observeCall(c *call, label string, u ir.Usage, cost float64, priced bool) {
	requestCounter(c.shape, c.res.prov.name, c.status).Inc()
	mm := metricsFor(c.res.prov.name, label)
	for kind, n := range [...]int64{u.InputTokens, u.CacheReadInputTokens, u.CacheCreationInputTokens,
		u.OutputTokens, u.ReasoningTokens} {
		if n > 0 {
			mm.counter(kind).Add(float64(n))
		}
	}
	if priced {
		mm.counter(slotCost).Add(cost)
	} else {
		mm.counter(slotUnpriced).Inc()
	}
	if c.ttft > 0 {
		mm.ttftObserver().Observe(c.ttft.Seconds())
	}
}

// The model label's values are bounded: a client can name any model after
// a provider: prefix, and every name would otherwise add series to
// /metrics (and entries to the caches below) for the life of the process.
// A model id of the price catalogue is bounded by the catalogue; any other
// name (a spelling the catalogue prices but does not list among them) gets
// its own series once a call to it succeeded, for the first
// maxUnlistedModels such names; the rest share otherModel.
const (
	maxUnlistedModels = 256
	otherModel        = "other"
)

// modelLabels admits the models outside the catalogue that get their own
// label values; the zero value is ready to use.
type modelLabels struct {
	names sync.Map // model → struct{}
	n     atomic.Int64
	max   int64 // 0: maxUnlistedModels
}

var unlistedModels modelLabels

// label returns the model label of a call to model: model itself when it is
// an id of the catalogue as written (listed), or when it is (or now
// becomes) one of the admitted models outside it, which a call with a
// status below 400 admits; otherwise otherModel.
func (l *modelLabels) label(model string, listed bool, status int) string {
	if listed {
		return model
	}
	if _, ok := l.names.Load(model); ok {
		return model
	}
	if status >= 400 {
		return otherModel
	}
	limit := l.max
	if limit == 0 {
		limit = maxUnlistedModels
	}
	for {
		n := l.n.Load()
		if n >= limit {
			return otherModel
		}
		if l.n.CompareAndSwap(n, n+1) {
			break
		}
	}
	if _, loaded := l.names.LoadOrStore(model, struct{}{}); loaded {
		l.n.Add(-1) // a racing call admitted it first
	}
	return model
}

// tokenKinds are the kind labels of metis_tokens_total, in the order of
// modelMetrics' first counter slots.
var tokenKinds = [...]string{"input", "cache_read", "cache_write", "output", "reasoning"}

const (
	slotCost = len(tokenKinds) + iota
	slotUnpriced
	numSlots
)

// modelMetrics holds one provider/model's metric children, created on
// first use (so /metrics lists only series that happened) and then reused:
// WithLabelValues hashes its labels and takes a lock on every call.
type modelMetrics struct {
	provider, model string
	counters        [numSlots]atomic.Pointer[prometheus.Counter]
	ttft            atomic.Pointer[prometheus.Observer]
}

type modelKey struct{ provider, model string }

var modelMetricsCache sync.Map // modelKey → *modelMetrics

func metricsFor(provider, model string) *modelMetrics {
	k := modelKey{provider, model}
	if v, ok := modelMetricsCache.Load(k); ok {
		return v.(*modelMetrics)
	}
	v, _ := modelMetricsCache.LoadOrStore(k, &modelMetrics{provider: provider, model: model})
	return v.(*modelMetrics)
}

// counter returns the child of slot: a token kind, slotCost or slotUnpriced.
func (m *modelMetrics) counter(slot int) prometheus.Counter {
	if p := m.counters[slot].Load(); p != nil {
		return *p
	}
	var c prometheus.Counter
	switch slot {
	case slotCost:
		c = mCost.WithLabelValues(m.provider, m.model)
	case slotUnpriced:
		c = mUnpriced.WithLabelValues(m.provider, m.model)
	default:
		c = mTokens.WithLabelValues(m.provider, m.model, tokenKinds[slot])
	}
	m.counters[slot].Store(&c) // racing callers get the same child from the vector
	return c
}

func (m *modelMetrics) ttftObserver() prometheus.Observer {
	if p := m.ttft.Load(); p != nil {
		return *p
	}
	o := mTTFT.WithLabelValues(m.provider, m.model)
	m.ttft.Store(&o)
	return o
}

type requestKey struct {
	shape, provider string
	status          int
}

var requestCounters sync.Map // requestKey → prometheus.Counter

// requestCounter returns metis_requests_total's child for the labels.
func requestCounter(shape, provider string, status int) prometheus.Counter {
	k := requestKey{shape, provider, status}
	if v, ok := requestCounters.Load(k); ok {
		return v.(prometheus.Counter)
	}
	c := mRequests.WithLabelValues(shape, provider, strconv.Itoa(status))
	requestCounters.Store(k, c)
	return c
}
