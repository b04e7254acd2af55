// Package vcr loads the recorded provider exchanges in testdata/fixtures
// (go-vcr v1 and v2 cassettes, and raw .sse bodies) so tests and fake
// upstreams replay real provider responses.
package vcr

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"gopkg.in/yaml.v3"
)

// Interaction is one recorded request and its response.
type Interaction struct {
	Method         string
	URL            string
	RequestBody    string
	RequestHeader  http.Header
	Status         int
	ResponseHeader http.Header
	ResponseBody   string
}

// Events splits an SSE response body into its events, each with its
// terminating blank line, exactly as the provider sent them.
func (i Interaction) Events() []string {
	return SplitEvents(i.ResponseBody)
}

// SplitEvents splits an SSE body on blank lines, keeping each event's bytes
// (including the "\n\n" that ends it) verbatim.
func SplitEvents(body string) []string {
	var out []string
	for len(body) > 0 {
		i := strings.Index(body, "\n\n")
		if i < 0 {
			out = append(out, body)
			break
		}
		out = append(out, body[:i+2])
		body = body[i+2:]
	}
	return out
}

type cassette struct {
	Version      int `yaml:"version"`
	Interactions []struct {
		Request struct {
			Body    string              `yaml:"body"`
			Headers map[string][]string `yaml:"headers"`
			URL     string              `yaml:"url"`
			Method  string              `yaml:"method"`
		} `yaml:"request"`
		Response struct {
			Body    string              `yaml:"body"`
			Headers map[string][]string `yaml:"headers"`
			Status  string              `yaml:"status"`
			Code    int                 `yaml:"code"`
		} `yaml:"response"`
	} `yaml:"interactions"`
}

// Dir is the absolute path of the repository's testdata/fixtures folder.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "fixtures")
}

// Load reads a cassette (name relative to Dir, or an absolute path).
func Load(name string) ([]Interaction, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(Dir(), name)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading cassette: %w", err)
	}
	if strings.HasSuffix(path, ".sse") {
		return []Interaction{{
			Method: http.MethodPost, Status: http.StatusOK, ResponseBody: string(raw),
			ResponseHeader: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}},
		}}, nil
	}
	var c cassette
	if err := yaml.NewDecoder(bytes.NewReader(raw)).Decode(&c); err != nil {
		return nil, fmt.Errorf("decoding cassette %s: %w", name, err)
	}
	out := make([]Interaction, 0, len(c.Interactions))
	for _, in := range c.Interactions {
		status := in.Response.Code
		if status == 0 {
			fmt.Sscanf(in.Response.Status, "%d", &status)
		}
		it := Interaction{
			Method: in.Request.Method, URL: in.Request.URL, RequestBody: in.Request.Body,
			RequestHeader: http.Header{}, Status: status, ResponseHeader: http.Header{},
			ResponseBody: in.Response.Body,
		}
		for k, v := range in.Request.Headers {
			it.RequestHeader[http.CanonicalHeaderKey(k)] = v
		}
		for k, v := range in.Response.Headers {
			it.ResponseHeader[http.CanonicalHeaderKey(k)] = v
		}
		out = append(out, it)
	}
	return out, nil
}

// MustLoad is Load for tests: it panics on error.
func MustLoad(name string) []Interaction {
	it, err := Load(name)
	if err != nil {
		panic(err)
	}
	return it
}
