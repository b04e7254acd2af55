package metis

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The item store gives an item back to its own gateway key only, for a
// day; an item kept again replaces the old one; past the byte bound the
// oldest items go first, and its bookkeeping stays bounded.
func TestResponseItems(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	s := newResponseItems()
	s.now = func() time.Time { return now }
	s.keep("gk_a", "msg_1_0", []byte(`{"id":"msg_1_0","v":1}`))
	if raw, ok := s.get("gk_a", "msg_1_0"); !ok || string(raw) != `{"id":"msg_1_0","v":1}` {
		t.Fatalf("own key: %s %v", raw, ok)
	}
	if _, ok := s.get("gk_b", "msg_1_0"); ok {
		t.Error("another key read the item")
	}
	now = now.Add(12 * time.Hour)
	s.keep("gk_a", "msg_1_0", []byte(`{"id":"msg_1_0","v":2}`)) // kept again: its day starts again
	now = now.Add(13 * time.Hour)
	if raw, ok := s.get("gk_a", "msg_1_0"); !ok || !strings.Contains(string(raw), `"v":2`) {
		t.Errorf("an item kept again 13 h ago: %s %v", raw, ok)
	}
	now = now.Add(12 * time.Hour)
	if _, ok := s.get("gk_a", "msg_1_0"); ok || s.bytes != 0 || len(s.keys) != 0 {
		t.Errorf("after a day: still kept (%d bytes, %d keys)", s.bytes, len(s.keys))
	}

	// Past the bound, the key holding the most gives up its oldest items:
	// a busy key does not push out a quiet one's.
	s.keep("gk_quiet", "msg_q_0", []byte(`{"id":"msg_q_0"}`))
	big := make([]byte, responseItemMaxBytes/4)
	for i := range 6 {
		s.keep("gk_a", fmt.Sprintf("big_%d", i), big)
	}
	if _, ok := s.get("gk_a", "big_1"); ok {
		t.Error("the oldest items outlived the byte bound")
	}
	if _, ok := s.get("gk_a", "big_5"); !ok || s.bytes > responseItemMaxBytes {
		t.Errorf("the newest item is gone, or %d bytes kept", s.bytes)
	}
	if _, ok := s.get("gk_quiet", "msg_q_0"); !ok {
		t.Error("the busy key pushed out the quiet key's item")
	}
	for i := range 20000 {
		s.keep("gk_a", fmt.Sprintf("small_%d", i%50), []byte(`{}`))
		now = now.Add(10 * time.Second)
	}
	if k := s.keys["gk_a"]; len(k.order)-k.head > 20000 || cap(k.order) > 3*20000 {
		t.Errorf("order holds %d entries (head %d)", len(k.order), k.head)
	}
}
