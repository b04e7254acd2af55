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
// encoding 15 fields and the write(2) to Caddy's log cost about 10 µs per
// call, and a log write can stall behind the disk. A line is never dropped:
// when too many are waiting or the log has stopped, the caller writes it.
type callLog struct {
	mu      sync.Mutex
	stopped bool
	pending []callLogLine
	wake    chan struct{} // signalled when pending becomes non-empty
	done    chan struct{}
}

type callLogLine struct {
	logger *zap.Logger
	fields []zap.Field
}

func newCallLog() *callLog {
	l := &callLog{wake: make(chan struct{}, 1), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *callLog) run() {
	defer close(l.done)
	var lines []callLogLine
	for range l.wake {
		time.Sleep(callLogEvery)
		l.mu.Lock()
		lines, l.pending = l.pending, lines[:0]
		stopped := l.stopped
		l.mu.Unlock()
		for i, line := range lines {
			line.logger.Info("llm call", line.fields...)
			lines[i] = callLogLine{}
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
func (l *callLog) write(logger *zap.Logger, fields []zap.Field) {
	if l != nil {
		l.mu.Lock()
		if !l.stopped && len(l.pending) < callLogMax {
			l.pending = append(l.pending, callLogLine{logger, fields})
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
	logger.Info("llm call", fields...)
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
