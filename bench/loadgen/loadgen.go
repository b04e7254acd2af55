// Package loadgen is the benchmark's closed-loop HTTP load generator: c
// workers each send one request, read the whole answer and send the next,
// for a warm-up period and then a measured period (or a measured count).
//
// Every measured request's latency is kept, so percentiles are exact
// (nearest rank over all samples, no histogram). Streamed answers are read
// as SSE: TTFT is the time to the first content event (an Anthropic
// content_block_delta or an OpenAI chunk with non-empty delta content),
// latency the time to the end of the stream. Closed-loop numbers hide
// stalls the way every closed-loop tool does (coordinated omission); use
// them for c=1 latency, throughput ceilings and stream TTFT, not for
// fixed-rate tails.
package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one load run against one URL.
type Config struct {
	// URL receives every request (POST).
	URL string
	// Body is sent with every request.
	Body []byte
	// Header is sent with every request (Content-Type defaults to JSON).
	Header http.Header
	// Concurrency is the number of closed-loop workers (default 1).
	Concurrency int
	// Warmup is the unmeasured period before measuring starts.
	Warmup time.Duration
	// Duration is the measured period. Ignored when Count is set.
	Duration time.Duration
	// Count, when positive, measures exactly this many requests (after
	// Warmup) instead of running for Duration.
	Count int
	// Stream reads answers as SSE and measures TTFT.
	Stream bool
	// ExpectChunks, when positive, makes a stream with a different number
	// of content events an error (a lost or merged frame).
	ExpectChunks int
	// Stagger spreads the workers' first requests evenly over this long
	// (worker i starts i × Stagger / Concurrency after the run), so that
	// closed-loop streams of one length do not start and end together in
	// waves for the whole run. Warmup should outlast it.
	Stagger time.Duration
	// Timeout bounds one request, answer included (default 60s).
	Timeout time.Duration
	// Transport overrides the default tuned transport (keep-alive, one
	// idle connection per worker, no compression).
	Transport http.RoundTripper
}

// Percentiles summarises samples in microseconds. Percentiles are nearest
// rank over every sample.
type Percentiles struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_us"`
	Min  float64 `json:"min_us"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
}

// Result is the outcome of one run.
type Result struct {
	Concurrency int `json:"concurrency"`
	// Sent counts every request sent, warm-up and failures included (what
	// the server saw).
	Sent int `json:"sent"`
	// OK counts measured requests answered 200 and read completely.
	OK int `json:"ok"`
	// Errors counts measured requests that failed (transport error, status
	// other than 200, broken stream); WarmupErrors the warm-up ones.
	Errors       int          `json:"errors"`
	WarmupErrors int          `json:"warmup_errors"`
	ErrorSamples []string     `json:"error_samples,omitempty"`
	Status       map[int]int  `json:"status,omitempty"`
	Window       float64      `json:"window_s"`
	RPS          float64      `json:"rps"`
	Latency      Percentiles  `json:"latency"`
	TTFT         *Percentiles `json:"ttft,omitempty"`
	MaxGap       *Percentiles `json:"max_gap,omitempty"` // per stream: largest gap between content events
	Chunks       map[int]int  `json:"chunks,omitempty"`  // content events per stream → streams
}

// sample is one measured request.
type sample struct {
	lat, ttft, gap time.Duration
	chunks         int
}

// worker state shared with Run.
type worker struct {
	samples  []sample
	errs     int
	warmErrs int
	sent     int
	done     int // measured completions inside the window
	status   map[int]int
	errMsgs  []string
}

// Run executes cfg and returns its result. It stops early, with an error,
// only when ctx ends; request failures are counted, not returned.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Count <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("loadgen: need a Duration or a Count")
	}
	tr := cfg.Transport
	var own *http.Transport
	if tr == nil {
		own = NewTransport(cfg.Concurrency)
		tr = own
		defer own.CloseIdleConnections()
	}
	client := &http.Client{Transport: tr}
	hdr := cfg.Header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	if hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "application/json")
	}

	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	var measureTo atomic.Int64 // unix nanos; math.MaxInt64 while counting
	if cfg.Count > 0 {
		measureTo.Store(math.MaxInt64)
	} else {
		measureTo.Store(measureFrom.Add(cfg.Duration).UnixNano())
	}
	var remaining atomic.Int64
	remaining.Store(int64(cfg.Count))
	var lastDone atomic.Int64 // count mode: when the last measured request ended

	workers := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		w := &worker{status: map[int]int{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cfg.Stagger > 0 {
				select {
				case <-time.After(time.Duration(i) * cfg.Stagger / time.Duration(cfg.Concurrency)):
				case <-ctx.Done():
				}
			}
			h := hdr.Clone()
			br := bufio.NewReaderSize(nil, 32<<10)
			for ctx.Err() == nil {
				t0 := time.Now()
				measured := !t0.Before(measureFrom)
				if measured {
					if t0.UnixNano() >= measureTo.Load() {
						return
					}
					if cfg.Count > 0 && remaining.Add(-1) < 0 {
						return
					}
				}
				w.sent++
				s, status, err := one(ctx, client, &cfg, h, br)
				if status != 0 {
					w.status[status]++
				}
				end := time.Now()
				if !measured {
					if err != nil {
						w.warmErrs++
					}
					continue
				}
				if err != nil {
					w.errs++
					if len(w.errMsgs) < 3 {
						w.errMsgs = append(w.errMsgs, err.Error())
					}
					continue
				}
				s.lat = end.Sub(t0)
				w.samples = append(w.samples, s)
				if end.UnixNano() < measureTo.Load() {
					w.done++
				}
				if cfg.Count > 0 {
					for {
						prev := lastDone.Load()
						if end.UnixNano() <= prev || lastDone.CompareAndSwap(prev, end.UnixNano()) {
							break
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("loadgen: run cancelled: %w", err)
	}

	res := &Result{Concurrency: cfg.Concurrency, Status: map[int]int{}}
	var all []sample
	done := 0
	for _, w := range workers {
		all = append(all, w.samples...)
		res.Sent += w.sent
		res.Errors += w.errs
		res.WarmupErrors += w.warmErrs
		done += w.done
		for k, v := range w.status {
			res.Status[k] += v
		}
		for _, m := range w.errMsgs {
			if len(res.ErrorSamples) < 5 {
				res.ErrorSamples = append(res.ErrorSamples, m)
			}
		}
	}
	res.OK = len(all)
	var window time.Duration
	if cfg.Count > 0 {
		window = time.Unix(0, lastDone.Load()).Sub(measureFrom)
		done = len(all)
	} else {
		window = cfg.Duration
	}
	res.Window = window.Seconds()
	if window > 0 {
		res.RPS = float64(done) / window.Seconds()
	}
	res.Latency = summarize(all, func(s sample) time.Duration { return s.lat })
	if cfg.Stream {
		t := summarize(all, func(s sample) time.Duration { return s.ttft })
		g := summarize(all, func(s sample) time.Duration { return s.gap })
		res.TTFT, res.MaxGap = &t, &g
		res.Chunks = map[int]int{}
		for _, s := range all {
			res.Chunks[s.chunks]++
		}
	}
	return res, nil
}

// NewTransport returns the load generator's transport: HTTP/1.1 keep-alive
// with an idle connection per worker and compression off.
func NewTransport(concurrency int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        concurrency + 16,
		MaxIdleConnsPerHost: concurrency + 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     16 << 10,
		ReadBufferSize:      16 << 10,
	}
}

// one sends a request and reads its answer. TTFT and gaps are measured
// from the send.
func one(ctx context.Context, client *http.Client, cfg *Config, h http.Header, br *bufio.Reader) (sample, int, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(cfg.Body))
	if err != nil {
		return sample{}, 0, fmt.Errorf("building request: %w", err)
	}
	req.Header = h
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return sample{}, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return sample{}, resp.StatusCode, fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	if !cfg.Stream {
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return sample{}, resp.StatusCode, fmt.Errorf("reading body: %w", err)
		}
		return sample{}, resp.StatusCode, nil
	}
	br.Reset(resp.Body)
	defer br.Reset(nil)
	var s sample
	var last time.Time
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && IsContentLine(line) {
			now := time.Now()
			if s.chunks == 0 {
				s.ttft = now.Sub(t0)
			} else if g := now.Sub(last); g > s.gap {
				s.gap = g
			}
			last = now
			s.chunks++
		}
		if err == nil || errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		return s, resp.StatusCode, fmt.Errorf("reading stream: %w", err)
	}
	if s.chunks == 0 {
		return s, resp.StatusCode, errors.New("stream without content events")
	}
	if cfg.ExpectChunks > 0 && s.chunks != cfg.ExpectChunks {
		return s, resp.StatusCode, fmt.Errorf("stream had %d content events, want %d", s.chunks, cfg.ExpectChunks)
	}
	return s, resp.StatusCode, nil
}

var (
	dataPrefix     = []byte("data:")
	anthropicDelta = []byte(`"type":"content_block_delta"`)
	openAIContent  = []byte(`"delta":{"content":"`)
)

// IsContentLine reports whether an SSE line carries generated content: an
// Anthropic content_block_delta or an OpenAI chunk whose delta content is
// a non-empty string (the role-only first chunk does not count).
func IsContentLine(line []byte) bool {
	if !bytes.HasPrefix(line, dataPrefix) {
		return false
	}
	if bytes.Contains(line, anthropicDelta) {
		return true
	}
	i := bytes.Index(line, openAIContent)
	return i >= 0 && i+len(openAIContent) < len(line) && line[i+len(openAIContent)] != '"'
}

func summarize(all []sample, f func(sample) time.Duration) Percentiles {
	if len(all) == 0 {
		return Percentiles{}
	}
	v := make([]float64, len(all))
	sum := 0.0
	for i, s := range all {
		v[i] = float64(f(s)) / float64(time.Microsecond)
		sum += v[i]
	}
	slices.Sort(v)
	return Percentiles{
		N: len(v), Mean: sum / float64(len(v)), Min: v[0], Max: v[len(v)-1],
		P50: Rank(v, 0.50), P90: Rank(v, 0.90), P99: Rank(v, 0.99), P999: Rank(v, 0.999),
	}
}

// Rank is the nearest-rank percentile q (0 < q ≤ 1) of sorted values.
func Rank(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
