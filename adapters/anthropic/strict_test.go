package anthropic

import (
	"testing"

	"github.com/tidwall/gjson"
)

// TestStrictSchema: output_config.format schemas that meet OpenAI's strict
// rules (what the Anthropic SDKs' transform_schema and pydantic with
// extra="forbid" produce) go to OpenAI with strict true; others, which
// OpenAI would refuse with it, go without.
func TestStrictSchema(t *testing.T) {
	for _, tc := range []struct {
		name, schema string
		want         bool
	}{
		{"closed, all required", `{"type":"object","properties":{"city":{"type":"string"},"temp_f":{"type":"integer"}},"required":["city","temp_f"],"additionalProperties":false}`, true},
		{"optional property", `{"type":"object","properties":{"city":{"type":"string"},"temp_f":{"type":"integer"}},"required":["city"],"additionalProperties":false}`, false},
		{"open object", `{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`, false},
		{"bare object", `{"type":"object"}`, false},
		{"nested open object", `{"type":"object","properties":{"where":{"type":"object","properties":{"c":{"type":"string"}},"required":["c"]}},"required":["where"],"additionalProperties":false}`, false},
		{"array of closed objects", `{"type":"object","properties":{"xs":{"type":"array","items":{"type":"object","properties":{"a":{"type":"number"}},"required":["a"],"additionalProperties":false}}},"required":["xs"],"additionalProperties":false}`, true},
		{"open object in $defs", `{"type":"object","properties":{"p":{"$ref":"#/$defs/P"}},"required":["p"],"additionalProperties":false,"$defs":{"P":{"type":"object","properties":{"n":{"type":"string"}}}}}`, false},
		{"closed anyOf", `{"type":"object","properties":{"v":{"anyOf":[{"type":"string"},{"type":"null"}]}},"required":["v"],"additionalProperties":false}`, true},
		{"closed $defs and $ref", `{"type":"object","properties":{"p":{"$ref":"#/$defs/P"}},"required":["p"],"additionalProperties":false,"$defs":{"P":{"type":"object","properties":{"n":{"type":"string"}},"required":["n"],"additionalProperties":false}}}`, true},
		// What OpenAI's strict mode refuses (review 13R).
		{"anyOf at the root", `{"anyOf":[{"type":"object","properties":{},"required":[],"additionalProperties":false}]}`, false},
		{"array at the root", `{"type":"array","items":{"type":"string"}}`, false},
		{"oneOf", `{"type":"object","properties":{"v":{"oneOf":[{"type":"string"},{"type":"integer"}]}},"required":["v"],"additionalProperties":false}`, false},
		{"$ref with a sibling", `{"type":"object","properties":{"p":{"$ref":"#/$defs/P","description":"d"}},"required":["p"],"additionalProperties":false,"$defs":{"P":{"type":"string"}}}`, false},
		{"tuple items", `{"type":"object","properties":{"t":{"type":"array","items":[{"type":"object","properties":{"a":{"type":"string"}}}]}},"required":["t"],"additionalProperties":false}`, false},
		{"boolean schema", `{"type":"object","properties":{"any":true},"required":["any"],"additionalProperties":false}`, false},
		{"patternProperties", `{"type":"object","properties":{},"required":[],"additionalProperties":false,"patternProperties":{"^x":{"type":"string"}}}`, false},
		{"format uri", `{"type":"object","properties":{"u":{"type":"string","format":"uri"}},"required":["u"],"additionalProperties":false}`, false},
		{"format date-time", `{"type":"object","properties":{"d":{"type":"string","format":"date-time"}},"required":["d"],"additionalProperties":false}`, true},
		{"$schema", `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`, false},
	} {
		if got := strictSchema(gjson.Parse(tc.schema)); got != tc.want {
			t.Errorf("%s: strict %v, want %v", tc.name, got, tc.want)
		}
	}
}
