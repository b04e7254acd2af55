package metis

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A provider block without api_key is a server that needs none (app.go:
// "A block without api_key is a server that needs none"; README's local
// Ollama/vLLM examples). Since 2665b01 emptiedPlaceholder("", "") is
// "(a placeholder, not shown)", so every keyless provider gets the
// start-up WARN "provider has no API key: its api_key came out empty (is
// the environment variable set?)" and a 401 from it is blamed on a
// placeholder that was never written (review 29r2).
func TestKeylessProviderIsNotAnEmptiedPlaceholder(t *testing.T) {
	if got := emptiedPlaceholder("", ""); got != "" {
		t.Errorf("emptiedPlaceholder(\"\", \"\") = %q, want \"\" (no api_key written)", got)
	}
	p, err := newProvider(&ProviderConfig{Name: "local", Type: "openai", BaseURL: "http://127.0.0.1:11434/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.keyEmptied != "" {
		t.Errorf("keyless provider: keyEmptied = %q, want \"\" (no start-up WARN)", p.keyEmptied)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	p.warnRefusedKey(zap.New(core), 401)
	for _, e := range logs.All() {
		if strings.Contains(e.Message, "placeholder") {
			t.Errorf("keyless provider's refusal line speaks of a placeholder: %q", e.Message)
		}
	}
	// README's Azure form: "Azure's key then goes as header api-key
	// {env.AZURE_OPENAI_API_KEY}, with no api_key".
	t.Setenv("AZURE_OPENAI_API_KEY", "azkey0123456789")
	az, err := newProvider(&ProviderConfig{Name: "azure", Type: "openai",
		BaseURL: "https://r.openai.azure.com/openai/deployments/d?api-version=2024-10-21",
		Headers: map[string]string{"api-key": "{env.AZURE_OPENAI_API_KEY}"}})
	if err != nil {
		t.Fatal(err)
	}
	if az.keyEmptied != "" {
		t.Errorf("Azure provider (key in a header line, no api_key): keyEmptied = %q, want \"\" (no \"provider has no API key\" WARN)", az.keyEmptied)
	}
}

// The key written inside the braces, which 2665b01 means to hide, is
// echoed whenever the key is made of [A-Za-z0-9_] only: Groq's gsk_…,
// Hugging Face's hf_…, Fireworks' fw_…, Mistral's 32 alphanumerics. They
// match namedPlaceholders' NAME, os.Getenv of them is "", and the written
// text (the key) goes into the start-up WARN and the 401 line (review 29r2).
func TestEmptiedAPIKeyUnderscoreKeysNotEchoed(t *testing.T) {
	for _, secret := range []string{
		"gsk_Zx9QvLr7TtKk2MaB3cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX4yZ5a",
		"hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
		"fw_3ZxQvLr7TtKk2MaB3cD4eF5g",
		"Zx9QvLr7TtKk2MaB3cD4eF5gH6iJ7kL8", // Mistral
	} {
		if got := emptiedPlaceholder("", "{env."+secret+"}"); strings.Contains(got, secret) {
			t.Errorf("api_key {env.%s}: logged as %q, the key itself", secret, got)
		}
	}
}
