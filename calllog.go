package metis

import (
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

const (
	// callLogMax bounds the lines waiting for the call log's goroutine;
	// beyond it a line is written by the request that produced it.
	callLogMax = 8192
	// callLogEvery is how long the goroutine gathers lines after the first
	// one arrives, so that a busy gateway wakes it ~20 times a second, not
	// once per call.
	callLogEvery = 50 * time.Millisecond
)

// callLog writes the one "llm call" line per call off the request path:
// building and encoding its fields and the write(2) to Caddy's log cost
// about 10 µs per call, and a log write can stall behind the disk. A line is never dropped:
// when too many are waiting or the log has stopped, the caller writes it.
type callLog struct {
	mu      sync.Mutex
	stopped bool
	pending []callLine
	wake    chan struct{} // signalled when pending becomes non-empty
	done    chan struct{}
}

// callLine is one call's "llm call" line. Its values wait as they are
// (about 200 bytes, in the pending slice) and become zap fields only when
// the line is written: building the 15–18 fields on the request path
// allocated 1.1 KB per call.
type callLine struct {
	logger                                                                         *zap.Logger
	turnID, keyID, shape, endpoint, provider, requested, model, source, errorClass string
	stream, priced, hasTTFT                                                        bool
	status, attempts                                                               int
	input, cacheRead, cacheWrite, output, reasoning, ttftMS                        int64
	latency                                                                        time.Duration
	cost                                                                           float64
}

// emit writes the line to its logger.
func (c *callLine) emit() {
	var buf [20]zap.Field
	f := append(buf[:0],
		zapTurn(c.turnID), zap.String("key_id", c.keyID), zap.String("inbound_shape", c.shape),
		zap.String("endpoint", c.endpoint), zap.String("provider", c.provider), zap.String("model", c.model))
	if c.requested != "" && c.requested != c.model {
		// What the client named: an alias or a provider: prefix (nothing
		// when the routing chain chose the model).
		f = append(f, zap.String("requested_model", c.requested))
	}
	f = append(f, zap.Bool("stream", c.stream),
		zap.Int("status", c.status), zap.Int("attempts", c.attempts),
		zap.Int64("input_tokens", c.input), zap.Int64("cache_read_input_tokens", c.cacheRead),
		zap.Int64("cache_creation_input_tokens", c.cacheWrite), zap.Int64("output_tokens", c.output),
		zap.String("usage_source", c.source), zap.Duration("latency", c.latency),
	)
	if c.reasoning > 0 {
		f = append(f, zap.Int64("reasoning_tokens", c.reasoning))
	}
	if c.priced {
		f = append(f, zap.Float64("cost_usd", c.cost))
	} else {
		f = append(f, zap.Bool("priced", false))
	}
	if c.errorClass != "" {
		f = append(f, zap.String("error_class", c.errorClass))
	}
	if c.hasTTFT {
		f = append(f, zap.Int64("ttft_ms", c.ttftMS))
	}
	c.logger.Info("llm call", f...)
}

func newCallLog() *callLog {
	l := &callLog{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *callLog) run() {
	defer close(l.done)
	var lines []callLine
	for range l.wake {
		time.Sleep(callLogEvery)
		l.mu.Lock()
		lines, l.pending = l.pending, lines[:0]
		stopped := l.stopped
		l.mu.Unlock()
		for i := range lines {
			lines[i].emit()
			lines[i] = callLine{}
		}
		if stopped {
			return
		}
	}
}

// enabled reports whether logger writes INFO lines at all, so a call need
// not build fields nobody will see.
func (l *callLog) enabled(logger *zap.Logger) bool {
	return logger.Core().Enabled(zapcore.InfoLevel)
}

// write logs the call's line, in the background when it can.
func (l *callLog) write(line *callLine) {
	if l != nil {
		l.mu.Lock()
		if !l.stopped && len(l.pending) < callLogMax {
			l.pending = append(l.pending, *line)
			first := len(l.pending) == 1
			l.mu.Unlock()
			if first {
				select {
				case l.wake <- struct{}{}:
				default:
				}
			}
			return
		}
		l.mu.Unlock()
	}
	line.emit()
}

// stop writes the waiting lines and returns; later lines are written by
// their callers.
func (l *callLog) stop() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default: // a wake-up is already pending; it sees stopped
	}
	<-l.done
}
