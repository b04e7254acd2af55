package metis

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A routing file's mistakes are errors (the request gets a 500 and the log
// the cause) instead of rules that silently route otherwise: a misspelt
// `when` key leaves a rule matching every request, a misspelt `model` a
// rule that chooses nothing, a misspelt `default` falls through to the
// Caddyfile's.
func TestRoutingFileMistakesAreErrors(t *testing.T) {
	for file, want := range map[string]string{
		"rules:\n  - when: {shapes: openai}\n    model: sonnet\n": `field shapes not found`,
		"rules:\n  - when: {shape: openai}\n    modle: sonnet\n":  `field modle not found in type metis.RoutingRule`,
		"defualt: sonnet\n": `field defualt not found`,
		"rules:\n  - when: {shape: Anthropic}\n    model: haiku\n": `rule 1: shape is "Anthropic"; want anthropic or openai`,
		"rules:\n  - when: {tools: true}\n":                        `rule 1 has no model`,
		"patterns:\n  - match: x\n":                                `pattern 1 has no model`,
		"patterns:\n  - match: \"(\"\n    model: haiku\n":          `pattern "("`,
		"default: mini\n---\ndefault: sonnet\n":                    `more than one YAML document`,
	} {
		path := filepath.Join(t.TempDir(), "routing.yaml")
		if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadRoutingFile(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %s", file, err, want)
		}
	}
	for _, file := range []string{"", "# nothing yet\n", "default: haiku\n", "default: haiku\n---\n", "default: haiku\n---\n# more later\n",
		"rules:\n  - when: {shape: anthropic, tools: false, stream: true, min_bytes: 10}\n    model: haiku\n"} {
		path := filepath.Join(t.TempDir(), "routing.yaml")
		if err := os.WriteFile(path, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := loadRoutingFile(path); err != nil {
			t.Errorf("%q: %v", file, err)
		}
	}
}

// Patterns read the last user message with text: in an Anthropic tool loop
// the last user turn holds only tool results, and the conversation would
// switch models between turns if the pattern stopped matching there.
func TestLastUserTextSkipsToolResultTurns(t *testing.T) {
	body := `{"messages":[
		{"role":"user","content":"Please summarise the repository."},
		{"role":"assistant","content":[{"type":"tool_use","id":"t1","name":"ls","input":{}}]},
		{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"a.go b.go"}]}]}`
	if got := lastUserText([]byte(body)); got != "Please summarise the repository." {
		t.Errorf("last user text %q, want the request's text", got)
	}
	body = `{"messages":[{"role":"user","content":"old"},{"role":"user","content":[{"type":"text","text":"new"}]}]}`
	if got := lastUserText([]byte(body)); got != "new\n" {
		t.Errorf("last user text %q, want new", got)
	}
}

// An unusable routing file is news once per version of the file, so the
// log names it once rather than on every model-less request.
func TestRoutingErrorIsNewsOncePerVersion(t *testing.T) {
	ws := t.TempDir()
	path := routingPath(ws)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("rules: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newRoutingCache()
	for i, wantNews := range []bool{true, false, false} {
		if i == 2 {
			c.entries[path].checked = time.Time{} // past the 3 s recheck, file unchanged
		}
		if _, news, err := c.get(ws); err == nil || news != wantNews {
			t.Fatalf("get %d: news %v err %v, want news %v and an error", i, news, err, wantNews)
		}
	}
	if err := os.WriteFile(path, []byte("rules: [[\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	c.entries[path].checked = time.Time{}
	if _, news, err := c.get(ws); err == nil || !news {
		t.Errorf("a changed, still broken file: news %v err %v, want news", news, err)
	}
}
