package store

import (
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// Ids stay increasing when the wall clock steps back (an NTP correction):
// ulid's monotonic reader only increments within the same millisecond, so
// an earlier one drew ids below those already given, and a call's
// llm.call_completed could sort before its route.decided (review 28T).
func TestNewIDIncreasesWhenTheClockStepsBack(t *testing.T) {
	now := ulid.Timestamp(time.Now())
	clock := []uint64{now, now + 5, now - 2000, now - 2000, now - 1999, now + 6}
	i := 0
	setNow := idNow
	idNow = func() uint64 { ms := clock[min(i, len(clock)-1)]; i++; return ms }
	t.Cleanup(func() { idNow = setNow })
	prev := NewID()
	for range len(clock) + 2 {
		id := NewID()
		if id.Compare(prev) <= 0 {
			t.Fatalf("id %s (ms %d) after %s (ms %d): the clock read %d", id, id.Time(), prev, prev.Time(), clock[min(i-1, len(clock)-1)])
		}
		prev = id
	}
}
