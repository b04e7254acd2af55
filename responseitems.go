package metis

import (
	"sync"
	"time"
)

// The items of translated Responses API answers are kept this long, and
// no more than this many bytes of them in all, each item counted with
// responseItemOverhead for its map entry and bookkeeping.
const (
	responseItemTTL      = 24 * time.Hour
	responseItemMaxBytes = 32 << 20
	responseItemOverhead = 160
)

// responseItems keeps the output items of the Responses API answers the
// gateway wrote for Claude models (those not asked with store false), per
// gateway key, for a day and responseItemMaxBytes in all: a client that
// refers back to one by id (an item_reference, as the Vercel AI SDK does
// with store left at its default) gets it read back, as OpenAI reads the
// items it stores. It also keeps the signed thinking of Claude's answers
// to OpenAI-shape clients that called tools, under each call's id
// (thinkingID), for the request answering those tools: Claude wants it
// back, and Chat Completions has no place for it. Past the bound, the key
// holding the most gives up its oldest items first, so that one busy key
// does not push out the others'. It lives with the trace store, across
// reloads; a restart forgets it.
type responseItems struct {
	mu    sync.Mutex
	keys  map[string]*keyItems
	bytes int
	now   func() time.Time
}

// keyItems are one gateway key's kept items.
type keyItems struct {
	items map[string]keptItem
	order []keptRef // insertion order, oldest first, from head
	head  int
	seq   uint64
	bytes int
}

// keptItem is an item's JSON, when it was kept, and its keptRef.seq.
type keptItem struct {
	raw []byte
	at  time.Time
	seq uint64
}

// keptRef is an item's place in its key's insertion order: seq tells the
// place of an item kept again (the same id) from its older one.
type keptRef struct {
	id  string
	seq uint64
}

func newResponseItems() *responseItems {
	return &responseItems{keys: map[string]*keyItems{}, now: time.Now}
}

// size is what an item counts against the bound.
func size(id string, raw []byte) int { return len(id) + len(raw) + responseItemOverhead }

// keep records item id of key keyID's answer. An item kept again (the
// same id) is replaced.
func (s *responseItems) keep(keyID, id string, raw []byte) {
	if id == "" || size(id, raw) > responseItemMaxBytes {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[keyID]
	if k == nil {
		k = &keyItems{items: map[string]keptItem{}}
		s.keys[keyID] = k
	}
	if old, ok := k.items[id]; ok {
		s.drop(k, id, old)
	}
	k.seq++
	k.items[id] = keptItem{raw: raw, at: s.now(), seq: k.seq}
	k.order = append(k.order, keptRef{id, k.seq})
	k.bytes += size(id, raw)
	s.bytes += size(id, raw)
	s.expire(keyID, k)
	for s.bytes > responseItemMaxBytes {
		// The key holding the most gives up its oldest item.
		var big *keyItems
		var bigID string
		for kid, kk := range s.keys {
			if big == nil || kk.bytes > big.bytes {
				big, bigID = kk, kid
			}
		}
		s.popOldest(bigID, big)
	}
}

// get returns the JSON of item id of key keyID, if kept and not expired.
func (s *responseItems) get(keyID, id string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[keyID]
	if k == nil {
		return nil, false
	}
	s.expire(keyID, k)
	it, ok := k.items[id]
	return it.raw, ok
}

// resolver reads key keyID's kept items by id, for a request's
// item_references.
func (s *responseItems) resolver(keyID string) func(id string) ([]byte, bool) {
	return func(id string) ([]byte, bool) { return s.get(keyID, id) }
}

// thinkingID is the id the thinking of the answer that made tool call
// callID is kept under.
func thinkingID(callID string) string { return "thinking:" + callID }

// thinkingFor reads the thinking key keyID's answers kept, by tool call
// id (translate.Options.ThinkingFor).
func (s *responseItems) thinkingFor(keyID string) func(callID string) ([]byte, bool) {
	return func(callID string) ([]byte, bool) { return s.get(keyID, thinkingID(callID)) }
}

// thinkingKeeper keeps the thinking of key keyID's answers by tool call id
// (translate.State.KeepThinking).
func (s *responseItems) thinkingKeeper(keyID string) func(callID string, blocks []byte) {
	return func(callID string, blocks []byte) { s.keep(keyID, thinkingID(callID), blocks) }
}

// expire drops key keyID's items older than responseItemTTL.
func (s *responseItems) expire(keyID string, k *keyItems) {
	cutoff := s.now().Add(-responseItemTTL)
	for k.head < len(k.order) {
		ref := k.order[k.head]
		if it, ok := k.items[ref.id]; ok && it.seq == ref.seq && !it.at.Before(cutoff) {
			break
		}
		s.popOldest(keyID, k)
	}
}

// popOldest drops the entry at the head of k's order and its item, unless
// the item was kept again since (a later entry).
func (s *responseItems) popOldest(keyID string, k *keyItems) {
	ref := k.order[k.head]
	k.order[k.head] = keptRef{}
	k.head++
	if it, ok := k.items[ref.id]; ok && it.seq == ref.seq {
		s.drop(k, ref.id, it)
	}
	switch {
	case len(k.items) == 0 && k.head == len(k.order):
		delete(s.keys, keyID)
	case k.head > 1024 && k.head*2 > len(k.order):
		k.order = append(k.order[:0:0], k.order[k.head:]...)
		k.head = 0
	}
}

// drop removes item id from k and the byte counts.
func (s *responseItems) drop(k *keyItems, id string, it keptItem) {
	delete(k.items, id)
	k.bytes -= size(id, it.raw)
	s.bytes -= size(id, it.raw)
}
