package anthropic

import "github.com/tidwall/gjson"

// strictKeywords are the JSON Schema keywords OpenAI's strict structured
// outputs accept. A schema using any other (oneOf, not, if, patternProperties,
// $schema, default, …) may be refused with strict: true.
var strictKeywords = map[string]bool{
	"type": true, "properties": true, "required": true, "additionalProperties": true, "items": true,
	"enum": true, "const": true, "anyOf": true, "$ref": true, "$defs": true, "definitions": true,
	"description": true, "title": true, "format": true, "pattern": true, "minimum": true, "maximum": true,
	"exclusiveMinimum": true, "exclusiveMaximum": true, "multipleOf": true, "minItems": true, "maxItems": true,
}

// strictFormats are the string formats strict mode accepts ("uri", which
// pydantic's HttpUrl and zod's url() give, is refused).
var strictFormats = map[string]bool{
	"date-time": true, "time": true, "date": true, "duration": true, "email": true,
	"hostname": true, "ipv4": true, "ipv6": true, "uuid": true,
}

// strictSchema reports whether an output_config.format schema meets the
// rules of OpenAI's strict structured outputs, conservatively: an object
// at the root; only strictKeywords (and strictFormats); every object closed
// (additionalProperties false) and requiring all its properties; a $ref
// alone in its node; items a single schema. Anthropic always enforces the
// schema; sent to OpenAI with strict true, such a schema is enforced there
// too, while another could be refused, so it goes without (as a hint).
func strictSchema(s gjson.Result) bool {
	return s.Get("type").String() == "object" && strictNode(s)
}

func strictNode(s gjson.Result) bool {
	if !s.IsObject() {
		return false // a boolean schema
	}
	ok, hasRef, keys := true, false, 0
	s.ForEach(func(k, v gjson.Result) bool {
		keys++
		switch key := k.String(); {
		case !strictKeywords[key]:
			ok = false
		case key == "$ref":
			hasRef = true
		case key == "properties" || key == "$defs" || key == "definitions":
			v.ForEach(func(_, sub gjson.Result) bool {
				ok = strictNode(sub)
				return ok
			})
		case key == "anyOf":
			ok = v.IsArray()
			v.ForEach(func(_, sub gjson.Result) bool {
				ok = strictNode(sub)
				return ok
			})
		case key == "items":
			ok = v.IsObject() && strictNode(v)
		case key == "format":
			ok = strictFormats[v.String()]
		}
		return ok
	})
	if !ok || hasRef && keys > 1 {
		return false
	}
	props := s.Get("properties")
	if s.Get("type").String() != "object" && !props.Exists() {
		return true
	}
	if s.Get("additionalProperties").Type != gjson.False {
		return false
	}
	required := map[string]bool{}
	s.Get("required").ForEach(func(_, v gjson.Result) bool {
		required[v.String()] = true
		return true
	})
	props.ForEach(func(k, _ gjson.Result) bool {
		ok = required[k.String()]
		return ok
	})
	return ok
}
