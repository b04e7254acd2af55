package errtext_test

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/metisgateway/metis/adapters/internal/errtext"
)

func TestFallback(t *testing.T) {
	long := strings.Repeat("a", 1023) + "é" + strings.Repeat("b", 10)
	for _, c := range []struct {
		status int
		body   string
		want   string
	}{
		{502, "  <html>bad gateway</html>\n", "<html>bad gateway</html>"},
		{502, "", "Bad Gateway"},
		{429, " \n\t", "Too Many Requests"},
		{599, "", "upstream error"},
		{500, strings.Repeat("x", 2000), strings.Repeat("x", 1024)},
		// The cut would split é: it goes back to the last whole rune.
		{500, long, strings.Repeat("a", 1023)},
		{500, "\xff\xfe", "\xff\xfe"},
		// Compatible servers' own shapes: the message, not the JSON.
		{404, `{"detail":"Model 'qwen-0.5b' not found"}`, "Model 'qwen-0.5b' not found"},
		{422, `{"detail":[{"type":"missing","loc":["body","messages"],"msg":"Field required","input":{}},{"loc":["body","max_tokens"],"msg":"Input should be a valid integer"}]}`,
			"body.messages: Field required; body.max_tokens: Input should be a valid integer"},
		{500, `{"message":"engine crashed"}`, "engine crashed"},
		{503, `{"error":"model is loading"}`, "model is loading"},
		{500, `{"status":"down"}`, `{"status":"down"}`},
		{500, `{"detail":`, `{"detail":`},
	} {
		got := errtext.Fallback(c.status, []byte(c.body))
		if got != c.want {
			t.Errorf("Fallback(%d, %.40q) = %.40q (len %d), want %.40q (len %d)", c.status, c.body, got, len(got), c.want, len(c.want))
		}
		if len(c.body) > 1024 && !utf8.ValidString(got) {
			t.Errorf("Fallback(%d, %.40q) cut inside a rune", c.status, c.body)
		}
	}
}

// A decoding error names the member and the JSON types, not the gateway's
// Go types (review 29U).
func TestDecodeWordsTypeErrorsInJSONTerms(t *testing.T) {
	var into struct {
		Choices []struct {
			Index int `json:"index"`
		} `json:"choices"`
	}
	for body, want := range map[string]string{
		`[{"id":"c"}]`:                   "the body is a JSON array where the API has an object",
		`{"choices":{"index":0}}`:        `member "choices" is a JSON object where the API has an array`,
		`{"choices":[{"index":"zero"}]}`: `member "choices.index" is a JSON string where the API has an integer`,
	} {
		err := errtext.Decode(json.Unmarshal([]byte(body), &into))
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", body, err, want)
		}
	}
	if err := errtext.Decode(json.Unmarshal([]byte(`{`), &into)); err == nil || !strings.Contains(err.Error(), "unexpected end of JSON input") {
		t.Errorf("a syntax error should stay as it is: %v", err)
	}
}
