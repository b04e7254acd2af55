package metis

import (
	"fmt"
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
	Rules []struct {
		When struct {
			// Shape is the inbound shape: anthropic or openai.
			Shape string `yaml:"shape"`
			// Tools matches requests that do (true) or don't (false) offer tools.
			Tools *bool `yaml:"tools"`
			// Stream matches streamed (true) or non-streamed (false) requests.
			Stream *bool `yaml:"stream"`
			// MinBytes matches request bodies at least this large.
			MinBytes int `yaml:"min_bytes"`
		} `yaml:"when"`
		Model string `yaml:"model"`
	} `yaml:"rules"`
	Patterns []struct {
		Match string `yaml:"match"`
		Model string `yaml:"model"`
		re    *regexp.Regexp
	} `yaml:"patterns"`
	Default string `yaml:"default"`
}

// routingCache keeps parsed routing files per workspace, re-reading a file
// at most every few seconds.
type routingCache struct {
	mu      sync.Mutex
	entries map[string]*routingEntry
}

type routingEntry struct {
	checked time.Time
	mtime   time.Time
	file    *RoutingFile
	err     error
}

func newRoutingCache() *routingCache { return &routingCache{entries: map[string]*routingEntry{}} }

func (c *routingCache) get(workspace string) (*RoutingFile, error) {
	if workspace == "" {
		return nil, nil
	}
	path := filepath.Join(workspace, ".metis", "routing.yaml")
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[path]
	if e != nil && time.Since(e.checked) < 3*time.Second {
		return e.file, e.err
	}
	if e == nil {
		e = &routingEntry{}
		c.entries[path] = e
	}
	e.checked = time.Now()
	st, err := os.Stat(path)
	if err != nil {
		e.file, e.err, e.mtime = nil, nil, time.Time{}
		return nil, nil
	}
	if st.ModTime().Equal(e.mtime) {
		return e.file, e.err
	}
	e.mtime = st.ModTime()
	e.file, e.err = loadRoutingFile(path)
	return e.file, e.err
}

func loadRoutingFile(path string) (*RoutingFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var f RoutingFile
	if err := yaml.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	for i := range f.Patterns {
		re, err := regexp.Compile(f.Patterns[i].Match)
		if err != nil {
			return nil, fmt.Errorf("%s: pattern %q: %w", path, f.Patterns[i].Match, err)
		}
		f.Patterns[i].re = re
	}
	return &f, nil
}

// route walks the routing chain for a request without a model and returns
// the model reference and the slot that chose it.
func (a *App) route(workspace, shape string, stream bool, body []byte) (model, slot string, err error) {
	f, err := a.routing.get(workspace)
	if err != nil {
		return "", "", err
	}
	if f != nil {
		tools := gjson.GetBytes(body, "tools.#").Int() > 0
		for _, r := range f.Rules {
			w := r.When
			if (w.Shape != "" && w.Shape != shape) || (w.Tools != nil && *w.Tools != tools) ||
				(w.Stream != nil && *w.Stream != stream) || len(body) < w.MinBytes {
				continue
			}
			return r.Model, slotRule, nil
		}
		if len(f.Patterns) > 0 {
			text := lastUserText(body)
			for _, p := range f.Patterns {
				if p.re.MatchString(text) {
					return p.Model, slotPattern, nil
				}
			}
		}
		if f.Default != "" {
			return f.Default, slotDefault, nil
		}
	}
	if a.DefaultModel != "" {
		return a.DefaultModel, slotDefault, nil
	}
	return "", "", nil
}

// lastUserText is the text of the last user message, in either shape.
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
		return s
	}
	return ""
}
