// Package goldens gives tests of the adapters the request and response
// bodies of the translate package's golden tables and of the recorded
// fixtures, so differential tests (fast path against encoding/json) run on
// the same inputs as the golden tests, and the check those differential
// tests share (CheckMarshal). It is only imported by tests.
package goldens

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/metisgateway/metis/internal/vcr"
)

// RequestBodies returns every `in:` string of adapters/translate's
// request_test.go and every request body recorded in the fixtures.
func RequestBodies() ([][]byte, error) {
	out, err := inStrings("request_test.go")
	if err != nil {
		return nil, err
	}
	its, err := interactions()
	if err != nil {
		return nil, err
	}
	for _, it := range its {
		if it.RequestBody != "" {
			out = append(out, []byte(it.RequestBody))
		}
	}
	return out, nil
}

// ResponseBodies returns every literal `in:` string of adapters/translate's
// response_test.go and every complete (non-streamed) JSON response body
// recorded in the fixtures, errors included.
func ResponseBodies() ([][]byte, error) {
	out, err := inStrings("response_test.go")
	if err != nil {
		return nil, err
	}
	its, err := interactions()
	if err != nil {
		return nil, err
	}
	for _, it := range its {
		if b := strings.TrimSpace(it.ResponseBody); strings.HasPrefix(b, "{") {
			out = append(out, []byte(it.ResponseBody))
		}
	}
	return out, nil
}

// interactions returns every recorded interaction of the fixtures.
func interactions() ([]vcr.Interaction, error) {
	entries, err := os.ReadDir(vcr.Dir())
	if err != nil {
		return nil, err
	}
	var out []vcr.Interaction
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".yaml") {
			continue
		}
		its, err := vcr.Load(e.Name())
		if err != nil {
			continue
		}
		out = append(out, its...)
	}
	return out, nil
}

// inStrings returns the string literals given as `in:` in the named test
// file of adapters/translate.
func inStrings(name string) ([][]byte, error) {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "translate", name)
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f, err := parser.ParseFile(token.NewFileSet(), path, src, 0)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	ast.Inspect(f, func(n ast.Node) bool {
		kv, ok := n.(*ast.KeyValueExpr)
		if !ok {
			return true
		}
		if k, ok := kv.Key.(*ast.Ident); !ok || k.Name != "in" {
			return true
		}
		if lit, ok := kv.Value.(*ast.BasicLit); ok && lit.Kind == token.STRING {
			if s, err := strconv.Unquote(lit.Value); err == nil {
				out = append(out, []byte(s))
			}
		}
		return true
	})
	return out, nil
}
