package anthropic

import "github.com/tidwall/gjson"

// strictSchema reports whether a JSON schema meets the rules of OpenAI's
// strict structured outputs: every object closes its properties
// (additionalProperties false) and requires all of them. Anthropic always
// enforces an output_config.format schema; sent to OpenAI, such a schema
// is enforced there too with strict true, while another would be refused
// with it, so it goes without (as a hint).
func strictSchema(s gjson.Result) bool {
	if !s.IsObject() {
		return true // true/false schemas and $ref-only nodes have no object of their own
	}
	props := s.Get("properties")
	if s.Get("type").String() == "object" || props.Exists() {
		if ap := s.Get("additionalProperties"); ap.Type != gjson.False {
			return false
		}
		required := map[string]bool{}
		s.Get("required").ForEach(func(_, v gjson.Result) bool {
			required[v.String()] = true
			return true
		})
		ok := true
		props.ForEach(func(k, v gjson.Result) bool {
			ok = required[k.String()] && strictSchema(v)
			return ok
		})
		if !ok {
			return false
		}
	}
	ok := true
	for _, key := range [...]string{"items", "not"} {
		if v := s.Get(key); v.Exists() && !strictSchema(v) {
			return false
		}
	}
	for _, key := range [...]string{"anyOf", "oneOf", "allOf", "prefixItems"} {
		s.Get(key).ForEach(func(_, v gjson.Result) bool {
			ok = strictSchema(v)
			return ok
		})
		if !ok {
			return false
		}
	}
	for _, key := range [...]string{"$defs", "definitions"} {
		s.Get(gjson.Escape(key)).ForEach(func(_, v gjson.Result) bool {
			ok = strictSchema(v)
			return ok
		})
		if !ok {
			return false
		}
	}
	return true
}
