package metis

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestCaddyfileAdapt compares each testdata/caddyfile_adapt/*.caddyfiletest
// (a Caddyfile, a line of dashes, then the expected JSON) with the adapter's
// output. Set METIS_UPDATE_GOLDEN=1 to rewrite the expected JSON.
func TestCaddyfileAdapt(t *testing.T) {
	files, err := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(raw), "\n----------\n")
			if !ok {
				t.Fatal("no ---------- separator")
			}
			out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(in), map[string]any{"filename": "Caddyfile"})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			var buf bytes.Buffer
			if err := json.Indent(&buf, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			got := buf.String() + "\n"
			if os.Getenv("METIS_UPDATE_GOLDEN") == "1" {
				if err := os.WriteFile(f, []byte(in+"\n----------\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("adapted JSON differs.\n--- got\n%s\n--- want\n%s", got, want)
			}
		})
	}
}

// TestCaddyfileErrors checks that bad configs fail with a message naming
// the line and the offending token.
func TestCaddyfileErrors(t *testing.T) {
	cases := []struct {
		name, input, want, line string
	}{
		{"unknown option", "{\n\tmetis {\n\t\tdbx /tmp/x.db\n\t}\n}\n", `unrecognized metis option "dbx"`, "Caddyfile:3"},
		{"db without path", "{\n\tmetis {\n\t\tdb\n\t}\n}\n", "db takes exactly one argument", "Caddyfile:3"},
		{"bad provider type", "{\n\tmetis {\n\t\tprovider local ollama\n\t}\n}\n", `provider "local": type must be anthropic or openai, got "ollama"`, "Caddyfile:3"},
		{"custom provider needs type", "{\n\tmetis {\n\t\tprovider local {\n\t\t\tbase_url http://x\n\t\t}\n\t}\n}\n", `provider "local" needs a type`, "Caddyfile:3"},
		{"unknown provider option", "{\n\tmetis {\n\t\tprovider anthropic {\n\t\t\tapikey x\n\t\t}\n\t}\n}\n", `provider "anthropic": unrecognized option "apikey"`, "Caddyfile:4"},
		{"bad retries", "{\n\tmetis {\n\t\tprovider openai {\n\t\t\tmax_retries lots\n\t\t}\n\t}\n}\n", `provider "openai": bad max_retries "lots"`, "Caddyfile:4"},
		{"bad timeout", "{\n\tmetis {\n\t\tprovider openai {\n\t\t\ttimeout soon\n\t\t}\n\t}\n}\n", `provider "openai": bad timeout "soon"`, "Caddyfile:4"},
		{"bad auth", "{\n\tmetis {\n\t\tprovider glm anthropic {\n\t\t\tauth token\n\t\t}\n\t}\n}\n", `provider "glm": auth must be x-api-key or bearer, got "token"`, "Caddyfile:5"},
		{"x-api-key to openai", "{\n\tmetis {\n\t\tprovider openai {\n\t\t\tauth x-api-key\n\t\t}\n\t}\n}\n", `auth x-api-key is for the anthropic type`, "Caddyfile:5"},
		{"compat option on anthropic", "{\n\tmetis {\n\t\tprovider anthropic {\n\t\t\tsystem_messages first\n\t\t}\n\t}\n}\n", `are for the openai type`, "Caddyfile:5"},
		{"prompt_cache on openai", "{\n\tmetis {\n\t\tprovider local openai {\n\t\t\tprompt_cache off\n\t\t}\n\t}\n}\n", `prompt_cache is for the anthropic type`, "Caddyfile:5"},
		{"bad prompt_cache", "{\n\tmetis {\n\t\tprovider anthropic {\n\t\t\tprompt_cache on\n\t\t}\n\t}\n}\n", `prompt_cache must be auto or off, got "on"`, "Caddyfile:5"},
		{"bad max_tokens_field", "{\n\tmetis {\n\t\tprovider local openai {\n\t\t\tmax_tokens_field max\n\t\t}\n\t}\n}\n", `max_tokens_field must be max_completion_tokens or max_tokens, got "max"`, "Caddyfile:5"},
		{"header arity", "{\n\tmetis {\n\t\tprovider openai {\n\t\t\theader X-Team\n\t\t}\n\t}\n}\n", `provider "openai": header takes a name and a value`, "Caddyfile:4"},
		{"header twice", "{\n\tmetis {\n\t\tprovider openai {\n\t\t\theader X-Team a\n\t\t\theader x-team b\n\t\t}\n\t}\n}\n", `provider "openai": header X-Team given twice`, "Caddyfile:5"},
		{"alias arity", "{\n\tmetis {\n\t\talias haiku\n\t}\n}\n", "alias takes a name and a target model", "Caddyfile:3"},
		{"duplicate provider", "{\n\tmetis {\n\t\tprovider openai\n\t\tprovider openai\n\t}\n}\n", `provider "openai" given twice`, "Caddyfile:4"},
		{"option twice", "{\n\tmetis {\n\t}\n\tmetis {\n\t}\n}\n", "may only be given once", "Caddyfile:4"},
		// A second one would win silently.
		{"writer twice", "{\n\tmetis {\n\t\twriter {\n\t\t\tqueue_size 10\n\t\t}\n\t\twriter {\n\t\t\tbatch_size 5\n\t\t}\n\t}\n}\n", "writer given twice", "Caddyfile:6"},
		{"budget_failure twice", "{\n\tmetis {\n\t\tbudget_failure open\n\t\tbudget_failure closed\n\t}\n}\n", "budget_failure given twice", "Caddyfile:4"},
		{"provider option twice", "{\n\tmetis {\n\t\tprovider anthropic {\n\t\t\tapi_key a\n\t\t\tapi_key b\n\t\t}\n\t}\n}\n", `provider "anthropic": api_key given twice`, "Caddyfile:5"},
		{"writer option twice", "{\n\tmetis {\n\t\twriter {\n\t\t\tqueue_size 10\n\t\t\tqueue_size 20\n\t\t}\n\t}\n}\n", "writer: queue_size given twice", "Caddyfile:5"},
		{"max_body twice", "{\n\tmetis\n}\n:8080 {\n\tmetis_gateway {\n\t\tmax_body 1MiB\n\t\tmax_body 2MiB\n\t}\n}\n", "max_body given twice", "Caddyfile:7"},
		{"gateway option", "{\n\tmetis\n}\n:8080 {\n\tmetis_gateway {\n\t\tmax_body huge\n\t}\n}\n", `bad max_body "huge"`, "Caddyfile:6"},
		{"gateway args", ":8080 {\n\tmetis_gateway extra\n}\n", `metis_gateway takes no arguments, got "extra"`, "Caddyfile:2"},
		{"analytics option", ":8080 {\n\tmetis_analytics {\n\t\tcharts on\n\t}\n}\n", `unrecognized metis_analytics option "charts"`, "Caddyfile:3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(c.input), map[string]any{"filename": "Caddyfile"})
			if err == nil {
				t.Fatalf("adapted without error; want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if c.line != "" && !strings.Contains(err.Error(), "at "+c.line) {
				t.Errorf("error %q does not name line %s", err, c.line)
			}
		})
	}
}
