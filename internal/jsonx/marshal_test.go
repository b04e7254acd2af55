package jsonx_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/metisgateway/metis/internal/jsonx"
)

type pair struct {
	K string
	V float64
}

func (p *pair) appendJSON(dst []byte) ([]byte, error) {
	dst = append(dst, `{"K":`...)
	dst = jsonx.AppendString(dst, p.K)
	dst = append(dst, `,"V":`...)
	dst, err := jsonx.AppendFloat(dst, p.V)
	return append(dst, '}'), err
}

func TestAppendArrayMatchesMarshal(t *testing.T) {
	for _, s := range [][]pair{nil, {}, {{"a", 1}}, {{"<b>", 1e-7}, {"\u2028", 2.5}}} {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := jsonx.AppendArray([]byte("x"), s, (*pair).appendJSON)
		if err != nil || string(got) != "x"+string(want) {
			t.Errorf("AppendArray(%v) = %s, %v; want x%s", s, got, err, want)
		}
	}
	_, err := jsonx.AppendArray(nil, []pair{{"a", 1}, {"b", math.NaN()}, {"c", 1}}, (*pair).appendJSON)
	if _, merr := json.Marshal([]pair{{"b", math.NaN()}}); err == nil || merr == nil || err.Error() != merr.Error() {
		t.Errorf("AppendArray error %v, json.Marshal %v", err, merr)
	}
}

func TestAppendStringsMatchesMarshal(t *testing.T) {
	for _, ss := range [][]string{nil, {}, {""}, {"a", "<&>", "\xff", "\n\"\\"}} {
		want, _ := json.Marshal(ss)
		if got := jsonx.AppendStrings([]byte("x"), ss); string(got) != "x"+string(want) {
			t.Errorf("AppendStrings(%q) = %s, want x%s", ss, got, want)
		}
	}
}

func TestAppendMarshal(t *testing.T) {
	v := map[string]any{"a": []int{1}, "b": "<"}
	want, _ := json.Marshal(v)
	if got, err := jsonx.AppendMarshal([]byte("x"), v); err != nil || string(got) != "x"+string(want) {
		t.Errorf("AppendMarshal = %s, %v; want x%s", got, err, want)
	}
	if _, err := jsonx.AppendMarshal(nil, math.Inf(1)); err == nil {
		t.Error("AppendMarshal(+Inf) did not fail")
	}
}

func TestMarshal(t *testing.T) {
	got, err := jsonx.Marshal(func(dst []byte) ([]byte, error) {
		if len(dst) != 0 {
			t.Errorf("Marshal gave a buffer holding %q", dst)
		}
		return append(dst, `{"a":1}`...), nil
	})
	if err != nil || string(got) != `{"a":1}` || cap(got) != len(got) {
		t.Fatalf("Marshal = %q (cap %d), %v", got, cap(got), err)
	}
	// The result is a copy: later calls reusing the pooled buffer leave it.
	for range 3 {
		if _, err := jsonx.Marshal(func(dst []byte) ([]byte, error) { return append(dst, "#######"...), nil }); err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != `{"a":1}` {
		t.Fatalf("result changed to %q by a later Marshal", got)
	}
	boom := errors.New("boom")
	got, err = jsonx.Marshal(func(dst []byte) ([]byte, error) { return append(dst, "partial"...), boom })
	if got != nil || !errors.Is(err, boom) {
		t.Fatalf("Marshal on error = %q, %v; want nil, boom", got, err)
	}
	big, err := jsonx.Marshal(func(dst []byte) ([]byte, error) { return append(dst, make([]byte, 2<<20)...), nil })
	if err != nil || len(big) != 2<<20 {
		t.Fatalf("Marshal of 2 MiB = %d bytes, %v", len(big), err)
	}
}
