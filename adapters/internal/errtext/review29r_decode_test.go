package errtext_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/metisgateway/metis/adapters/internal/errtext"
)

// A compatible server that writes a count as 12.0 or 12.5 (a float where
// the API has an integer) gets a decoding error that contradicts itself:
// `member "usage.prompt_tokens" is a JSON number 12.5 where the API has a
// number` (encoding/json's Value is "number 12.5" and jsonKind calls every
// Go integer "a number"). The words must say what is wrong: an integer was
// wanted (review 29r).
func TestDecodeSaysIntegerForAFractionalCount(t *testing.T) {
	var into struct {
		Usage struct {
			PromptTokens int64 `json:"prompt_tokens"`
		} `json:"usage"`
	}
	err := errtext.Decode(json.Unmarshal([]byte(`{"usage":{"prompt_tokens":12.5}}`), &into))
	if err == nil {
		t.Fatal("no error")
	}
	if !strings.Contains(err.Error(), "integer") {
		t.Errorf("%q: says a number is wanted where a number was sent", err)
	}
}
