package metis

import (
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// callLogQueue bounds the log lines waiting for the call log's goroutine;
// beyond it a line is written by the request that produced it.
const callLogQueue = 4096

// callLog writes the one "llm call" line per call off the request path:
// encoding 15 fields and the write(2) to Caddy's log cost about 10 µs per
// call, and a log write can stall behind the disk. A line is never dropped:
// when the queue is full or the log has stopped, the caller writes it.
type callLog struct {
	mu      sync.RWMutex // held for reading while sending; Lock stops senders
	stopped bool
	lines   chan callLogLine
	done    chan struct{}
}

type callLogLine struct {
	logger *zap.Logger
	fields []zap.Field
}

func newCallLog() *callLog {
	l := &callLog{lines: make(chan callLogLine, callLogQueue), done: make(chan struct{})}
	go l.run()
	return l
}

func (l *callLog) run() {
	defer close(l.done)
	for line := range l.lines {
		line.logger.Info("llm call", line.fields...)
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
		l.mu.RLock()
		if !l.stopped {
			select {
			case l.lines <- callLogLine{logger, fields}:
				l.mu.RUnlock()
				return
			default: // full: write it here rather than lose it
			}
		}
		l.mu.RUnlock()
	}
	logger.Info("llm call", fields...)
}

// stop writes the queued lines and returns; later lines are written by
// their callers.
func (l *callLog) stop() {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return
	}
	l.stopped = true
	close(l.lines)
	l.mu.Unlock()
	<-l.done
}
