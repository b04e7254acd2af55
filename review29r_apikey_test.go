package metis

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// An api_key written with the key itself inside a placeholder's braces (an
// operator who mistook {env.X} for "the key goes here", or wrote a shell
// assignment into it) resolves to "" — {env.*} is a known placeholder for
// any name, and os.Getenv of a name holding '-' or '=' is "" — so the
// written text, key included, became the start-up WARN's api_key field and
// the 401 refusal line's text (review 29r). README: log lines never hold
// a provider key. Only an {env.NAME}/{file.PATH} whose NAME is an
// environment variable's name should be echoed.
func TestEmptiedAPIKeyWarningNeverEchoesAKey(t *testing.T) {
	const secret = "sk-ant-api03-Zx9QvLr7TtKk2M"
	for _, written := range []string{
		"{env." + secret + "}",
		"{env.ANTHROPIC_API_KEY=" + secret + "}",
	} {
		p, err := newProvider(&ProviderConfig{Name: "anthropic", APIKey: written})
		if err != nil {
			t.Fatalf("%s: %v", written, err)
		}
		core, logs := observer.New(zapcore.DebugLevel)
		p.warnRefusedKey(zap.New(core), 401)
		for _, e := range logs.All() {
			if strings.Contains(e.Message, secret) {
				t.Errorf("api_key %q: the refusal line holds the key: %q", written, e.Message)
			}
		}
		if strings.Contains(p.keyEmptied, secret) {
			t.Errorf("api_key %q: the start-up warning's api_key field would be %q, the key itself", written, p.keyEmptied)
		}
	}
}

// What an operator needs is still named: the variable or file to set.
func TestEmptiedAPIKeyNamesEnvAndFilePlaceholders(t *testing.T) {
	for written, want := range map[string]string{
		"{env.ANTHROPIC_API_KEY}":             "{env.ANTHROPIC_API_KEY}",
		" {env.A_1}{env.B} ":                  " {env.A_1}{env.B} ",
		"{file./run/secrets/anthropic.key}":   "{file./run/secrets/anthropic.key}",
		"{env.sk-ant-api03-x}":                "(a placeholder, not shown)",
		"{file.abc123.secretpart}":            "(a placeholder, not shown)",
		"{env.ANTHROPIC_API_KEY=sk-ant-a}":    "(a placeholder, not shown)",
		"{env.ANTHROPIC_API_KEY}{env.sk-ant}": "(a placeholder, not shown)",
	} {
		if got := emptiedPlaceholder("", written); got != want {
			t.Errorf("%q: %q, want %q", written, got, want)
		}
	}
	if got := emptiedPlaceholder("sk-ant-a", "{env.ANTHROPIC_API_KEY}"); got != "" {
		t.Errorf("a key that came out: %q, want nothing", got)
	}
}
