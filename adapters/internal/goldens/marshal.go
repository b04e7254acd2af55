package goldens

import (
	"bytes"
	"encoding/json"
	"testing"
)

// EscapingBody is an OpenAI-shaped request body whose strings, numbers and
// raw JSON need every escape and number form the hand-written request
// appenders implement: HTML characters, U+2028/U+2029, control bytes,
// invalid UTF-8, tiny floats and uncompacted raw JSON.
var EscapingBody = []byte(`{"model":"m\u2028<&>\u00e9\ud83d\ude00","messages":[{"role":"user","content":"a\u0001\b\f\n\r\t\"\\ \u2029 ` + "\xff\xfe\xe2\x80" + `"}],"temperature":1e-7,"top_p":1e-9,
		"tools":[{"type":"function","function":{"name":"f","parameters":{ "a" : [ 1 , "<\u2028>" , {"b":"\\"} ] }}}]}`)

// MarshalBodies returns RequestBodies followed by EscapingBody: the inputs
// on which an appender is compared with json.Marshal. It fails tb when the
// golden bodies cannot be read or fewer than 40 are found.
func MarshalBodies(tb testing.TB) [][]byte {
	tb.Helper()
	bodies, err := RequestBodies()
	if err != nil {
		tb.Fatal(err)
	}
	if len(bodies) < 40 {
		tb.Fatalf("only %d golden bodies found", len(bodies))
	}
	return append(bodies, EscapingBody)
}

// CheckMarshal fails tb unless marshal(v) returns exactly the bytes
// json.Marshal(v) returns, or fails with the same error text. body is the
// request v was built from, quoted in the failure message.
func CheckMarshal[T any](tb testing.TB, body []byte, v T, marshal func(T) ([]byte, error)) {
	tb.Helper()
	want, werr := json.Marshal(v)
	got, gerr := marshal(v)
	if (werr == nil) != (gerr == nil) || werr != nil && werr.Error() != gerr.Error() {
		tb.Fatalf("errors differ: json.Marshal %v, appender %v\nbody: %s", werr, gerr, body)
	}
	if !bytes.Equal(got, want) {
		tb.Fatalf("appender output differs from json.Marshal\nbody: %s\n got: %s\nwant: %s", body, got, want)
	}
}
