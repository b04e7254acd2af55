package hotpath

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/metisgateway/metis/adapters/openai"
	"github.com/metisgateway/metis/adapters/translate"
	"github.com/metisgateway/metis/bench/workload"
	"github.com/metisgateway/metis/ir"
)

// The call benchmarks are everything the gateway does to one non-streamed
// 4 KB OpenAI-shape call besides networking, auth, pricing and tracing
// (which both paths share): validate the body, build the upstream body,
// read usage from the upstream answer and build the client's answer. The
// passthrough path is the same-shape call (S1 "Metis · OpenAI 4 KB
// same-shape"), the translation path the cross-shape one (S1 "Metis ·
// OpenAI→Anthropic 4 KB"); their difference is what the ≤ 30 µs target of
// the translation path is about.

// openAIModel is the model of the same-shape 4 KB row of the load runs.
const openAIModel = "gpt-5-mini"

var errInvalid = errors.New("invalid request")

// validate mirrors the gateway's request check (gateway.go validate) for
// an OpenAI-shape body: one validity scan, then one pass over the top
// level for the fields the gateway reads (model, stream) and checks.
func validate(body []byte) (root, model, stream gjson.Result, err error) {
	if !gjson.ValidBytes(body) {
		return root, model, stream, errInvalid
	}
	root = gjson.ParseBytes(body)
	if !root.IsObject() {
		return root, model, stream, errInvalid
	}
	var msgs gjson.Result
	root.ForEach(func(k, v gjson.Result) bool {
		switch k.Str {
		case "model":
			model = v
		case "stream":
			stream = v
		case "messages":
			msgs = v
		}
		return true
	})
	if (model.Exists() && model.Type != gjson.String) || !msgs.IsArray() ||
		(stream.Exists() && stream.Type != gjson.True && stream.Type != gjson.False) {
		return root, model, stream, errInvalid
	}
	return root, model, stream, nil
}

// passthroughCall is the same-shape call: validate, read model and stream,
// forward the body as is (the model needs no rewrite), read the usage of
// the answer and relay its bytes.
func passthroughCall(body, answer []byte) (up, out []byte, u ir.Usage, err error) {
	_, model, stream, err := validate(body)
	if err != nil {
		return nil, nil, u, err
	}
	_ = stream.Bool()
	if model.String() != openAIModel {
		return nil, nil, u, errInvalid
	}
	u, _, err = openai.ResponseUsage(answer)
	return body, answer, u, err
}

// crossCall is the cross-shape call: validate, translate the parsed
// request to Anthropic, then translate the Anthropic answer back to a
// chat.completion, reading its usage in the same pass (call.go decide,
// relay.go relayBody).
func crossCall(body, answer []byte) (up, out []byte, u ir.Usage, err error) {
	root, _, stream, err := validate(body)
	if err != nil {
		return nil, nil, u, err
	}
	_ = stream.Bool()
	up, st, err := translate.OpenAIToAnthropicRequestParsed(root, model, translate.Options{})
	if err != nil {
		return nil, nil, u, err
	}
	out, uu, err := st.AnthropicResponseToOpenAIWithUsage(answer, func() int64 { return 0 })
	if err == nil {
		err = uu.Err
	}
	return up, out, uu.Usage, err
}

// callFixtures returns the two 4 KB request bodies and the mock's answers
// to what each path sends upstream.
func callFixtures(tb testing.TB) (sameBody, sameAnswer, crossBody, crossAnswer []byte) {
	tb.Helper()
	sameBody = workload.OpenAI4KBody(openAIModel)
	sameAnswer = upstream(tb, "/v1/chat/completions", sameBody, 16)
	crossBody = workload.OpenAI4KBody(model)
	up, _, err := translate.OpenAIToAnthropicRequest(crossBody, model, translate.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	crossAnswer = upstream(tb, "/v1/messages", up, 16)
	return sameBody, sameAnswer, crossBody, crossAnswer
}

// TestCallPaths keeps the call benchmarks honest: both paths read the
// mock's usage, the passthrough relays the answer unchanged and the
// translation path answers in the client's shape with the same usage.
func TestCallPaths(t *testing.T) {
	sb, sa, cb, ca := callFixtures(t)
	up, out, u, err := passthroughCall(sb, sa)
	if err != nil || !bytes.Equal(up, sb) || !bytes.Equal(out, sa) || u.OutputTokens != 16 || u.InputTokens == 0 {
		t.Fatalf("passthrough: err %v, usage %+v", err, u)
	}
	up, out, u, err = crossCall(cb, ca)
	if err != nil || u.OutputTokens != 16 || u.InputTokens == 0 {
		t.Fatalf("cross-shape: err %v, usage %+v", err, u)
	}
	if m := gjson.GetBytes(up, "model").Str; m != model || !gjson.GetBytes(up, "max_tokens").Exists() {
		t.Fatalf("upstream body: %s", up)
	}
	res := gjson.ParseBytes(out)
	if res.Get("object").Str != "chat.completion" || res.Get("model").Str != model ||
		res.Get("usage.prompt_tokens").Int() != u.InputTokens || res.Get("usage.completion_tokens").Int() != 16 ||
		res.Get("choices.0.message.content").Str == "" || res.Get("choices.0.finish_reason").Str != "stop" {
		t.Fatalf("client answer: %s", out)
	}
}

// BenchmarkCall4KB runs the passthrough and the translation path of a
// 4 KB OpenAI-shape call (see passthroughCall and crossCall).
func BenchmarkCall4KB(b *testing.B) {
	sb, sa, cb, ca := callFixtures(b)
	for _, bc := range []struct {
		name         string
		fn           func(body, answer []byte) ([]byte, []byte, ir.Usage, error)
		body, answer []byte
	}{
		{"passthrough", passthroughCall, sb, sa},
		{"translate", crossCall, cb, ca},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := bc.fn(bc.body, bc.answer); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
