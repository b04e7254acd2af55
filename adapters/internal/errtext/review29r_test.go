package errtext_test

import (
	"strings"
	"testing"

	"github.com/metisgateway/metis/adapters/internal/errtext"
)

// NestJS's ValidationPipe (the framework of several OpenAI-compatible
// proxies) answers {"statusCode":400,"message":[…],"error":"Bad Request"}:
// "message" is an array, so jsonMessage skips it and takes "error", and a
// translated client reads only "Bad Request" where, before this change, it
// read the whole body with the reasons (review 29r). The reasons must stay.
func TestFallbackKeepsAnArrayMessage(t *testing.T) {
	body := `{"statusCode":400,"message":["max_tokens must not be greater than 4096","temperature must be a number"],"error":"Bad Request"}`
	got := errtext.Fallback(400, []byte(body))
	if !strings.Contains(got, "max_tokens must not be greater than 4096") {
		t.Errorf("Fallback = %q: the reasons in the array \"message\" are lost", got)
	}
}
