package openai

import (
	"testing"

	"github.com/metisgateway/metis/ir"
)

// Review 25R3: 4cf371f reads TGI's {"error":…,"error_type":"overloaded"}
// as an error of type "overloaded" in the tracker (and retries it as a
// first event), "one reading for the tracker and the translator"; the
// translator (Decode) drops error_type, so when the retries are spent the
// Anthropic client of a TGI-served model gets an api_error, not the
// overloaded_error Anthropic itself sends for the same condition (and a
// TGI "validation" error, a request the model cannot take, an api_error
// too, which a client retries).
func TestReview3TGIErrorTypeTranslated(t *testing.T) {
	for _, c := range []struct {
		chunk string
		want  ir.ErrorKind
	}{
		{`{"error":"Model is overloaded","error_type":"overloaded"}`, ir.ErrOverloaded},
		{`{"error":"Input validation error: inputs tokens + max_new_tokens must be <= 4096","error_type":"validation"}`, ir.ErrInvalidRequest},
	} {
		var d StreamDecoder
		evs, err := d.Decode([]byte(c.chunk), nil)
		if err != nil || len(evs) != 1 || evs[0].Type != ir.EventError {
			t.Fatalf("%s: %v %+v", c.chunk, err, evs)
		}
		if k := evs[0].Err.Kind; k != c.want {
			t.Errorf("%s: translated as %s; want %s", c.chunk, k, c.want)
		}
	}
}
