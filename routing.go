package metis

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"

	"github.com/tidwall/gjson"
	"gopkg.in/yaml.v3"
)

// RoutingFile is the format of <workspace>/.metis/routing.yaml, consulted
// only for requests that name no model:
//
//	rules:                  # slot "rule": the first matching rule wins
//	  - when: {shape: openai, tools: true}
//	    model: sonnet
//	patterns:               # slot "pattern": regexp on the last user message
//	  - match: "(?i)summari[sz]e"
//	    model: haiku
//	default: haiku          # slot "default", before the Caddyfile's default_model
type RoutingFile struct {
	Rules    []RoutingRule    `yaml:"rules"`
	Patterns []RoutingPattern `yaml:"patterns"`
	Default  string           `yaml:"default"`
}

// RoutingRule chooses Model for requests that match all of When.
type RoutingRule struct {
	When  RoutingWhen `yaml:"when"`
	Model string      `yaml:"model"`
}

// RoutingWhen is what a rule matches; every key is optional and an empty
// one matches every request.
type RoutingWhen struct {
	// Shape is the inbound shape: anthropic or openai.
	Shape string `yaml:"shape"`
	// Tools matches requests that do (true) or don't (false) offer tools.
	Tools *bool `yaml:"tools"`
	// Stream matches streamed (true) or non-streamed (false) requests.
	Stream *bool `yaml:"stream"`
	// MinBytes matches request bodies at least this large.
	MinBytes int `yaml:"min_bytes"`
}

// RoutingPattern chooses Model for requests whose last user text matches
// the regular expression Match.
type RoutingPattern struct {
	Match string `yaml:"match"`
	Model string `yaml:"model"`
	re    *regexp.Regexp
}

// routingCache keeps parsed routing files per workspace, re-reading a file
// at most every few seconds.
type routingCache struct {
	mu      sync.Mutex
	entries map[string]*routingEntry
}

type routingEntry struct {
	checked  time.Time
	mtime    time.Time
	file     *RoutingFile
	err      error
	reported bool // err was returned as news once
}

func newRoutingCache() *routingCache { return &routingCache{entries: map[string]*routingEntry{}} }

// get returns the workspace's routing file (nil if it has none) or why it
// cannot be used; news is true the first time an error is returned for a
// version of the file, so that it is logged once, not on every request.
func (c *routingCache) get(workspace string) (f *RoutingFile, news bool, err error) {
	if workspace == "" {
		return nil, false, nil
	}
	path := routingPath(workspace)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[path]
	if e == nil {
		e = &routingEntry{}
		c.entries[path] = e
	}
	if time.Since(e.checked) >= 3*time.Second {
		e.checked = time.Now()
		st, err := os.Stat(path)
		switch {
		case err != nil:
			e.file, e.err, e.mtime = nil, nil, time.Time{}
		case !st.ModTime().Equal(e.mtime):
			e.mtime = st.ModTime()
			e.file, e.err = loadRoutingFile(path)
			e.reported = false
		}
	}
	news = e.err != nil && !e.reported
	e.reported = e.reported || news
	return e.file, news, e.err
}

// routingPath is the routing file of a workspace.
func routingPath(workspace string) string {
	return filepath.Join(workspace, ".metis", "routing.yaml")
}

// loadRoutingFile reads and checks a routing file. Unknown keys are
// errors: a misspelt `when` key would otherwise leave a rule matching
// every request, a misspelt `model` a rule choosing nothing.
func loadRoutingFile(path string) (*RoutingFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var f RoutingFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	for { // further documents: only empty ones (a trailing ---) are fine
		var more yaml.Node
		err := dec.Decode(&more)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", path, err)
		}
		if !emptyDocument(&more) {
			return nil, fmt.Errorf("%s: more than one YAML document (a --- line): only the first would be read", path)
		}
	}
	for i, r := range f.Rules {
		switch {
		case r.Model == "":
			return nil, fmt.Errorf("%s: rule %d has no model", path, i+1)
		case r.When.Shape != "" && r.When.Shape != shapeAnthropic && r.When.Shape != shapeOpenAI:
			return nil, fmt.Errorf("%s: rule %d: shape is %q; want anthropic or openai", path, i+1, r.When.Shape)
		case r.When.MinBytes < 0:
			return nil, fmt.Errorf("%s: rule %d: min_bytes is negative", path, i+1)
		}
	}
	for i := range f.Patterns {
		if f.Patterns[i].Model == "" {
			return nil, fmt.Errorf("%s: pattern %d has no model", path, i+1)
		}
		re, err := regexp.Compile(f.Patterns[i].Match)
		if err != nil {
			return nil, fmt.Errorf("%s: pattern %q: %w", path, f.Patterns[i].Match, err)
		}
		f.Patterns[i].re = re
	}
	return &f, nil
}

// chosenBy says, for a refusal's message, what chose the model, followed
// by end; "" when the client named the model (nothing was chosen).
func (ch routeChoice) chosenBy(end string) string {
	if ch.slot == "" {
		return ""
	}
	by := "the gateway's default_model"
	if ch.byFile {
		by = "the workspace's .metis/routing.yaml"
	}
	return fmt.Sprintf(", chosen for a request without a model by %s (slot %s)%s", by, ch.slot, end)
}

// emptyDocument reports whether a YAML document holds nothing (or null).
func emptyDocument(n *yaml.Node) bool {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return true
		}
		n = n.Content[0]
	}
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// routeChoice is what the routing chain chose for a request without a
// model: the model reference, the slot that chose it and whether the
// workspace's file (else the Caddyfile's default_model) did.
type routeChoice struct {
	model, slot string
	byFile      bool
}

// route walks the routing chain for a request without a model. news is
// true the first time an error is returned for a version of the file.
func (a *App) route(workspace, shape string, stream bool, body []byte) (ch routeChoice, news bool, err error) {
	f, news, err := a.routing.get(workspace)
	if err != nil {
		return ch, news, err
	}
	if f != nil {
		tools := gjson.GetBytes(body, "tools.#").Int() > 0
		for _, r := range f.Rules {
			w := r.When
			if (w.Shape != "" && w.Shape != shape) || (w.Tools != nil && *w.Tools != tools) ||
				(w.Stream != nil && *w.Stream != stream) || len(body) < w.MinBytes {
				continue
			}
			return routeChoice{r.Model, slotRule, true}, false, nil
		}
		if len(f.Patterns) > 0 {
			text := lastUserText(body)
			for _, p := range f.Patterns {
				if p.re.MatchString(text) {
					return routeChoice{p.Model, slotPattern, true}, false, nil
				}
			}
		}
		if f.Default != "" {
			return routeChoice{f.Default, slotDefault, true}, false, nil
		}
	}
	if a.DefaultModel != "" {
		return routeChoice{a.DefaultModel, slotDefault, false}, false, nil
	}
	return ch, false, nil
}

// lastUserText is the text of the last user message that has some, in
// either shape.
func lastUserText(body []byte) string {
	msgs := gjson.GetBytes(body, "messages").Array()
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.Get("role").String() != "user" {
			continue
		}
		c := m.Get("content")
		if c.Type == gjson.String {
			return c.String()
		}
		var s string
		for _, part := range c.Array() {
			if part.Get("type").String() == "text" {
				s += part.Get("text").String() + "\n"
			}
		}
		if s != "" {
			return s
		}
		// An Anthropic user turn of tool results only: the conversation's
		// text is the turn before, so a tool loop keeps its model.
	}
	return ""
}
