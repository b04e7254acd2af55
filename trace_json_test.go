package metis

import (
	"encoding/json"
	"math"
	"testing"
)

// The trace payloads' appenders must write exactly what encoding/json
// writes, so that switching encoders changes nothing a sqlite3 query sees.
func TestTracePayloadAppendersMatchEncodingJSON(t *testing.T) {
	cls, cost, tiny, big := "CANCELLED", 0.002541, 1e-9, 1e21
	routes := []*routeDecided{
		{},
		{TurnID: "turn_01", GatewayKeyID: "gk_1", KeyName: `ali"ce <dev> & co`, User: "ålice", Team: "t\n1",
			Workspace: "/w/\u2028x", SessionID: "s-1", InboundShape: "anthropic", Endpoint: "messages",
			RequestedModel: "haiku", Provider: "anthropic", Model: "claude-haiku-4-5", RouteSlot: "request",
			Stream: true, CrossShape: true},
		{TurnID: "t", Model: "\xff\xfe invalid utf8"},
	}
	for _, p := range routes {
		compareJSON(t, p, p.AppendJSON)
	}
	turns := []*turnCompleted{
		{},
		{TurnID: "turn_01", GatewayKeyID: "gk_1", Status: 200, CostUSD: &cost, Priced: true, LatencyMS: 1234, Calls: 1},
		{TurnID: "turn_02", Status: 499, ErrorClass: &cls, CostUSD: &tiny, LatencyMS: 7},
		{TurnID: "turn_03", Status: 200, CostUSD: &big, Priced: true},
	}
	for _, p := range turns {
		compareJSON(t, p, p.AppendJSON)
	}
	nan := math.NaN()
	if _, err := (&turnCompleted{CostUSD: &nan}).AppendJSON(nil); err == nil {
		t.Error("a NaN cost encoded without an error; encoding/json refuses it")
	}
}

func compareJSON(t *testing.T, v any, app func([]byte) ([]byte, error)) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	got, err := app([]byte("prefix"))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "prefix"+string(want) {
		t.Errorf("appender wrote\n%s\nencoding/json writes\n%s", got[6:], want)
	}
}
