package metis

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/metisgateway/metis/ir"
)

// Collectors are created once per process and registered on every
// config's registry (Caddy makes a new one per load), so their values
// survive reloads.
var (
	mRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "metis", Name: "requests_total",
		Help: "Gateway LLM calls by inbound shape, provider and HTTP status.",
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
		Help: "Trace events dropped because the writer queue was full or the store closed.",
	})
)

func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{mRequests, mRejected, mTokens, mCost, mUnpriced, mUpstreamLatency, mTTFT, mDropped} {
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); err != nil && !errors.As(err, &are) {
			return err
		}
	}
	return nil
}

func observeCall(c *call, u ir.Usage, cost float64, priced bool, _ time.Duration) {
	p, m := c.res.prov.name, c.res.model
	mRequests.WithLabelValues(c.shape, p, strconv.Itoa(c.status)).Inc()
	kinds := [...]struct {
		name string
		n    int64
	}{
		{"input", u.InputTokens}, {"cache_read", u.CacheReadInputTokens}, {"cache_write", u.CacheCreationInputTokens},
		{"output", u.OutputTokens}, {"reasoning", u.ReasoningTokens},
	}
	for _, k := range kinds {
		if k.n > 0 {
			mTokens.WithLabelValues(p, m, k.name).Add(float64(k.n))
		}
	}
	if priced {
		mCost.WithLabelValues(p, m).Add(cost)
	} else {
		mUnpriced.WithLabelValues(p, m).Inc()
	}
	if c.ttft > 0 {
		mTTFT.WithLabelValues(p, m).Observe(c.ttft.Seconds())
	}
}
