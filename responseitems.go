package metis

import (
	"sync"
	"time"
)

// The items of translated Responses API answers are kept this long, and
// no more than this many bytes of them in all (the oldest go first).
const (
	responseItemTTL      = 24 * time.Hour
	responseItemMaxBytes = 32 << 20
)

// responseItems keeps the output items of the Responses API answers the
// gateway wrote for Claude models (those not asked with store false), per
// gateway key, for a day and responseItemMaxBytes in all: a client that
// refers back to one by id (an item_reference, as the Vercel AI SDK does
// with store left at its default) gets it read back, as OpenAI reads the
// items it stores. It lives with the trace store, across reloads; a
// restart forgets it.
type responseItems struct {
	mu    sync.Mutex
	items map[responseItemKey]keptItem
	order []keptRef // insertion order, oldest first, from head
	head  int
	seq   uint64
	bytes int
	now   func() time.Time
}

// keptRef is an item's place in the insertion order: seq tells the place
// of an item kept again (the same id) from its older one.
type keptRef struct {
	key responseItemKey
	seq uint64
}

// responseItemKey names an item: a key's items are not another's.
type responseItemKey struct{ keyID, id string }

// keptItem is an item's JSON, when it was kept, and its keptRef.seq.
type keptItem struct {
	raw []byte
	at  time.Time
	seq uint64
}

func newResponseItems() *responseItems {
	return &responseItems{items: map[responseItemKey]keptItem{}, now: time.Now}
}

// keep records item id of key keyID's answer. An item kept again (the
// same id) is replaced.
func (s *responseItems) keep(keyID, id string, raw []byte) {
	if id == "" || len(raw) > responseItemMaxBytes {
		return
	}
	k := responseItemKey{keyID, id}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.items[k]; ok {
		s.bytes -= len(old.raw)
	}
	s.seq++
	s.items[k] = keptItem{raw: raw, at: s.now(), seq: s.seq}
	s.order = append(s.order, keptRef{k, s.seq})
	s.bytes += len(raw)
	s.evict()
}

// get returns the JSON of item id of key keyID, if kept and not expired.
func (s *responseItems) get(keyID, id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evict()
	it, ok := s.items[responseItemKey{keyID, id}]
	return it.raw, ok
}

// evict drops expired items and, while over the byte bound, the oldest.
func (s *responseItems) evict() {
	cutoff := s.now().Add(-responseItemTTL)
	for s.head < len(s.order) {
		ref := s.order[s.head]
		it, ok := s.items[ref.key]
		current := ok && it.seq == ref.seq // else kept again later, or gone
		if current && !it.at.Before(cutoff) && s.bytes <= responseItemMaxBytes {
			break
		}
		s.order[s.head] = keptRef{}
		s.head++
		if current {
			delete(s.items, ref.key)
			s.bytes -= len(it.raw)
		}
	}
	if s.head > 1024 && s.head*2 > len(s.order) {
		s.order = append(s.order[:0:0], s.order[s.head:]...)
		s.head = 0
	}
}
