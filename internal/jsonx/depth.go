package jsonx

// TooDeep reports whether the JSON text s nests objects and arrays more
// than max levels deep. It reads s once, without recursion, so that a body
// of millions of brackets can be refused before a recursive parser (gjson's
// validator, encoding/json) runs out of stack on it. Brackets inside
// strings do not count; s need not be valid JSON.
func TooDeep(s string, max int) bool {
	if len(s) <= max {
		return false // each level takes a byte
	}
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			end := StringEnd(s, i)
			if end < 0 {
				return false // unterminated: the validator refuses it
			}
			i = end - 1
		case '{', '[':
			depth++
			if depth > max {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}
