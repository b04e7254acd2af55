package anthropic

import (
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/ir"
)

// TestStandInMessageIDsDiffer: answers whose provider gave no id (some
// OpenAI-compatible servers) each get an id of their own, streamed or
// not. A constant id made every such answer the same message to a client
// that tells messages apart by id (Claude Code joins the blocks of one id
// into one assistant turn).
func TestStandInMessageIDsDiffer(t *testing.T) {
	seen := map[string]bool{}
	for range 3 {
		out, err := EncodeResponse(&ir.Response{Content: []ir.Part{{Type: ir.PartText, Text: "hi"}}}, "m", nil)
		if err != nil {
			t.Fatal(err)
		}
		id := gjson.GetBytes(out, "id").Str
		var e StreamEncoder
		start := string(e.Encode(nil, &ir.StreamEvent{Type: ir.EventMessageStart}))
		sid := gjson.Get(start[strings.Index(start, "{"):], "message.id").Str
		for _, id := range []string{id, sid} {
			if !strings.HasPrefix(id, "msg_") || seen[id] {
				t.Errorf("stand-in id %q: want a msg_ id of its own", id)
			}
			seen[id] = true
		}
	}
}
