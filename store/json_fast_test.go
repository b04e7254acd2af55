package store

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// randJSONString returns a string mixing what encoding/json escapes
// differently: control bytes, quotes, HTML characters, invalid UTF-8,
// U+2028/U+2029 and multi-byte runes.
func randJSONString(r *rand.Rand) string {
	pieces := []string{"a", "Z", "0", " ", "\"", "\\", "/", "<", ">", "&", "\b", "\f", "\n", "\r", "\t",
		"\x00", "\x01", "\x1f", "\x7f", "é", "€", "😀", "\u2028", "\u2029", "\ufffd", "\xff", "\xc3", "\xe2\x80",
		"\xed\xa0\x80", "claude-sonnet-4", "gk_01J"}
	var sb strings.Builder
	for range r.IntN(12) {
		if r.IntN(4) == 0 {
			sb.WriteByte(byte(r.IntN(256)))
			continue
		}
		sb.WriteString(pieces[r.IntN(len(pieces))])
	}
	return sb.String()
}

// randJSONFloat returns floats around encoding/json's format switches
// (1e-6 and 1e21), integers, zeros and ordinary costs.
func randJSONFloat(r *rand.Rand) float64 {
	switch r.IntN(8) {
	case 0:
		return 0
	case 1:
		return math.Copysign(0, -1)
	case 2:
		return math.Ldexp(r.Float64(), r.IntN(2000)-1000) * float64(1-2*r.IntN(2))
	case 3:
		return math.Pow(10, float64(r.IntN(60)-30)) * float64(1-2*r.IntN(2))
	case 4:
		return float64(r.Int64N(1 << 53))
	case 5:
		return []float64{1e-6, 1e-7, 9.999999e-7, 1e21, 1e20, 123456789e13, math.MaxFloat64,
			math.SmallestNonzeroFloat64}[r.IntN(8)]
	default:
		return r.Float64() * 3
	}
}

func randJSONCall(r *rand.Rand) *Call {
	str := func() string {
		if r.IntN(3) == 0 {
			return ""
		}
		return randJSONString(r)
	}
	c := &Call{TurnID: str(), GatewayKeyID: str(), KeyName: str(), User: str(), Team: str(), Workspace: str(),
		SessionID: str(), InboundShape: str(), Provider: str(), RequestedModel: str(), Model: str(),
		Stream: r.IntN(2) == 0, Status: r.IntN(600) - 50, ErrorClass: str(), Attempts: r.IntN(5),
		InputTokens: r.Int64() - r.Int64(), CacheReadInputTokens: r.Int64N(1e6),
		CacheCreationInputTokens: r.Int64N(1e6), CacheCreation5mInputTokens: r.Int64N(1e6),
		CacheCreation1hInputTokens: r.Int64N(1e6), OutputTokens: r.Int64N(1e6), ReasoningTokens: -r.Int64N(10), WebSearchRequests: r.Int64N(3),
		Priced: r.IntN(2) == 0, UsageSource: str(), LatencyMS: r.Int64N(1e5), UpstreamRequestID: str(),
		CacheSavingsUSD: randJSONFloat(r), ServiceTier: str(), Speed: str(), InferenceGeo: str(), PricedModel: str(), AnsweredModel: str()}
	if r.IntN(3) > 0 {
		f := randJSONFloat(r)
		c.CostUSD = &f
	}
	if r.IntN(2) == 0 {
		t := r.Int64() - r.Int64()
		c.TTFTMS = &t
	}
	return c
}

// TestAppendCallJSONMatchesMarshal is a differential test of the
// hand-written encoder against encoding/json on random calls.
func TestAppendCallJSONMatchesMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	prefix := []byte("prefix")
	for i := range 20000 {
		c := randJSONCall(r)
		want, err := c.MarshalJSON()
		if err != nil {
			t.Fatalf("call %d: MarshalJSON: %v", i, err)
		}
		got, ok := appendCallJSON(prefix, c)
		if !ok {
			t.Fatalf("call %d: appendCallJSON refused %+v", i, c)
		}
		if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want) {
			t.Fatalf("call %d %+v:\n got %s\nwant %s", i, c, got[len(prefix):], want)
		}
		prefix = got[:len(prefix)] // appending again must not disturb the prefix
	}
}

// TestAppendCallJSONRefusesNonFinite: NaN and infinities are left to
// MarshalJSON, which reports them as errors.
func TestAppendCallJSONRefusesNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		for _, c := range []*Call{{CacheSavingsUSD: f}, {CostUSD: &f}} {
			if _, ok := appendCallJSON(nil, c); ok {
				t.Errorf("appendCallJSON accepted %v", f)
			}
			if _, err := c.MarshalJSON(); err == nil {
				t.Errorf("MarshalJSON accepted %v", f)
			}
		}
	}
}

// FuzzAppendJSONString compares string encoding with encoding/json.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "a<b>&c", "\u2028\x00\xff", "\"\\\b\f\n\r\t/é😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

// FuzzAppendJSONFloat compares float encoding with encoding/json.
func FuzzAppendJSONFloat(f *testing.F) {
	for _, v := range []float64{0, 1e-7, 1e21, 0.1, -3.5e300} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v float64) {
		want, err := json.Marshal(v)
		if err != nil {
			if finite(v) {
				t.Fatal(err)
			}
			return
		}
		if got := appendJSONFloat(nil, v); !bytes.Equal(got, want) {
			t.Fatalf("%v: got %s, want %s", v, got, want)
		}
	})
}
